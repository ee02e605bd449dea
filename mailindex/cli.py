"""The `mailindex` command: a thin layer over MailIndex.

Any error, a bad argument included, prints one line, `mailindex: MESSAGE`, on stderr and exits 1.
A command that changes nothing opens the index read-only (see `COMMANDS`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import orjson

from mailindex import __version__
from mailindex.app import Account, MailIndex
from mailindex.config import Config
from mailindex.config import load as load_config
from mailindex.engine import default_index_dir
from mailindex.errors import MailindexError, QueryError
from mailindex.progress import ProgressLine
from mailindex.query.filters import ADDRESS_PARAMS, TIME_PARAMS
from mailindex.folders import FLAG_NAMES

EPILOG = ("Index location: --index DIR, else $MAILINDEX_HOME, else `index` of the configuration file "
          "($MAILINDEX_CONFIG, else $XDG_CONFIG_HOME/mailindex/config.toml), else $XDG_DATA_HOME/mailindex. "
          "The file may also set `owner` (addresses) and `format` (text, json or jsonl; $MAILINDEX_FORMAT "
          "overrides it).")


def _json_text(value: Any, indent: bool) -> str:
    """JSON by orjson (30x the standard library on a large listing); the standard library's, escaped, for
    text that is not valid Unicode, which orjson refuses."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0).decode()
    except TypeError:
        return json.dumps(value, indent=2 if indent else None)


def _print_json(value: Any) -> None:
    sys.stdout.write(_json_text(value, indent=True) + "\n")


def _print_jsonl(rows: Iterable[Any]) -> None:
    """One JSON object per line, each written as it comes: constant memory however long the listing."""
    for row in rows:
        sys.stdout.write(_json_text(row, indent=False) + "\n")


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else "-"


def _from(m: dict[str, Any]) -> str:
    f = m["addresses"].get("from")
    return (f.get("name") or f["email"]) if f else ""


def _char_width(c: str) -> int:
    """Columns a character takes on a terminal: 2 for East Asian wide, 0 for combining and format marks."""
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def _fit(text: str, cols: int) -> str:
    """`text` cut to `cols` terminal columns (an ellipsis where it was cut), padded to exactly `cols`."""
    text = "".join(" " if c in "\r\n\t" else c for c in text)
    widths = [_char_width(c) for c in text]
    if sum(widths) > cols:
        used, keep = 0, 0
        while keep < len(text) and used + widths[keep] <= cols - 1:
            used += widths[keep]
            keep += 1
        text, widths = text[:keep] + "…", [*widths[:keep], 1]
    return text + " " * (cols - sum(widths))


def _table(messages: list[dict[str, Any]]) -> None:
    """date, sender and subject in the terminal's width ($COLUMNS, else the terminal, else 120)."""
    if not messages:
        print("(no messages)")
        return
    free = max(shutil.get_terminal_size((120, 24)).columns - 16 - 24 - 6, 8)  # date, message_id, gaps
    sender = min(28, max(4, free * 3 // 10))
    subject = max(free - sender, 4)
    print(f"{'date (UTC)':<16}  {_fit('from', sender)}  {_fit('subject', subject)}  message_id")
    for m in messages:
        print(f"{_when(m['date']):<16}  {_fit(_from(m), sender)}  {_fit(m['subject'], subject)}  {m['message_id']}")


def _messages(messages: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """A table; or, when an include option asked for more than a table shows, each message in full."""
    if any(v for k, v in _includes(args).items() if k != "body_type" and v not in (0, "0")):
        print("\n\n".join(_show(m) for m in messages) or "(no messages)")
    else:
        _table(messages)


def _json_args(p: argparse.ArgumentParser, what: str) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help=f"print one JSON array of {what}")
    out.add_argument("--jsonl", action="store_true",
                     help=f"print {what} as JSON lines, one object per line, each as soon as it is found")


def _progress_args(p: argparse.ArgumentParser) -> None:
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", default=None,
                       help="show the progress line (scanning, then messages, rate and time left) even when "
                            "stderr is not a terminal")
    shown.add_argument("--quiet", action="store_false", dest="progress",
                       help="no progress line, even on a terminal")


def _progress(a: argparse.Namespace, label: str) -> ProgressLine:
    """On a terminal unless --quiet; anywhere with --progress."""
    return ProgressLine(label, enabled=a.progress)


def _include_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--include-body", action="store_true", help="add text body parts (read from the source)")
    p.add_argument("--body-type", metavar="TYPE", help="only body parts of this MIME type, e.g. text/html")
    p.add_argument("--include-headers", choices=["0", "1", "raw"], default="0",
                   help="1: parsed headers; raw: the header block as in the source")
    p.add_argument("--include-flags", action="store_true", help="add flags, read live from the source")
    p.add_argument("--include-thread-size", action="store_true", help="add thread_size: messages in its thread")
    p.add_argument("--include-source", action="store_true", help="add the raw message source")


def _includes(a: argparse.Namespace) -> dict[str, Any]:
    return {"include_body": int(a.include_body), "body_type": a.body_type, "include_headers": a.include_headers,
            "include_flags": int(a.include_flags), "include_thread_size": int(a.include_thread_size),
            "include_source": int(a.include_source)}


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors follow the convention: one line and exit 1 (not usage text and exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise MailindexError(f"{message} (see {self.prog} --help)")


# Arguments that are paths and may be any bytes (Linux paths need not be UTF-8); every other one is text.
_BYTES_ARGS = ("index", "file")


def _check_text(args: argparse.Namespace) -> None:
    """QueryError naming the first argument that is not valid UTF-8 (Python hands such bytes over as
    lone surrogates, which no later step could encode)."""
    for name, value in vars(args).items():
        if name in _BYTES_ARGS:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and not _is_utf8(item):
                why = " (source locations are kept as text)" if name == "path" else ""
                raise QueryError(name.removeprefix("f_"), item, f"is not valid UTF-8{why}")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--index", metavar="DIR", default=argparse.SUPPRESS,
                        help=f"index directory (default: {default_index_dir()})")
    common.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                        help="open the index read-only even for a command that changes it, which is then "
                             "refused (a command that changes nothing always opens it read-only)")
    common.add_argument("--account", metavar="ID", default=argparse.SUPPRESS,
                        help="the account to work in (default: the index's default account)")
    parser = _Parser(
        prog="mailindex", parents=[common], epilog=EPILOG,
        description="Index Maildir, mbox and .eml mail on disk and search it offline (Context.IO 2.0 filters).")
    parser.add_argument("--version", action="version", version=f"mailindex {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", parents=[common], help="add a mail path as a source (if new) and sync it",
                       description="Index PATH (Maildir, mbox file or tree, .eml tree). Re-running syncs changes. "
                                   "The source options apply when PATH is new.")
    p.add_argument("path")
    p.add_argument("--source", metavar="LABEL", help="source label (default: derived from the path)")
    p.add_argument("--type", choices=None, help="source type (maildir, mbox, eml, ...); detected by default")
    p.add_argument("--workers", type=int, help="parser processes (default: CPU count)")
    _progress_args(p)
    p.add_argument("--owner", metavar="ADDR[,ADDR...]",
                   help="the mailbox owner's addresses, kept in the index: they give --email its contact meaning")
    _option_args(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")

    p = sub.add_parser("sync", parents=[common], help="sync one source, or all of them",
                       description="Apply new, changed and vanished messages of registered sources: one source "
                                   "of the account by LABEL, else every enabled source (of --account, or of "
                                   "every account).")
    p.add_argument("label", nargs="?")
    p.add_argument("--workers", type=int, help="parser processes (default: CPU count)")
    _progress_args(p)
    p.add_argument("--json", action="store_true")

    _accounts_parser(sub, common)
    _sources_parser(sub, common)
    _tokens_parser(sub, common)

    p = sub.add_parser("search", parents=[common], help="list messages matching Context.IO filters",
                       description="Comma-separated values within a filter are OR; several filters are AND. "
                                   "Subject and file name accept /regex/; file name accepts * ? [] wildcards.")
    for name in ADDRESS_PARAMS:
        p.add_argument(f"--{name}", dest=f"f_{name}", metavar="ADDR[,ADDR...]",
                       help="contact: from, to, or to both it and the owner; also a domain" if name == "email"
                       else f"address in {name.capitalize()}")
    p.add_argument("--subject", dest="f_subject", metavar="TEXT", help="substring (case-insensitive) or /regex/")
    p.add_argument("--folder", dest="f_folder", metavar="NAME",
                   help="folder name (Inbox/Sub) or symbolic name (\\Sent)")
    p.add_argument("--source", dest="f_source", metavar="LABEL",
                   help="only messages of this source of the account (\"0\": its first)")
    p.add_argument("--file-name", dest="f_file_name", metavar="GLOB", help="attachment name: *.pdf or /regex/")
    p.add_argument("--file-size-min", dest="f_file_size_min", type=int, metavar="BYTES")
    p.add_argument("--file-size-max", dest="f_file_size_max", type=int, metavar="BYTES")
    for name in TIME_PARAMS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"f_{name}", type=int, metavar="UNIX_TS",
                       help="exclusive bound")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="1..100 (default 100)")
    p.add_argument("--offset", type=int, default=None, metavar="N", help="skip the first N matches")
    p.add_argument("--sort-order", choices=["asc", "desc"], default=None, help="by date (default desc)")
    p.add_argument("--all", action="store_true", help="every match, no 100 cap")
    p.add_argument("--count", action="store_true", help="print only the number of matches")
    _json_args(p, "message objects")
    _include_args(p)

    p = sub.add_parser("show", parents=[common], help="one message by message_id, <Message-ID> or gm-<id>")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    _include_args(p)

    p = sub.add_parser("source", parents=[common], help="write a message's original bytes to stdout")
    p.add_argument("id")

    p = sub.add_parser("body", parents=[common], help="a message's text parts, decoded")
    p.add_argument("id")
    p.add_argument("--type", dest="body_type", metavar="TYPE", help="only parts of this MIME type, e.g. text/html")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("headers", parents=[common], help="a message's headers, decoded, in order")
    p.add_argument("id")
    p.add_argument("--raw", action="store_true", help="the header block exactly as in the source")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("flags", parents=[common], help="a message's flags, read from its source now; or set them",
                       description="Without options: the flags, read live. With --seen 1 and the like: set or "
                                   "clear them at the source (Maildir renames, mbox rewrites Status, IMAP STORE).")
    p.add_argument("id")
    _flag_args(p, "")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("folders", parents=[common], help="the folders a message is in; or change them",
                       description="Without options: the folders. --add/--remove copy the message into or delete "
                                   "it from folders of its source; --set replaces the whole set (a name, or a "
                                   "symbolic name such as \\Archive; \\Flagged sets the flag).")
    p.add_argument("id")
    p.add_argument("--add", metavar="FOLDER", action="append")
    p.add_argument("--remove", metavar="FOLDER", action="append")
    p.add_argument("--set", metavar="FOLDER", action="append")
    p.add_argument("--json", action="store_true")

    for name, what in (("copy", "copy a message to a folder, in its source or another (--dst-source)"),
                       ("move", "move a message: copy, verify the copy, then delete the original")):
        p = sub.add_parser(name, parents=[common], help=what)
        p.add_argument("id")
        p.add_argument("dst_folder", metavar="FOLDER")
        p.add_argument("--dst-source", metavar="LABEL", help="another source of the account")
        _flag_args(p, "flag-")
        p.add_argument("--json", action="store_true")

    p = sub.add_parser("delete", parents=[common], help="delete a message at its sources (Gmail: to the Trash)")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("append", parents=[common], help="add a raw RFC 822 message (FILE, or - for stdin)")
    p.add_argument("file")
    p.add_argument("dst_folder", metavar="FOLDER")
    p.add_argument("--dst-source", metavar="LABEL", help="default: the account's first source")
    _flag_args(p, "flag-")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("thread", parents=[common], help="every message of a message's thread, in conversation order")
    p.add_argument("id")
    p.add_argument("--limit", type=int, default=None, help="1..100 (default 100)")
    p.add_argument("--offset", type=int, default=None)
    p.add_argument("--json", action="store_true")
    _include_args(p)

    p = sub.add_parser("contacts", parents=[common], help="correspondents with counts; or one contact's messages",
                       description="Without EMAIL: every correspondent, with sent/received counts relative to the "
                                   "owner (index --owner). With EMAIL: that contact's figures and the latest "
                                   "messages exchanged with it.")
    p.add_argument("email", nargs="?")
    p.add_argument("--search", help="substring of the address or name")
    p.add_argument("--active-before", type=int, metavar="UNIX_TS", help="last exchange before this time")
    p.add_argument("--active-after", type=int, metavar="UNIX_TS", help="last exchange after this time")
    p.add_argument("--sort-by", choices=["email", "count", "received_count", "sent_count"], default=None)
    p.add_argument("--sort-order", choices=["asc", "desc"], default=None)
    p.add_argument("--limit", type=int, default=None, help="1..100 (default 100)")
    p.add_argument("--offset", type=int, default=None)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("quarantine", parents=[common], help="messages recorded with a parse or read error")
    _json_args(p, "quarantine entries")

    p = sub.add_parser("plugins", parents=[common], help="list registered backends and their hooks")
    _json_args(p, "plugins")

    p = sub.add_parser("completion", parents=[common], help="print the shell code that completes commands and options",
                       description='Load it from your shell\'s start-up file: eval "$(mailindex completion bash)" '
                                   'or eval "$(mailindex completion zsh)". make install also writes the bash one to '
                                   '.venv/share/bash-completion/completions/mailindex.')
    p.add_argument("shell", choices=["bash", "zsh"])

    sub.add_parser("man", parents=[common], help="print the manual page: mailindex man | man -l -",
                   description="mailindex(1) in roff, written from this command's own options. make install "
                               "also writes it to .venv/share/man/man1/mailindex.1.")
    return parser


def _accounts_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("accounts", parents=[common], help="create, list, show, update, suspend, delete accounts",
                       description="An account owns sources; its email addresses decide what sent and received "
                                   "mean. Without an action: list.")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    _json_args(p, "account objects")
    a = acts.add_parser("list", parents=[common], help="accounts, oldest first")
    a.add_argument("--email", help="only accounts with this owner address")
    a.add_argument("--status", help="only accounts with a source in this status (OK, DISABLED, ...)")
    a.add_argument("--status-ok", type=int, choices=[0, 1], help="1: every source OK; 0: some source not OK")
    a.add_argument("--limit", type=int, help="1..100 (default 100)")
    a.add_argument("--offset", type=int)
    _json_args(a, "account objects")
    a = acts.add_parser("create", parents=[common], help="a new account (no sources yet)")
    a.add_argument("--email", metavar="ADDR[,ADDR...]", help="the owner's addresses")
    a.add_argument("--first-name", default="")
    a.add_argument("--last-name", default="")
    a.add_argument("--json", action="store_true")
    for name, what in (("get", "one account"), ("suspend", "stop syncing an account"),
                       ("delete", "remove an account, its sources and their messages from the index")):
        a = acts.add_parser(name, parents=[common], help=what)
        a.add_argument("id")
        a.add_argument("--json", action="store_true")
    a = acts.add_parser("update", parents=[common], help="change names, owner addresses or suspension")
    a.add_argument("id")
    a.add_argument("--first-name")
    a.add_argument("--last-name")
    a.add_argument("--email-addresses", metavar="ADDR[,ADDR...]", help="replace the owner's addresses")
    a.add_argument("--suspended", type=int, choices=[0, 1], help="1 suspends, 0 resumes")
    a.add_argument("--json", action="store_true")


def _option_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}sync-all-folders", type=int, choices=[0, 1],
                   help="0: leave trash, drafts and junk folders out "
                        f"(default {0 if prefix else 1}{', as Context.IO' if prefix else ''})")
    p.add_argument(f"--{prefix}sync-flags", type=int, choices=[0, 1],
                   help="1: keep flags in the index, for folder=\\Flagged (default 0)")
    p.add_argument(f"--{prefix}raw-file-list", type=int, choices=[0, 1],
                   help="1: list signature images and other small inline images in files (default 0)")
    if not prefix:
        p.add_argument("--option", metavar="KEY=VALUE", action="append", default=[],
                       help="a backend option, e.g. tls=ssl|starttls|none or password_env=VAR for imap:// (repeatable)")


def _sources_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sources", parents=[common], help="add, list, show, update, delete an account's sources",
                       description="Sources of the account (--account, else the default one). \"0\" names the "
                                   "first source. Without an action: list.")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    _json_args(p, "source objects")
    a = acts.add_parser("list", parents=[common], help="sources with status and sync state")
    _json_args(a, "source objects")
    a = acts.add_parser("add", parents=[common], help="register mail at PATH (does not sync; see `sync`)")
    a.add_argument("path")
    a.add_argument("--label", help="default: derived from the path")
    a.add_argument("--type", help="maildir, mbox, eml, or a plugin's type; detected by default")
    _option_args(a)
    a.add_argument("--json", action="store_true")
    for name, what in (("get", "one source"), ("delete", "remove a source and its messages from the index")):
        a = acts.add_parser(name, parents=[common], help=what)
        a.add_argument("label")
        a.add_argument("--json", action="store_true")
    a = acts.add_parser("update", parents=[common], help="change a source's status or options")
    a.add_argument("label")
    a.add_argument("--status", choices=["OK", "TEMP_DISABLED", "DISABLED"])
    _option_args(a)
    a.add_argument("--json", action="store_true")


def _tokens_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("connect-tokens", parents=[common], help="one-time tokens that connect someone's mail",
                       description="With --account, tokens that add a source to that account; without, tokens "
                                   "whose redemption creates an account. Unused tokens expire after 24 hours. "
                                   "Without an action: list.")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    _json_args(p, "token objects")
    a = acts.add_parser("list", parents=[common], help="tokens, oldest first")
    _json_args(a, "token objects")
    a = acts.add_parser("create", parents=[common], help="a new token")
    a.add_argument("--callback-url", required=True, help="http(s) URL the connecting user is sent back to")
    a.add_argument("--email")
    a.add_argument("--first-name", default="")
    a.add_argument("--last-name", default="")
    a.add_argument("--source-callback-url", help="http(s) URL that gets a POST when the initial sync is done")
    _option_args(a, "source-")
    a.add_argument("--json", action="store_true")
    for name, what in (("get", "one token"), ("delete", "forget a token")):
        a = acts.add_parser(name, parents=[common], help=what)
        a.add_argument("token")
        a.add_argument("--json", action="store_true")
    a = acts.add_parser("redeem", parents=[common], help="connect the mail at PATH through a token, and sync it")
    a.add_argument("token")
    a.add_argument("path")
    a.add_argument("--label")
    a.add_argument("--type")
    a.add_argument("--email", help="the owner's address, when the token has none")
    a.add_argument("--first-name")
    a.add_argument("--last-name")
    a.add_argument("--json", action="store_true")


def _listing(rows: Iterable[dict[str, Any]], a: argparse.Namespace, line: Callable[[dict[str, Any]], str]) -> None:
    """Rows as JSON (--json), JSON lines (--jsonl) or one text line each."""
    if getattr(a, "jsonl", False):
        _print_jsonl(rows)
        return
    if a.json:
        _print_json(list(rows))
        return
    for row in rows:
        print(line(row))


def _report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(report)
        return
    print(f"{report['source']}: {report['added']:,} added, {report['updated']:,} updated, "
          f"{report['removed']:,} removed, {report['failed']:,} failed, {report['unchanged']:,} unchanged "
          f"in {report['seconds']:.2f} s")
    for e in report["errors"][:10]:
        print(f"  failed: {e['key']}: {e['error']}")
    if report["quarantined"]:
        print(f"  {report['quarantined']:,} in the quarantine (mailindex quarantine lists them)")
    for reason, n in report["skipped"].items():
        print(f"  not indexed: {n:,} ({reason})")


def _search(mx: MailIndex, args: argparse.Namespace) -> None:
    filters = {k[2:]: v for k, v in vars(args).items() if k.startswith("f_") and v is not None}
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
        _print_jsonl(found)  # --all streams: nothing is held but the page being written
    elif args.json:
        _print_json(list(found))
    else:
        _messages(list(found), args)


def _body(mx: MailIndex, args: argparse.Namespace) -> None:
    parts = _acct(mx, args).messages.body(args.id, args.body_type)
    if args.json:
        _print_json(parts)
        return
    for part in parts:
        print(f"--- {part['type']} ({part['charset']}) part {part['body_section']} ---\n{part['content']}")


def _source(mx: MailIndex, args: argparse.Namespace) -> None:
    sys.stdout.buffer.write(_acct(mx, args).messages.source(args.id))


def _headers(mx: MailIndex, args: argparse.Namespace) -> None:
    headers = _acct(mx, args).messages.headers(args.id, raw=args.raw)
    if args.json:
        _print_json(headers)
    elif isinstance(headers, str):
        print(headers)
    else:
        for name, values in headers.items():
            for value in values:
                print(f"{name}: {value}")


def _thread(mx: MailIndex, args: argparse.Namespace) -> None:
    thread = _acct(mx, args).messages.thread(args.id, limit=args.limit, offset=args.offset, **_includes(args))
    _print_json(thread) if args.json else _messages(thread["messages"], args)


def _contacts(mx: MailIndex, args: argparse.Namespace) -> None:
    if args.email:
        contact = _acct(mx, args).contacts.get(args.email)
        messages = _acct(mx, args).contacts.messages(args.email, limit=args.limit, offset=args.offset)
        if args.json:
            _print_json({**contact, "messages": messages})
            return
        print(f"{contact['email']} {contact['name']}: {contact['count']} messages, {contact['received_count']} "
              f"received (last {_when(contact['last_received'])}), {contact['sent_count']} sent "
              f"(last {_when(contact['last_sent'])})")
        _table(messages)
        return
    params = {"search": args.search, "active_before": args.active_before, "active_after": args.active_after,
              "sort_by": args.sort_by, "sort_order": args.sort_order, "limit": args.limit, "offset": args.offset}
    found = _acct(mx, args).contacts.list(**params)
    if args.json:
        _print_json(found)
        return
    print(f"{'email':<40} {'name':<24} {'count':>6} {'recv':>6} {'sent':>6}  last active")
    for c in found["matches"]:
        last = max(c["last_sent"] or 0, c["last_received"] or 0)
        print(f"{c['email'][:40]:<40} {c['name'][:24]:<24} {c['count']:>6} {c['received_count']:>6} "
              f"{c['sent_count']:>6}  {_when(last)}")


def _print_as(value: Any, as_json: bool, line: Callable[[Any], str]) -> None:
    _print_json(value) if as_json else print(line(value))


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


def _flag_args(p: argparse.ArgumentParser, prefix: str) -> None:
    for name in FLAG_NAMES:
        p.add_argument(f"--{prefix}{name}", type=int, choices=[0, 1], help=f"1: set {name}, 0: clear it")


def _flag_values(a: argparse.Namespace, prefix: str) -> dict[str, int]:
    return {prefix + n: getattr(a, prefix + n) for n in FLAG_NAMES if getattr(a, prefix + n) is not None}


def _answer(result: dict[str, Any], as_json: bool, done: str) -> None:
    """Print a live operation's answer; a failure at the source exits 1 with the server's words."""
    if as_json:
        _print_json(result)
    elif result["success"]:
        print(done)
    if not result["success"]:
        raise MailindexError(f"the source refused: {result.get('connection_log', '')}")


def _account_line(a: dict[str, Any]) -> str:
    state = f"suspended {_when(a['suspended'])}" if a["suspended"] else "active"
    name = f"{a['first_name']} {a['last_name']}".strip() or "-"
    return (f"{a['id']}  {','.join(a['email_addresses']) or '-':<30} {name:<20} {len(a['sources'])} sources  "
            f"{a['nb_messages']:,} messages  {state}")


def _accounts(mx: MailIndex, a: argparse.Namespace) -> None:
    action = a.action or "list"
    if action == "list":
        rows = mx.accounts.list(email=getattr(a, "email", None), status=getattr(a, "status", None),
                                status_ok=getattr(a, "status_ok", None), limit=getattr(a, "limit", None),
                                offset=getattr(a, "offset", None))
        _listing(rows, a, _account_line)
        return
    result = {
        "create": lambda: mx.accounts.create(email=a.email, first_name=a.first_name, last_name=a.last_name),
        "get": lambda: mx.accounts.get(a.id),
        "update": lambda: mx.accounts.update(a.id, first_name=a.first_name, last_name=a.last_name,
                                             email_addresses=a.email_addresses, suspended=a.suspended),
        "suspend": lambda: mx.accounts.suspend(a.id),
        "delete": lambda: mx.accounts.delete(a.id),
    }[action]()
    _print_as(result, a.json, lambda r: "deleted" if action == "delete" else _account_line(r))


def _source_line(s: dict[str, Any]) -> str:
    return (f"{s['label']:<20} {s['type']:<8} {s['status']:<14} {s['location']}  "
            f"last sync {_when(s['sync']['last_sync_stop'])}")


def _sources(mx: MailIndex, a: argparse.Namespace) -> None:
    sources = _acct(mx, a).sources
    action = a.action or "list"
    if action == "list":
        _listing(sources.list(), a, _source_line)
        return
    result = {
        "add": lambda: sources.add(a.path, label=a.label, type=a.type, **_options(a)),
        "get": lambda: sources.get(a.label),
        "update": lambda: sources.update(a.label, status=a.status, **_options(a)),
        "delete": lambda: sources.delete(a.label),
    }[action]()
    _print_as(result, a.json, lambda r: "deleted" if action == "delete" else _source_line(r))


def _token_line(t: dict[str, Any]) -> str:
    state = f"used {_when(t['used'])} by account {t['account'].get('id', '?')}" if t["used"] \
        else f"expires {_when(t['expires'])}"
    return f"{t['token_id']}  {t['email'] or '-':<28} {state}"


def _tokens(mx: MailIndex, a: argparse.Namespace) -> None:
    tokens = _acct(mx, a).connect_tokens if getattr(a, "account", None) else mx.connect_tokens
    action = a.action or "list"
    if action == "list":
        _listing(tokens.list(), a, _token_line)
        return
    if action == "create":
        made = tokens.create(a.callback_url, email=a.email, first_name=a.first_name, last_name=a.last_name,
                             source_callback_url=a.source_callback_url, **_options(a, "source_"))
        _print_as(made, a.json, lambda r: r["token"])
        return
    if action == "redeem":
        done = tokens.redeem(a.token, a.path, label=a.label, type=a.type, email=a.email, first_name=a.first_name,
                             last_name=a.last_name)
        _print_as(done, a.json, lambda r: f"account {r['account']['id']}: {r['sync']['added']:,} messages "
                                          f"added from {r['account']['sources'][-1]['label']}")
        return
    result = tokens.get(a.token) if action == "get" else tokens.delete(a.token)
    _print_as(result, a.json, lambda r: "deleted" if action == "delete" else _token_line(r))


def _sync(mx: MailIndex, a: argparse.Namespace) -> None:
    progress = _progress(a, "syncing")
    if a.label is None and not getattr(a, "account", None):
        report = mx.sync(workers=a.workers, progress=progress)  # every account
    else:
        report = _acct(mx, a).sync(a.label, workers=a.workers, progress=progress)
    _report(report.to_dict(), a.json)


def _index(mx: MailIndex, a: argparse.Namespace) -> None:
    account = _acct(mx, a)
    if a.owner:
        mx.accounts.update(account.id, email_addresses=a.owner)
    elif a.config.owner and not account.owners:  # the file's owner, for an account that has none yet
        mx.accounts.update(account.id, email_addresses=list(a.config.owner))
    report = account.index(a.path, a.source, a.type, workers=a.workers, progress=_progress(a, "indexing"),
                           **_options(a))
    _report(report.to_dict(), a.json)


def _flags(mx: MailIndex, a: argparse.Namespace) -> None:
    changes = _flag_values(a, "")
    line: Callable[[Any], str] = lambda f: ", ".join(k for k, v in f.items() if v) or "(none)"
    if not changes:
        _print_as(_acct(mx, a).messages.flags(a.id), a.json, line)
        return
    result = _acct(mx, a).messages.set_flags(a.id, **changes)
    _answer(result, a.json, line(result.get("flags", {})))


def _folders(mx: MailIndex, a: argparse.Namespace) -> None:
    messages = _acct(mx, a).messages
    if a.set:
        result = messages.set_folders(a.id, [{"symbolic_name" if f.startswith("\\") else "name": f} for f in a.set])
    elif a.add or a.remove:
        result = messages.update_folders(a.id, add=a.add, remove=a.remove)
    else:
        _listing(messages.folders(a.id), a, lambda f: f"{f['name']}  {f.get('symbolic_name', '')}".rstrip())
        return
    _answer(result, a.json, "folders: " + ", ".join(f["name"] for f in messages.folders(a.id)))


def _append(mx: MailIndex, a: argparse.Namespace) -> None:
    try:
        data = sys.stdin.buffer.read() if a.file == "-" else Path(a.file).read_bytes()
    except OSError as exc:
        raise QueryError("file", a.file, f"cannot read it: {exc.strerror or exc}") from exc
    result = _acct(mx, a).messages.append(data, a.dst_folder, a.dst_source, **_flag_values(a, "flag_"))
    _answer(result, a.json, "added")


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
    "show": Command(lambda mx, a: _print_as(_acct(mx, a).messages.get(a.id, **_includes(a)), a.json, _show),
                    _never),
    "source": Command(_source, _never),
    "body": Command(_body, _never),
    "headers": Command(_headers, _never),
    "flags": Command(_flags, lambda a: bool(_flag_values(a, ""))),
    "folders": Command(_folders, lambda a: bool(a.set or a.add or a.remove)),
    "copy": Command(lambda mx, a: _answer(_acct(mx, a).messages.copy(a.id, a.dst_folder, a.dst_source,
                                                                     **_flag_values(a, "flag_")), a.json, "copied"),
                    _always),
    "move": Command(lambda mx, a: _answer(_acct(mx, a).messages.move(a.id, a.dst_folder, a.dst_source,
                                                                     **_flag_values(a, "flag_")), a.json, "moved"),
                    _always),
    "delete": Command(lambda mx, a: _answer(_acct(mx, a).messages.delete(a.id), a.json, "deleted"), _always),
    "append": Command(_append, _always),
    "thread": Command(_thread, _never),
    "contacts": Command(_contacts, _never),
    "quarantine": Command(lambda mx, a: _listing(mx.quarantine(), a, lambda r: f"{r['source']}  {r['key']}  "
                                                 f"{'indexed' if r['indexed'] else 'NOT indexed'}  {r['error']}"),
                          _never),
}


def _plugins(a: argparse.Namespace) -> None:
    from mailindex.plugins import list_plugins, plugin_manager  # pluggy: only this command needs it here

    _listing(list_plugins(plugin_manager()), a, lambda p: f"{p['name']:<10} "
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


def _show(m: dict[str, Any]) -> str:
    """One message as text, with whatever its include options added (headers, flags, body, source)."""
    lines = [f"message_id: {m['message_id']}", f"Message-ID: {m['email_message_id'] or '(none)'}",
             f"date:       {_when(m['date'])} UTC   indexed {_when(m['date_indexed'])}"]
    for role, value in m["addresses"].items():
        for a in value if isinstance(value, list) else [value]:
            lines.append(f"{role + ':':<11} " + (f"{a['name']} <{a['email']}>" if a.get("name") else a["email"]))
    lines += [f"subject:    {m['subject']}", f"folders:    {', '.join(m['folders'])}",
              f"sources:    {', '.join(s['label'] for s in m['sources'])}"]
    for f in m["files"]:
        lines.append(f"file:       {f['file_name'] or '(no name)'}  {f['size']:,} bytes  {f['type']}  "
                     f"part {f['body_section']}")
    if "thread_size" in m:
        lines.append(f"thread:     {m['thread_size']} message{'' if m['thread_size'] == 1 else 's'}")
    if "flags" in m:
        lines.append("flags:      " + (", ".join(k for k, v in m["flags"].items() if v) or "(none)"))
    if isinstance(m.get("headers"), dict):
        lines.append("\n--- headers ---")
        lines += [f"{name}: {value}" for name, values in m["headers"].items() for value in values]
    elif "headers" in m:
        lines.append(f"\n--- headers (raw) ---\n{m['headers']}")
    for part in m.get("body", []):
        lines.append(f"\n--- {part['type']} ({part['charset']}) part {part['body_section']} ---\n{part['content']}")
    if "source" in m:
        lines.append(f"\n--- source ---\n{m['source']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions (argcomplete's protocol): answers, exits
            import argcomplete

            argcomplete.autocomplete(parser)
        args = parser.parse_args(argv)
        _check_text(args)
        return run(args)
    except MailindexError as exc:
        print("mailindex:", " ".join(str(exc).splitlines()), file=sys.stderr)  # one line, whatever a server said
        return 1
    except KeyboardInterrupt:
        print("mailindex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
