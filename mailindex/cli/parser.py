"""The command line's grammar: one argparse tree, and the checks on what it parsed.

Errors follow the command line's convention (one line, exit 1), argparse's own included.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mailindex import __version__
from mailindex.cli.output import terminal_columns
from mailindex.config import default_index_dir
from mailindex.errors import MailindexError, QueryError
from mailindex.folders import FLAG_NAMES
from mailindex.query.filters import ADDRESS_PARAMS, TIME_PARAMS

EPILOG = ("Index location: --index DIR, else $MAILINDEX_HOME, else `index` of the configuration file "
          "($MAILINDEX_CONFIG, else $XDG_CONFIG_HOME/mailindex/config.toml), else $XDG_DATA_HOME/mailindex. "
          "The file may also set `owner` (addresses) and `format` (text, json or jsonl; $MAILINDEX_FORMAT "
          "overrides it).")


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout, given its width: argparse would import shutil for it on every argument."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns(80) - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors follow the convention: one line and exit 1 (not usage text and exit 2),
    and whose help is laid out without shutil."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise MailindexError(f"{message} (see {self.prog} --help)")


# Arguments that are paths and may be any bytes (Linux paths need not be UTF-8); every other one is text.
_BYTES_ARGS = ("index", "file")


def check_text(args: argparse.Namespace) -> None:
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


def _include_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--include-body", action="store_true", help="add text body parts (read from the source)")
    p.add_argument("--body-type", metavar="TYPE", help="only body parts of this MIME type, e.g. text/html")
    p.add_argument("--include-headers", choices=["0", "1", "raw"], default="0",
                   help="1: parsed headers; raw: the header block as in the source")
    p.add_argument("--include-flags", action="store_true", help="add flags, read live from the source")
    p.add_argument("--include-thread-size", action="store_true", help="add thread_size: messages in its thread")
    p.add_argument("--include-source", action="store_true", help="add the raw message source")


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


def _flag_args(p: argparse.ArgumentParser, prefix: str) -> None:
    for name in FLAG_NAMES:
        p.add_argument(f"--{prefix}{name}", type=int, choices=[0, 1], help=f"1: set {name}, 0: clear it")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command tree; with `command`, only that command's branch (the others cost a process
    ~7 ms of argparse objects it would never use)."""
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
    for name, build in PARSERS.items():
        if command in (None, name):
            build(sub, common)
    return parser


def _index_parser(sub: Any, common: argparse.ArgumentParser) -> None:
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


def _sync_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sync", parents=[common], help="sync one source, or all of them",
                       description="Apply new, changed and vanished messages of registered sources: one source "
                                   "of the account by LABEL, else every enabled source (of --account, or of "
                                   "every account).")
    p.add_argument("label", nargs="?")
    p.add_argument("--workers", type=int, help="parser processes (default: CPU count)")
    _progress_args(p)
    p.add_argument("--json", action="store_true")


def _instant(text: str) -> int:
    """A --date-after/--date-before value as Unix seconds."""
    from mailindex.query.dates import instant

    try:
        return instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _search_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("search", parents=[common], help="list messages matching a query and Context.IO filters",
                       description="QUERY is words, \"phrases\", prefix*, -word, OR, (...) and field:value "
                                   "(from: to: cc: bcc: email: subject: body: attachment: file: folder: source: "
                                   "date: size: has:attachment is:FLAG); quote it for the shell. Comma-separated "
                                   "values within a filter are OR; the query and several filters are AND. "
                                   "Subject and file name accept /regex/; file name accepts * ? [] wildcards.")
    p.add_argument("f_q", nargs="*", metavar="QUERY", help="the query language (see the README), words joined by spaces")
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
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"f_{name}", type=_instant, metavar="WHEN",
                       help="exclusive bound: Unix seconds, or ISO 8601 (2001-10-05, 2001-10-05T14:30Z), "
                            "its first second, UTC unless a zone is given")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="1..100 (default 100)")
    p.add_argument("--offset", type=int, default=None, metavar="N", help="skip the first N matches")
    p.add_argument("--sort-order", choices=["asc", "desc"], default=None, help="by date (default desc)")
    p.add_argument("--all", action="store_true", help="every match, no 100 cap")
    p.add_argument("--count", action="store_true", help="print only the number of matches")
    _json_args(p, "message objects")
    _include_args(p)


def _show_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("show", parents=[common], help="one message by message_id, <Message-ID> or gm-<id>")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    _include_args(p)


def _source_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("source", parents=[common], help="write a message's original bytes to stdout")
    p.add_argument("id")


def _body_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("body", parents=[common], help="a message's text parts, decoded")
    p.add_argument("id")
    p.add_argument("--type", dest="body_type", metavar="TYPE", help="only parts of this MIME type, e.g. text/html")
    p.add_argument("--json", action="store_true")


def _headers_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("headers", parents=[common], help="a message's headers, decoded, in order")
    p.add_argument("id")
    p.add_argument("--raw", action="store_true", help="the header block exactly as in the source")
    p.add_argument("--json", action="store_true")


def _flags_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("flags", parents=[common], help="a message's flags, read from its source now; or set them",
                       description="Without options: the flags, read live. With --seen 1 and the like: set or "
                                   "clear them at the source (Maildir renames, mbox rewrites Status, IMAP STORE).")
    p.add_argument("id")
    _flag_args(p, "")
    p.add_argument("--json", action="store_true")


def _folders_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("folders", parents=[common], help="the folders a message is in; or change them",
                       description="Without options: the folders. --add/--remove copy the message into or delete "
                                   "it from folders of its source; --set replaces the whole set (a name, or a "
                                   "symbolic name such as \\Archive; \\Flagged sets the flag).")
    p.add_argument("id")
    p.add_argument("--add", metavar="FOLDER", action="append")
    p.add_argument("--remove", metavar="FOLDER", action="append")
    p.add_argument("--set", metavar="FOLDER", action="append")
    p.add_argument("--json", action="store_true")


def _transfer_parser(sub: Any, common: argparse.ArgumentParser, name: str, what: str) -> None:
    p = sub.add_parser(name, parents=[common], help=what)
    p.add_argument("id")
    p.add_argument("dst_folder", metavar="FOLDER")
    p.add_argument("--dst-source", metavar="LABEL", help="another source of the account")
    _flag_args(p, "flag-")
    p.add_argument("--json", action="store_true")


def _delete_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("delete", parents=[common], help="delete a message at its sources (Gmail: to the Trash)")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")


def _append_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("append", parents=[common], help="add a raw RFC 822 message (FILE, or - for stdin)")
    p.add_argument("file")
    p.add_argument("dst_folder", metavar="FOLDER")
    p.add_argument("--dst-source", metavar="LABEL", help="default: the account's first source")
    _flag_args(p, "flag-")
    p.add_argument("--json", action="store_true")


def _thread_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("thread", parents=[common], help="every message of a message's thread, in conversation order")
    p.add_argument("id")
    p.add_argument("--limit", type=int, default=None, help="1..100 (default 100)")
    p.add_argument("--offset", type=int, default=None)
    p.add_argument("--json", action="store_true")
    _include_args(p)


def _contacts_parser(sub: Any, common: argparse.ArgumentParser) -> None:
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


def _quarantine_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("quarantine", parents=[common], help="messages recorded with a parse or read error")
    _json_args(p, "quarantine entries")


def _plugins_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("plugins", parents=[common], help="list registered backends and their hooks")
    _json_args(p, "plugins")


def _completion_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("completion", parents=[common], help="print the shell code that completes commands and options",
                       description='Load it from your shell\'s start-up file: eval "$(mailindex completion bash)" '
                                   'or eval "$(mailindex completion zsh)". make install also writes the bash one to '
                                   '.venv/share/bash-completion/completions/mailindex.')
    p.add_argument("shell", choices=["bash", "zsh"])


def _man_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    sub.add_parser("man", parents=[common], help="print the manual page: mailindex man | man -l -",
                   description="mailindex(1) in roff, written from this command's own options. make install "
                               "also writes it to .venv/share/man/man1/mailindex.1.")


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


# Each command's branch of the tree, in the order --help lists them.
PARSERS: dict[str, Callable[[Any, argparse.ArgumentParser], None]] = {
    "index": _index_parser,
    "sync": _sync_parser,
    "accounts": _accounts_parser,
    "sources": _sources_parser,
    "connect-tokens": _tokens_parser,
    "search": _search_parser,
    "show": _show_parser,
    "source": _source_parser,
    "body": _body_parser,
    "headers": _headers_parser,
    "flags": _flags_parser,
    "folders": _folders_parser,
    "copy": functools.partial(_transfer_parser, name="copy",
                              what="copy a message to a folder, in its source or another (--dst-source)"),
    "move": functools.partial(_transfer_parser, name="move",
                              what="move a message: copy, verify the copy, then delete the original"),
    "delete": _delete_parser,
    "append": _append_parser,
    "thread": _thread_parser,
    "contacts": _contacts_parser,
    "quarantine": _quarantine_parser,
    "plugins": _plugins_parser,
    "completion": _completion_parser,
    "man": _man_parser,
}


# The options every command takes, which may also come before the command's name.
_GLOBAL = {"--index": True, "--read-only": False, "--account": True}  # name -> takes a value


def command_named(argv: Sequence[str]) -> str | None:
    """The command `argv` runs, when that is plain before parsing (global options, then a command's
    name); "" for `--version`, which needs no command; None when in doubt (help, an unknown word),
    which asks for the whole tree."""
    words = iter(argv)
    for word in words:
        if word in PARSERS:
            return word
        if word == "--version":  # argparse prints it and exits when it meets it, before any command
            return ""
        name, has_value, _ = word.partition("=")
        known = [o for o in _GLOBAL if o.startswith(name)] if name.startswith("--") and name != "--" else []
        if len(known) != 1:  # argparse accepts any unambiguous prefix, as here
            return None
        if _GLOBAL[known[0]] and not has_value:
            next(words, None)
    return None
