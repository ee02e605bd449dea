"""Each command of the command line: what it asks the MailIndex facade, and how it prints the answer."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mailindex import __version__
from mailindex.app import Account, MailIndex
from mailindex.cli.output import (answer, listing, print_as, print_json, print_jsonl, print_messages, print_report,
                                  show_text, table, when)
from mailindex.cli.parser import build_parser
from mailindex.config import Config
from mailindex.config import load as load_config
from mailindex.errors import QueryError
from mailindex.folders import FLAG_NAMES

if TYPE_CHECKING:
    from mailindex.progress import ProgressLine


def _progress(a: argparse.Namespace, label: str) -> ProgressLine:
    """On a terminal unless --quiet; anywhere with --progress."""
    from mailindex.progress import ProgressLine

    return ProgressLine(label, enabled=a.progress)


def _includes(a: argparse.Namespace) -> dict[str, Any]:
    return {"include_body": int(a.include_body), "body_type": a.body_type, "include_headers": a.include_headers,
            "include_flags": int(a.include_flags), "include_thread_size": int(a.include_thread_size),
            "include_source": int(a.include_source)}


def _search(mx: MailIndex, args: argparse.Namespace) -> None:
    filters = {k[2:]: v for k, v in vars(args).items() if k.startswith("f_") and v is not None}
    words = filters.pop("q")
    if words:
        filters["q"] = " ".join(words)
    if args.count:
        print(_acct(mx, args).messages.count(**filters))
        return
    includes = _includes(args)
    messages = _acct(mx, args).messages
    if args.all:
        found: Iterable[dict[str, Any]] = messages.iter(sort_order=args.sort_order, **filters, **includes)
    else:
        found = messages.list(limit=args.limit, offset=args.offset, sort_order=args.sort_order, **filters,
                              **includes)
    if args.jsonl:
        print_jsonl(found)  # --all streams: nothing is held but the page being written
    elif args.json:
        print_json(list(found))
    else:
        print_messages(list(found), includes)


def _body(mx: MailIndex, args: argparse.Namespace) -> None:
    parts = _acct(mx, args).messages.body(args.id, args.body_type)
    if args.json:
        print_json(parts)
        return
    for part in parts:
        print(f"--- {part['type']} ({part['charset']}) part {part['body_section']} ---\n{part['content']}")


def _source(mx: MailIndex, args: argparse.Namespace) -> None:
    sys.stdout.buffer.write(_acct(mx, args).messages.source(args.id))


def _headers(mx: MailIndex, args: argparse.Namespace) -> None:
    headers = _acct(mx, args).messages.headers(args.id, raw=args.raw)
    if args.json:
        print_json(headers)
    elif isinstance(headers, str):
        print(headers)
    else:
        for name, values in headers.items():
            for value in values:
                print(f"{name}: {value}")


def _thread(mx: MailIndex, args: argparse.Namespace) -> None:
    thread = _acct(mx, args).messages.thread(args.id, limit=args.limit, offset=args.offset, **_includes(args))
    print_json(thread) if args.json else print_messages(thread["messages"], _includes(args))


def _contacts(mx: MailIndex, args: argparse.Namespace) -> None:
    if args.email:
        contact = _acct(mx, args).contacts.get(args.email)
        messages = _acct(mx, args).contacts.messages(args.email, limit=args.limit, offset=args.offset)
        if args.json:
            print_json({**contact, "messages": messages})
            return
        print(f"{contact['email']} {contact['name']}: {contact['count']} messages, {contact['received_count']} "
              f"received (last {when(contact['last_received'])}), {contact['sent_count']} sent "
              f"(last {when(contact['last_sent'])})")
        table(messages)
        return
    params = {"search": args.search, "active_before": args.active_before, "active_after": args.active_after,
              "sort_by": args.sort_by, "sort_order": args.sort_order, "limit": args.limit, "offset": args.offset}
    found = _acct(mx, args).contacts.list(**params)
    if args.json:
        print_json(found)
        return
    print(f"{'email':<40} {'name':<24} {'count':>6} {'recv':>6} {'sent':>6}  last active")
    for c in found["matches"]:
        last = max(c["last_sent"] or 0, c["last_received"] or 0)
        print(f"{c['email'][:40]:<40} {c['name'][:24]:<24} {c['count']:>6} {c['received_count']:>6} "
              f"{c['sent_count']:>6}  {when(last)}")


def _acct(mx: MailIndex, args: argparse.Namespace) -> Account:
    account = getattr(args, "account", None)
    return mx.account(account) if account else mx.default_account


def _options(args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    names = ("sync_all_folders", "sync_flags", "raw_file_list")
    out: dict[str, Any] = {prefix + n: getattr(args, prefix + n) for n in names
                           if getattr(args, prefix + n, None) is not None}
    for item in getattr(args, "option", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise QueryError("option", item, "must be KEY=VALUE")
        out[key.strip()] = value
    return out


def _flag_values(a: argparse.Namespace, prefix: str) -> dict[str, int]:
    return {prefix + n: getattr(a, prefix + n) for n in FLAG_NAMES if getattr(a, prefix + n) is not None}


def _account_line(a: dict[str, Any]) -> str:
    state = f"suspended {when(a['suspended'])}" if a["suspended"] else "active"
    name = f"{a['first_name']} {a['last_name']}".strip() or "-"
    return (f"{a['id']}  {','.join(a['email_addresses']) or '-':<30} {name:<20} {len(a['sources'])} sources  "
            f"{a['nb_messages']:,} messages  {state}")


def _accounts(mx: MailIndex, a: argparse.Namespace) -> None:
    action = a.action or "list"
    if action == "list":
        rows = mx.accounts.list(email=getattr(a, "email", None), status=getattr(a, "status", None),
                                status_ok=getattr(a, "status_ok", None), limit=getattr(a, "limit", None),
                                offset=getattr(a, "offset", None))
        listing(rows, a, _account_line)
        return
    result = {
        "create": lambda: mx.accounts.create(email=a.email, first_name=a.first_name, last_name=a.last_name),
        "get": lambda: mx.accounts.get(a.id),
        "update": lambda: mx.accounts.update(a.id, first_name=a.first_name, last_name=a.last_name,
                                             email_addresses=a.email_addresses, suspended=a.suspended),
        "suspend": lambda: mx.accounts.suspend(a.id),
        "delete": lambda: mx.accounts.delete(a.id),
    }[action]()
    print_as(result, a.json, lambda r: "deleted" if action == "delete" else _account_line(r))


def _source_line(s: dict[str, Any]) -> str:
    return (f"{s['label']:<20} {s['type']:<8} {s['status']:<14} {s['location']}  "
            f"last sync {when(s['sync']['last_sync_stop'])}")


def _sources(mx: MailIndex, a: argparse.Namespace) -> None:
    sources = _acct(mx, a).sources
    action = a.action or "list"
    if action == "list":
        listing(sources.list(), a, _source_line)
        return
    result = {
        "add": lambda: sources.add(a.path, label=a.label, type=a.type, **_options(a)),
        "get": lambda: sources.get(a.label),
        "update": lambda: sources.update(a.label, status=a.status, **_options(a)),
        "delete": lambda: sources.delete(a.label),
    }[action]()
    print_as(result, a.json, lambda r: "deleted" if action == "delete" else _source_line(r))


def _token_line(t: dict[str, Any]) -> str:
    state = f"used {when(t['used'])} by account {t['account'].get('id', '?')}" if t["used"] \
        else f"expires {when(t['expires'])}"
    return f"{t['token_id']}  {t['email'] or '-':<28} {state}"


def _tokens(mx: MailIndex, a: argparse.Namespace) -> None:
    tokens = _acct(mx, a).connect_tokens if getattr(a, "account", None) else mx.connect_tokens
    action = a.action or "list"
    if action == "list":
        listing(tokens.list(), a, _token_line)
        return
    if action == "create":
        made = tokens.create(a.callback_url, email=a.email, first_name=a.first_name, last_name=a.last_name,
                             source_callback_url=a.source_callback_url, **_options(a, "source_"))
        print_as(made, a.json, lambda r: r["token"])
        return
    if action == "redeem":
        done = tokens.redeem(a.token, a.path, label=a.label, type=a.type, email=a.email, first_name=a.first_name,
                             last_name=a.last_name)
        print_as(done, a.json, lambda r: f"account {r['account']['id']}: {r['sync']['added']:,} messages "
                                          f"added from {r['account']['sources'][-1]['label']}")
        return
    result = tokens.get(a.token) if action == "get" else tokens.delete(a.token)
    print_as(result, a.json, lambda r: "deleted" if action == "delete" else _token_line(r))


def _sync(mx: MailIndex, a: argparse.Namespace) -> None:
    progress = _progress(a, "syncing")
    if a.label is None and not getattr(a, "account", None):
        report = mx.sync(workers=a.workers, progress=progress)  # every account
    else:
        report = _acct(mx, a).sync(a.label, workers=a.workers, progress=progress)
    print_report(report.to_dict(), a.json)


def _index(mx: MailIndex, a: argparse.Namespace) -> None:
    account = _acct(mx, a)
    if a.owner:
        mx.accounts.update(account.id, email_addresses=a.owner)
    elif a.config.owner and not account.owners:  # the file's owner, for an account that has none yet
        mx.accounts.update(account.id, email_addresses=list(a.config.owner))
    report = account.index(a.path, a.source, a.type, workers=a.workers, progress=_progress(a, "indexing"),
                           **_options(a))
    print_report(report.to_dict(), a.json)


def _flags(mx: MailIndex, a: argparse.Namespace) -> None:
    changes = _flag_values(a, "")
    line: Callable[[Any], str] = lambda f: ", ".join(k for k, v in f.items() if v) or "(none)"
    if not changes:
        print_as(_acct(mx, a).messages.flags(a.id), a.json, line)
        return
    result = _acct(mx, a).messages.set_flags(a.id, **changes)
    answer(result, a.json, line(result.get("flags", {})))


def _folders(mx: MailIndex, a: argparse.Namespace) -> None:
    messages = _acct(mx, a).messages
    if a.set:
        result = messages.set_folders(a.id, [{"symbolic_name" if f.startswith("\\") else "name": f} for f in a.set])
    elif a.add or a.remove:
        result = messages.update_folders(a.id, add=a.add, remove=a.remove)
    else:
        listing(messages.folders(a.id), a, lambda f: f"{f['name']}  {f.get('symbolic_name', '')}".rstrip())
        return
    answer(result, a.json, "folders: " + ", ".join(f["name"] for f in messages.folders(a.id)))


def _append(mx: MailIndex, a: argparse.Namespace) -> None:
    try:
        data = sys.stdin.buffer.read() if a.file == "-" else Path(a.file).read_bytes()
    except OSError as exc:
        raise QueryError("file", a.file, f"cannot read it: {exc.strerror or exc}") from exc
    result = _acct(mx, a).messages.append(data, a.dst_folder, a.dst_source, **_flag_values(a, "flag_"))
    answer(result, a.json, "added")


class Command(NamedTuple):
    """A command's handler, and whether it changes the index or the mail, given its arguments."""

    run: Callable[[MailIndex, argparse.Namespace], None]
    writes: Callable[[argparse.Namespace], bool]


def _always(a: argparse.Namespace) -> bool:
    return True


def _never(a: argparse.Namespace) -> bool:
    return False


def _action_writes(a: argparse.Namespace) -> bool:
    return (a.action or "list") not in ("list", "get")


# Every command, and whether it writes: one that does opens the index for writing (and makes it where
# there is none); any other opens it read-only, which makes nothing, writes nothing and refuses writes:
# on a directory with no index it fails with "no index at DIR".
COMMANDS: dict[str, Command] = {
    "index": Command(_index, _always),
    "sync": Command(_sync, _always),
    "accounts": Command(_accounts, _action_writes),
    "sources": Command(_sources, _action_writes),
    "connect-tokens": Command(_tokens, _action_writes),
    "search": Command(_search, _never),
    "show": Command(lambda mx, a: print_as(_acct(mx, a).messages.get(a.id, **_includes(a)), a.json, show_text),
                    _never),
    "source": Command(_source, _never),
    "body": Command(_body, _never),
    "headers": Command(_headers, _never),
    "flags": Command(_flags, lambda a: bool(_flag_values(a, ""))),
    "folders": Command(_folders, lambda a: bool(a.set or a.add or a.remove)),
    "copy": Command(lambda mx, a: answer(_acct(mx, a).messages.copy(a.id, a.dst_folder, a.dst_source,
                                                                     **_flag_values(a, "flag_")), a.json, "copied"),
                    _always),
    "move": Command(lambda mx, a: answer(_acct(mx, a).messages.move(a.id, a.dst_folder, a.dst_source,
                                                                     **_flag_values(a, "flag_")), a.json, "moved"),
                    _always),
    "delete": Command(lambda mx, a: answer(_acct(mx, a).messages.delete(a.id), a.json, "deleted"), _always),
    "append": Command(_append, _always),
    "thread": Command(_thread, _never),
    "contacts": Command(_contacts, _never),
    "quarantine": Command(lambda mx, a: listing(mx.quarantine(), a, lambda r: f"{r['source']}  {r['key']}  "
                                                 f"{'indexed' if r['indexed'] else 'NOT indexed'}  {r['error']}"),
                          _never),
}


def _plugins(a: argparse.Namespace) -> None:
    from mailindex.plugins import list_plugins, plugin_manager  # pluggy: only this command needs it here

    listing(list_plugins(plugin_manager()), a, lambda p: f"{p['name']:<10} "
             f"types={','.join(p['source_types'])}  hooks={','.join(p['hooks'])}")


def _configure(args: argparse.Namespace, config: Config) -> Path | None:
    """Fill in what no flag gave from the configuration (flags > environment > file): the output format
    here, the owner for `index`; answers the index directory, None for the default."""
    args.config = config
    if config.format != "text" and hasattr(args, "json") and not (args.json or getattr(args, "jsonl", False)):
        if config.format == "jsonl" and hasattr(args, "jsonl"):
            args.jsonl = True
        else:
            args.json = True
    if getattr(args, "index", None) is not None or os.environ.get("MAILINDEX_HOME"):
        return getattr(args, "index", None)
    return config.index


def _completion(a: argparse.Namespace) -> None:
    import argcomplete

    sys.stdout.write(argcomplete.shellcode(["mailindex"], shell=a.shell))


def _man(a: argparse.Namespace) -> None:
    from mailindex.manpage import render

    sys.stdout.write(render(build_parser(), __version__))


# Commands that open no index: the installed backends, and the command line's own documentation.
NO_INDEX: dict[str, Callable[[argparse.Namespace], None]] = {
    "plugins": _plugins, "completion": _completion, "man": _man}


def run(args: argparse.Namespace) -> int:
    index = _configure(args, load_config())
    if args.command in NO_INDEX:
        NO_INDEX[args.command](args)
        return 0
    command = COMMANDS[args.command]
    read_only = getattr(args, "read_only", False) or not command.writes(args)
    with MailIndex(index, read_only=read_only) as mx:
        command.run(mx, args)
    return 0
