"""An in-memory IMAP4rev1 server on 127.0.0.1 that behaves like Gmail's IMAP (X-GM-EXT-1), for tests.

Dovecot cannot speak Gmail's extensions, so the IMAP backend's Gmail behaviour is
tested against this. Standard library only; one thread per connection.

Imitated:
- One message object per message; every folder is a view of the messages with
  that label. `[Gmail]/All Mail` shows everything not in Trash or Spam,
  `[Gmail]/Starred` everything flagged; a trashed message carries only the
  `[Gmail]/Trash` label.
- Per-folder UIDVALIDITY and UIDs given out as messages enter a folder, never
  reused (a label removed and added again gives a new UID).
- X-GM-MSGID, X-GM-THRID, X-GM-LABELS in FETCH, STORE, SEARCH; COPY adds a
  label, COPY/MOVE to Trash trashes, `\\Deleted` + EXPUNGE removes only the
  folder's label (deletes for ever in Trash and Spam, trashes in All Mail).
  `\\Deleted` is a mark per folder view; the other flags are per message.
- UIDPLUS (COPYUID, APPENDUID, UID EXPUNGE), MOVE, SPECIAL-USE, ID, NAMESPACE,
  UNSELECT, optionally CONDSTORE (one modseq counter per account, as on Gmail),
  LOGIN and AUTHENTICATE PLAIN / XOAUTH2 (the token is the password),
  [TRYCREATE], [NONEXISTENT], [AUTHENTICATIONFAILED], [OVERQUOTA] answers.
- Threads: a message whose In-Reply-To/References names a known Message-ID
  joins that message's thread.
- Other sessions learn of new and vanished messages (EXISTS/EXPUNGE) around
  their next command; never while answering FETCH, STORE or SEARCH (UID forms
  included), so a message a STORE moved out stays addressable until a NOOP.

Not imitated: TLS, IDLE, COMPRESS, X-GM-RAW search, ENVELOPE/BODYSTRUCTURE and
numbered body parts, Gmail's threading by subject, duplicate suppression by
Message-ID, flag changes pushed to other sessions (only EXISTS/EXPUNGE are),
QRESYNC, rate limits and bandwidth limits.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import itertools
import json
import re
import socket
import socketserver
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from typing import Any, Union

INBOX = "INBOX"
GMAIL = "[Gmail]"
ALL_MAIL = "[Gmail]/All Mail"
DRAFTS = "[Gmail]/Drafts"
IMPORTANT = "[Gmail]/Important"
SENT = "[Gmail]/Sent Mail"
SPAM = "[Gmail]/Spam"
STARRED = "[Gmail]/Starred"
TRASH = "[Gmail]/Trash"

SYSTEM_FOLDERS = (INBOX, GMAIL, ALL_MAIL, DRAFTS, IMPORTANT, SENT, SPAM, STARRED, TRASH)
SPECIAL_USE = {ALL_MAIL: "\\All", DRAFTS: "\\Drafts", IMPORTANT: "\\Important", SENT: "\\Sent",
               SPAM: "\\Junk", STARRED: "\\Flagged", TRASH: "\\Trash"}
GM_LABELS = {INBOX: "\\Inbox", SENT: "\\Sent", IMPORTANT: "\\Important", STARRED: "\\Starred",
             DRAFTS: "\\Draft", TRASH: "\\Trash", SPAM: "\\Spam"}
FIRST_MSGID = 1_600_000_000_000_000_000

_GM_LABEL_IN = {v.lower(): k for k, v in GM_LABELS.items()} | {"\\drafts": DRAFTS}
_SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Draft", "\\Deleted", "\\Seen")
_FLAG_CASE = {f.lower(): f for f in (*_SYSTEM_FLAGS, "\\Recent")}
_GMAIL_FLAGS = "\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LITERAL_AT_END = re.compile(rb"\{(\d+)(\+?)\}\r?\n\Z")
_MAX_LINE = 1 << 20

_Token = Union[str, bytes, list[Any]]  # atom, string (quoted or literal), parenthesised list


@dataclass
class GmailMessage:
    """One Gmail message: a single object that every folder showing it is a view of."""

    msgid: int
    thrid: int
    data: bytes
    labels: set[str]  # folder names: "INBOX", "Work", "[Gmail]/Sent Mail", "[Gmail]/Trash", ...
    flags: set[str]  # per message, shared by all views; \Deleted is not here (it is per view)
    internaldate: datetime
    modseq: int = 0


@dataclass
class _Folder:
    """A folder: its UIDVALIDITY and the UIDs it gave the messages now in it."""

    name: str
    uidvalidity: int
    noselect: bool = False
    uidnext: int = 1
    uids: dict[int, int] = field(default_factory=dict)  # msgid -> uid
    by_uid: dict[int, int] = field(default_factory=dict)  # uid -> msgid, ascending
    deleted: set[int] = field(default_factory=set)  # msgids marked \Deleted in this view

    def enter(self, msgid: int) -> None:
        """A message came into the folder: it gets the next UID."""
        self.uids[msgid] = self.uidnext
        self.by_uid[self.uidnext] = msgid
        self.uidnext += 1

    def leave(self, msgid: int) -> None:
        """A message left the folder; its UID is never given out again."""
        uid = self.uids.pop(msgid, None)
        if uid is not None:
            del self.by_uid[uid]
        self.deleted.discard(msgid)


class _Reply(Exception):
    """Ends a command with a tagged NO or BAD."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(f"{status} {text}")
        self.status, self.text = status, text


def _bad(text: str = "Could not parse command") -> _Reply:
    return _Reply("BAD", text)


class _Account:
    """One user's mail: the messages and the folders that show them."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.messages: dict[int, GmailMessage] = {}
        self.folders: dict[str, _Folder] = {}
        self.modseq = 1
        self.threads: dict[str, int] = {}  # Message-ID header -> X-GM-THRID
        self._validity = itertools.count(1)
        for name in SYSTEM_FOLDERS:
            self.create(name)

    def create(self, name: str) -> _Folder:
        """Make a folder, and its missing parents (as Gmail does for nested labels)."""
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            path = "/".join(parts[:i])
            if path not in self.folders:
                self.folders[path] = _Folder(path, next(self._validity), noselect=path == GMAIL)
        return self.folders[name]

    def delete_folder(self, name: str) -> None:
        """Drop a user label from every message, then the folder."""
        for msg in list(self.messages.values()):
            if name in msg.labels:
                self.mutate(msg, lambda m=msg: m.labels.discard(name))
        del self.folders[name]
        self.modseq += 1

    def rename_folder(self, old: str, new: str) -> None:
        """Rename a label and its children, keeping their UIDVALIDITY and UIDs."""
        renames = {n: new + n[len(old):] for n in self.folders if n == old or n.startswith(old + "/")}
        for src, dst in renames.items():
            folder = self.folders.pop(src)
            folder.name = dst
            self.folders[dst] = folder
        for msg in self.messages.values():
            if msg.labels & renames.keys():
                msg.labels = {renames.get(label, label) for label in msg.labels}
                self.bump(msg)

    @staticmethod
    def member(msg: GmailMessage, name: str) -> bool:
        """Whether the folder `name` shows `msg`."""
        trashed = TRASH in msg.labels or SPAM in msg.labels
        if name == ALL_MAIL:
            return not trashed
        if name == STARRED:
            return "\\Flagged" in msg.flags and not trashed
        return name in msg.labels

    def bump(self, msg: GmailMessage) -> None:
        self.modseq += 1
        msg.modseq = self.modseq

    def refresh(self, msg: GmailMessage) -> None:
        """Give the message UIDs in the folders it entered and take them back where it left."""
        alive = msg.msgid in self.messages
        for folder in self.folders.values():
            if folder.noselect:
                continue
            inside = alive and self.member(msg, folder.name)
            if inside and msg.msgid not in folder.uids:
                folder.enter(msg.msgid)
            elif not inside and msg.msgid in folder.uids:
                folder.leave(msg.msgid)

    def mutate(self, msg: GmailMessage, change: Callable[[], Any]) -> None:
        """Apply a change to labels/flags; bump the modseq and move UIDs only if something changed."""
        before = (set(msg.labels), set(msg.flags))
        change()
        if (msg.labels, msg.flags) != before:
            self.bump(msg)
            self.refresh(msg)

    def add_label(self, msg: GmailMessage, name: str) -> None:
        """COPY semantics: Trash/Spam take the message out of everything else."""
        def change() -> None:
            if name == STARRED:
                msg.flags.add("\\Flagged")
            elif name in (TRASH, SPAM):
                msg.labels = {name}
            elif name != ALL_MAIL:
                msg.labels -= {TRASH, SPAM}
                msg.labels.add(name)
        self.mutate(msg, change)

    def remove_label(self, msg: GmailMessage, name: str) -> None:
        """Take one label away (out of Trash/Spam: back to All Mail)."""
        def change() -> None:
            if name == STARRED:
                msg.flags.discard("\\Flagged")
            else:
                msg.labels.discard(name)
        self.mutate(msg, change)

    def expunge_from(self, msg: GmailMessage, name: str) -> None:
        """What EXPUNGE of a \\Deleted message does in folder `name`."""
        if name in (TRASH, SPAM):
            self.destroy(msg)
        elif name == ALL_MAIL:
            self.add_label(msg, TRASH)
        else:
            self.remove_label(msg, name)

    def destroy(self, msg: GmailMessage) -> None:
        """Delete for ever."""
        del self.messages[msg.msgid]
        for folder in self.folders.values():
            folder.leave(msg.msgid)
        self.modseq += 1

    def set_deleted(self, folder: _Folder, msg: GmailMessage, on: bool) -> None:
        """\\Deleted is a mark on one folder's view of the message."""
        if on != (msg.msgid in folder.deleted) and msg.msgid in folder.uids:
            (folder.deleted.add if on else folder.deleted.discard)(msg.msgid)
            self.bump(msg)

    def label_folder(self, label: str, create: bool) -> str | None:
        """The folder an X-GM-LABELS name stands for (\\Inbox, \\Sent, ... or a folder/label name)."""
        if label.startswith("\\"):
            name = _GM_LABEL_IN.get(label.lower())
            if name is None:
                raise _bad(f"Invalid label {label}")
            return name
        name = canonical(label)
        folder = self.folders.get(name)
        if folder is not None:
            if folder.noselect:
                raise _Reply("NO", f"[CANNOT] Invalid label {label} (Failure)")
            return name
        if not create:
            return None
        check_new_name(name)
        self.create(name)
        return name

    def gm_labels(self, msg: GmailMessage) -> list[str]:
        """X-GM-LABELS as Gmail reports them: system labels by their \\ names, user labels by name."""
        out = [GM_LABELS[name] for name in sorted(msg.labels) if name in GM_LABELS]
        if self.member(msg, STARRED):
            out.append("\\Starred")
        return out + sorted(name for name in msg.labels if name not in GM_LABELS)

    def used_bytes(self) -> int:
        return sum(len(m.data) for m in self.messages.values())

    def new_message(self, msgid: int, data: bytes, labels: Iterable[str], flags: Iterable[str],
                    internaldate: datetime, thread_id: int | None) -> GmailMessage:
        """Store a message with the given labels (folder or Gmail names); returns it."""
        own_ids = _header_ids(data, "Message-ID")
        if thread_id is None:
            refs = _header_ids(data, "In-Reply-To", "References")
            thread_id = next((self.threads[r] for r in reversed(refs) if r in self.threads), msgid)
        for mid in own_ids:
            self.threads.setdefault(mid, thread_id)
        folders = [self.label_folder(label, create=True) for label in labels]
        kept = {_flag(f) for f in flags} - {"\\Deleted", "\\Recent"}
        msg = GmailMessage(msgid, thread_id, bytes(data), set(), kept, internaldate)
        self.messages[msgid] = msg
        for name in folders:
            assert name is not None
            self.add_label(msg, name)
        self.bump(msg)
        self.refresh(msg)
        return msg


def canonical(name: str) -> str:
    """Folder names are case-sensitive except INBOX."""
    return INBOX if name.upper() == INBOX else name


def check_new_name(name: str) -> None:
    """Names a user label may not have."""
    if not name or name.startswith("/") or name.endswith("/") or "//" in name:
        raise _Reply("NO", f"[CANNOT] Invalid folder name {name} (Failure)")
    if name == INBOX or name == GMAIL or name.startswith(GMAIL + "/"):
        raise _Reply("NO", f"[CANNOT] Folder name {name} is reserved (Failure)")


def _flag(flag: str) -> str:
    """System flags are case-insensitive; keywords are kept as given."""
    return _FLAG_CASE.get(flag.lower(), flag)


def _header_ids(data: bytes, *names: str) -> list[str]:
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
    return re.findall(r"<[^<>\s]+>", " ".join(str(v) for n in names for v in headers.get_all(n, [])))


def _split_message(data: bytes) -> tuple[bytes, bytes]:
    """(header including the blank line, text)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep)
        if at >= 0:
            return data[:at + len(sep)], data[at + len(sep):]
    return data, b""


def _header_fields(header: bytes, names: set[str], negate: bool) -> bytes:
    """HEADER.FIELDS (NOT): the matching fields, continuation lines included, then CRLF."""
    fields: list[bytes] = []
    for line in header.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    kept = [f for f in fields if (f.split(b":", 1)[0].strip().decode("latin-1").lower() in names) != negate]
    return b"".join(kept) + b"\r\n"


def format_internaldate(when: datetime) -> str:
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    tz = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d} {when:%H:%M:%S} {tz}"


def parse_internaldate(text: str) -> datetime:
    m = re.fullmatch(r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", text)
    if m is None or m.group(2).title() not in _MONTHS:
        raise _bad(f"Invalid date-time {text!r}")
    day, mon, year, hh, mm, ss, sign, th, tm = m.groups()
    offset = timedelta(hours=int(th), minutes=int(tm)) * (-1 if sign == "-" else 1)
    return datetime(int(year), _MONTHS.index(mon.title()) + 1, int(day), int(hh), int(mm), int(ss),
                    tzinfo=timezone(offset))


def _quote(text: str) -> bytes:
    """A quoted string, or a literal when quoting cannot carry it."""
    raw = text.encode("utf-8")
    if any(b >= 0x80 or b in (0, 10, 13) for b in raw):
        return b"{%d}\r\n" % len(raw) + raw
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _label_out(label: str) -> bytes:
    """Gmail sends plain labels as atoms and quotes the rest (and the \\ system labels)."""
    if re.fullmatch(r"[A-Za-z0-9_.&+\-/]*[A-Za-z_.&+\-/][A-Za-z0-9_.&+\-/]*", label) and label.upper() != "NIL":
        return label.encode()
    return _quote(label)


class _Parser:
    """Tokens of one command: atoms (str), strings (bytes), lists; literals are inline."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def parse(self) -> list[_Token]:
        return self._items(top=True)

    def _items(self, top: bool) -> list[_Token]:
        out: list[_Token] = []
        while True:
            if self.pos >= len(self.data):
                if top:
                    return out
                raise _bad("Unclosed list")
            c = self.data[self.pos]
            if c == 0x20:
                self.pos += 1
            elif c == 0x29:
                if top:
                    raise _bad("Unexpected )")
                self.pos += 1
                return out
            elif c == 0x28:
                self.pos += 1
                out.append(self._items(top=False))
            elif c == 0x22:
                out.append(self._quoted())
            elif c == 0x7B:
                out.append(self._literal())
            else:
                out.append(self._atom())

    def _quoted(self) -> bytes:
        buf = bytearray()
        self.pos += 1
        while self.pos < len(self.data):
            c = self.data[self.pos]
            self.pos += 1
            if c == 0x22:
                return bytes(buf)
            if c == 0x5C:
                if self.pos >= len(self.data):
                    break
                c = self.data[self.pos]
                self.pos += 1
            elif c in (10, 13):
                break
            buf.append(c)
        raise _bad("Unterminated quoted string")

    def _literal(self) -> bytes:
        m = re.compile(rb"\{(\d+)\+?\}\r?\n").match(self.data, self.pos)
        if m is None:
            raise _bad("Invalid literal")
        end = m.end() + int(m.group(1))
        if end > len(self.data):
            raise _bad("Short literal")
        self.pos = end
        return self.data[m.end():end]

    def _atom(self) -> str:
        # Brackets may hold spaces and parens: BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>
        start, depth = self.pos, 0
        while self.pos < len(self.data):
            c = self.data[self.pos]
            if c in (10, 13):
                raise _bad()
            if c == 0x5B:
                depth += 1
            elif c == 0x5D:
                depth = max(0, depth - 1)
            elif depth == 0 and c in b' ()"{':
                break
            self.pos += 1
        if self.pos == start:
            raise _bad()
        return self.data[start:self.pos].decode("utf-8", "replace")


def _text(token: _Token) -> str:
    """An astring argument as str."""
    if isinstance(token, list):
        raise _bad("Expected a string")
    return token.decode("utf-8", "replace") if isinstance(token, bytes) else token


def _atom(token: _Token) -> str:
    if not isinstance(token, str):
        raise _bad("Expected an atom")
    return token


def _ranges(text: str, star: int) -> list[tuple[int, int]]:
    """A sequence set as (low, high) pairs; `*` is `star`."""
    out = []
    for part in text.split(","):
        ends = part.split(":")
        if len(ends) > 2 or not all(e == "*" or (e.isdigit() and int(e) > 0) for e in ends):
            raise _bad(f"Invalid sequence set {text}")
        lo, hi = (star if e == "*" else int(e) for e in (ends[0], ends[-1]))
        out.append((min(lo, hi), max(lo, hi)))
    return out


def _in_ranges(ranges: list[tuple[int, int]], n: int) -> bool:
    return any(lo <= n <= hi for lo, hi in ranges)


def _uid_set(uids: list[int]) -> str:
    return ",".join(map(str, uids))


@dataclass
class _FetchItem:
    """One parsed FETCH data item."""

    name: str  # UID, FLAGS, ..., or BODY for a section
    section: str = ""
    peek: bool = True
    partial: tuple[int, int] | None = None
    label: str = ""  # how the response names it


_SIMPLE_ITEMS = {"UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS",
                 "MODSEQ", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}


def _fetch_item(text: str) -> list[_FetchItem]:
    upper = text.upper()
    if upper == "FAST":
        return [_FetchItem("FLAGS"), _FetchItem("INTERNALDATE"), _FetchItem("RFC822.SIZE")]
    if upper in _SIMPLE_ITEMS:
        return [_FetchItem(upper, peek=upper != "RFC822" and upper != "RFC822.TEXT", label=upper)]
    m = re.fullmatch(r"BODY(\.PEEK)?\[([^\]]*)\](?:<(\d+)\.(\d+)>)?", upper)
    if m is None:
        raise _bad(f"Unsupported FETCH item {text}")
    section = " ".join(m.group(2).split())
    if not re.fullmatch(r"|HEADER|TEXT|HEADER\.FIELDS(\.NOT)? \(.*\)", section):
        raise _bad(f"Unsupported body section {section}")
    partial = (int(m.group(3)), int(m.group(4))) if m.group(3) else None
    label = f"BODY[{section}]" + (f"<{partial[0]}>" if partial else "")
    return [_FetchItem("BODY", section, bool(m.group(1)), partial, label)]


def _section_bytes(data: bytes, item: _FetchItem) -> bytes:
    header, text = _split_message(data)
    if item.name == "RFC822.HEADER" or item.section == "HEADER":
        out = header
    elif item.name == "RFC822.TEXT" or item.section == "TEXT":
        out = text
    elif item.section.startswith("HEADER.FIELDS"):
        names = re.search(r"\((.*)\)", item.section)
        assert names is not None
        wanted = {n.strip('"').lower() for n in names.group(1).split()}
        out = _header_fields(header, wanted, item.section.startswith("HEADER.FIELDS.NOT"))
    else:
        out = data
    if item.partial is not None:
        start, length = item.partial
        out = out[start:start + length]
    return out


class _Session:
    """One client connection's IMAP state; `execute` runs one command and returns the response bytes."""

    def __init__(self, gm: GmailServer, send: Callable[[bytes], None],
                 readline: Callable[[], bytes | None]) -> None:
        self.gm, self.send, self.readline = gm, send, readline
        self.user: str | None = None
        self.acct: _Account | None = None
        self.selected: _Folder | None = None
        self.readonly = False
        self.view: list[tuple[int, int]] = []  # this session's (uid, msgid) per sequence number
        self.view_validity = 0
        self.max_seen = 0
        self.condstore_on = False
        self.closing = False
        self.out: list[bytes] = []

    # -- plumbing ---------------------------------------------------------------------------------

    def line(self, text: str | bytes) -> None:
        self.out.append((text.encode() if isinstance(text, str) else text) + b"\r\n")

    def execute(self, raw: bytes) -> bytes:
        """Run one complete command (literals inline, final CRLF included)."""
        self.out = []
        body = raw[:-2] if raw.endswith(b"\r\n") else raw.rstrip(b"\n")
        tag = body.split(b" ", 1)[0]
        try:
            tokens = _Parser(body).parse()
            if len(tokens) < 2 or not isinstance(tokens[0], str) or not isinstance(tokens[1], str):
                raise _bad()
            status = self._run(tokens[1].upper(), tokens[2:])
        except _Reply as reply:
            status = f"{reply.status} {reply.text}"
        except Exception:
            self.gm.errors.append(traceback.format_exc())
            status = "BAD Internal server error"
        if not tag or not re.fullmatch(rb"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+", tag):
            tag = b"*"
        return b"".join(self.out) + tag + b" " + status.encode() + b"\r\n"

    _ANY = {"CAPABILITY", "NOOP", "LOGOUT", "ID"}
    _NONAUTH = {"LOGIN", "AUTHENTICATE"}
    _AUTH = {"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB",
             "STATUS", "APPEND", "NAMESPACE", "ENABLE"}
    _SELECTED = {"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "UID"}
    _UID_CAPABLE = {"FETCH", "STORE", "COPY", "MOVE", "EXPUNGE", "SEARCH"}
    # RFC 3501 7.4.1 forbids EXPUNGE while answering these; their UID forms get none either, so a
    # message a STORE took out of the folder stays addressable until the next NOOP (as on most servers)
    _NO_EXPUNGE = {"FETCH", "STORE", "SEARCH"}
    _FRESH_VIEW = {"SELECT", "EXAMINE", "CLOSE", "UNSELECT", "LOGOUT"}

    def _run(self, name: str, args: list[_Token]) -> str:
        known = self._ANY | self._NONAUTH | self._AUTH | self._SELECTED
        if name not in known:
            raise _bad("Unknown command")
        allowed = (name in self._ANY or (name in self._NONAUTH and self.acct is None)
                   or (name in self._AUTH and self.acct is not None)
                   or (name in self._SELECTED and self.selected is not None))
        if not allowed:
            raise _bad("Command not valid in this state")
        if name == "AUTHENTICATE":
            return self._authenticate(args)  # talks to the client before it takes the lock
        with self.gm._lock:
            if name == "UID":
                if not args:
                    raise _bad()
                sub = _atom(args[0]).upper()
                if sub not in self._UID_CAPABLE:
                    raise _bad("Unknown UID command")
                return self._with_updates(sub not in self._NO_EXPUNGE,
                                          lambda: getattr(self, "_cmd_" + sub.lower())(args[1:], True))
            handler = getattr(self, "_cmd_" + name.lower())
            if name in self._UID_CAPABLE:
                return self._with_updates(name not in self._NO_EXPUNGE, lambda: handler(args, False))
            if self.selected is None or name in self._FRESH_VIEW:
                return handler(args)
            return self._with_updates(True, lambda: handler(args))

    def _with_updates(self, allow_expunge: bool, run: Callable[[], str]) -> str:
        """Tell the client what changed in the selected folder before and after the command."""
        self._updates(allow_expunge)
        try:
            return run()
        finally:
            if self.selected is not None:
                self._updates(allow_expunge)

    def _updates(self, allow_expunge: bool) -> None:
        folder = self.selected
        assert folder is not None and self.acct is not None
        alive = self.acct.folders.get(folder.name) is folder
        current = folder.by_uid if alive else {}
        if alive and folder.uidvalidity != self.view_validity:
            if not allow_expunge:
                return
            current, self.max_seen, self.view_validity = {}, 0, folder.uidvalidity
        if allow_expunge:
            for i in range(len(self.view) - 1, -1, -1):
                if self.view[i][0] not in current:
                    self.line(f"* {i + 1} EXPUNGE")
                    del self.view[i]
            current = folder.by_uid if alive else {}
        new = [(uid, mid) for uid, mid in current.items() if uid > self.max_seen]
        if new:
            self.view.extend(new)
            self.max_seen = new[-1][0]
            self.line(f"* {len(self.view)} EXISTS")

    def _account(self) -> _Account:
        assert self.acct is not None
        return self.acct

    def _folder_arg(self, token: _Token) -> str:
        return canonical(_text(token))

    def _resolve(self, text: str, uid: bool) -> list[tuple[int, int, int]]:
        """(seq, uid, msgid) of the messages a sequence set names, in this session's view."""
        if uid:
            ranges = _ranges(text, self.view[-1][0] if self.view else 0)
            return [(i + 1, u, m) for i, (u, m) in enumerate(self.view) if _in_ranges(ranges, u)]
        ranges = _ranges(text, len(self.view))
        if any(lo < 1 or hi > len(self.view) for lo, hi in ranges):
            raise _bad(f"Invalid sequence set {text} (Failure)")
        return [(i + 1, u, m) for i, (u, m) in enumerate(self.view) if _in_ranges(ranges, i + 1)]

    def _view_flags(self, msg: GmailMessage) -> list[str]:
        assert self.selected is not None
        flags = set(msg.flags)
        if msg.msgid in self.selected.deleted:
            flags.add("\\Deleted")
        return sorted(flags)

    def _labels_bytes(self, msg: GmailMessage) -> bytes:
        return b"(" + b" ".join(_label_out(label) for label in self._account().gm_labels(msg)) + b")"

    def _capabilities(self) -> str:
        caps = ["IMAP4rev1", "UNSELECT", "NAMESPACE", "ID", "CHILDREN", "X-GM-EXT-1", "UIDPLUS", "MOVE", "SPECIAL-USE"]
        if self.gm.condstore:
            caps += ["ENABLE", "CONDSTORE"]
        if self.acct is None:
            caps += ["AUTH=PLAIN", "AUTH=XOAUTH2"]
        return " ".join(caps)

    # -- any state --------------------------------------------------------------------------------

    def _cmd_capability(self, args: list[_Token]) -> str:
        self.line("* CAPABILITY " + self._capabilities())
        return "OK Thats all she wrote! (Success)"

    def _cmd_noop(self, args: list[_Token]) -> str:
        return "OK Success"

    _cmd_check = _cmd_noop

    def _cmd_logout(self, args: list[_Token]) -> str:
        self.line("* BYE LOGOUT Requested")
        self.closing = True
        return "OK 73 good day (Success)"

    def _cmd_id(self, args: list[_Token]) -> str:
        self.line('* ID ("name" "GImap" "vendor" "Google, Inc." "support-url" "https://support.google.com/mail")')
        return "OK Success"

    # -- authentication ---------------------------------------------------------------------------

    def _login_as(self, user: str, password: str) -> bool:
        acct = self.gm._accounts.get(user)
        if acct is None or acct.password != password:
            return False
        self.user, self.acct = user, acct
        self.line("* CAPABILITY " + self._capabilities())
        return True

    def _cmd_login(self, args: list[_Token]) -> str:
        if len(args) != 2:
            raise _bad()
        if not self._login_as(_text(args[0]), _text(args[1])):
            raise _Reply("NO", "[AUTHENTICATIONFAILED] Invalid credentials (Failure)")
        return f"OK {self.user} authenticated (Success)"

    def _authenticate(self, args: list[_Token]) -> str:
        if not args:
            raise _bad()
        mech = _atom(args[0]).upper()
        if mech not in ("PLAIN", "XOAUTH2"):
            raise _Reply("NO", "Unsupported authentication mechanism (Failure)")
        if len(args) > 1:  # SASL-IR
            answer: bytes | None = _text(args[1]).encode()
        else:
            self.send(b"+ \r\n")
            answer = self.readline()
        if answer is None:
            self.closing = True
            raise _bad("Connection closed")
        answer = answer.strip()
        if answer == b"*":
            raise _bad("Authentication cancelled")
        try:
            decoded = base64.b64decode(answer, validate=True)
        except binascii.Error:
            raise _bad("Invalid SASL argument") from None
        if mech == "PLAIN":
            parts = decoded.split(b"\0")
            user, password = (parts[1], parts[2]) if len(parts) == 3 else (b"", b"")
        else:
            m = re.fullmatch(rb"user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01", decoded)
            user, password = (m.group(1), m.group(2)) if m else (b"", b"")
        with self.gm._lock:
            ok = self._login_as(user.decode("utf-8", "replace"), password.decode("utf-8", "replace"))
        if not ok:
            if mech == "XOAUTH2":  # Gmail sends a JSON error as a challenge and waits for any answer
                error = json.dumps({"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"})
                self.send(b"+ " + base64.b64encode(error.encode()) + b"\r\n")
                self.readline()
            raise _Reply("NO", "[AUTHENTICATIONFAILED] Invalid credentials (Failure)")
        return f"OK {self.user} authenticated (Success)"

    # -- authenticated state ----------------------------------------------------------------------

    def _cmd_enable(self, args: list[_Token]) -> str:
        enabled = [a for a in map(_text, args) if a.upper() == "CONDSTORE" and self.gm.condstore]
        self.condstore_on = self.condstore_on or bool(enabled)
        self.line(" ".join(["* ENABLED", *(a.upper() for a in enabled)]))
        return "OK Success"

    def _cmd_namespace(self, args: list[_Token]) -> str:
        self.line('* NAMESPACE (("" "/")) NIL NIL')
        return "OK Success"

    def _list_lines(self, kind: str, args: list[_Token]) -> str:
        if len(args) != 2:
            raise _bad()
        pattern = _text(args[0]) + _text(args[1])
        if not _text(args[1]):
            self.line(f'* {kind} (\\Noselect) "/" ""')
            return "OK Success"
        regex = "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern)
        folders = self._account().folders
        names = sorted(folders, key=lambda n: (n != INBOX, n))
        for name in names:
            if not (re.fullmatch(regex, name, re.S) or (name == INBOX and re.fullmatch(regex, name, re.S | re.I))):
                continue
            children = any(other.startswith(name + "/") for other in folders)
            attrs = ["\\HasChildren" if children else "\\HasNoChildren"]
            if folders[name].noselect:
                attrs.append("\\Noselect")
            if name in SPECIAL_USE:
                attrs.append(SPECIAL_USE[name])
            self.line(f'* {kind} ({" ".join(attrs)}) "/" '.encode() + _quote(name))
        return "OK Success"

    def _cmd_list(self, args: list[_Token]) -> str:
        return self._list_lines("LIST", args)

    def _cmd_lsub(self, args: list[_Token]) -> str:
        return self._list_lines("LSUB", args)

    def _cmd_subscribe(self, args: list[_Token]) -> str:
        return "OK Success"

    _cmd_unsubscribe = _cmd_subscribe

    def _existing(self, name: str) -> _Folder:
        folder = self._account().folders.get(name)
        if folder is None or folder.noselect:
            raise _Reply("NO", f"[NONEXISTENT] Unknown Mailbox: {name} (Failure)")
        return folder

    def _cmd_status(self, args: list[_Token]) -> str:
        if len(args) != 2 or not isinstance(args[1], list):
            raise _bad()
        name = self._folder_arg(args[0])
        folder, acct = self._existing(name), self._account()
        values = {"MESSAGES": len(folder.uids), "RECENT": 0, "UIDNEXT": folder.uidnext,
                  "UIDVALIDITY": folder.uidvalidity,
                  "UNSEEN": sum("\\Seen" not in acct.messages[m].flags for m in folder.uids)}
        if self.gm.condstore:
            values["HIGHESTMODSEQ"] = acct.modseq
        items = [_atom(a).upper() for a in args[1]]
        if any(i not in values for i in items):
            raise _bad("Invalid STATUS item")
        self.line(b"* STATUS " + _quote(name) + f" ({' '.join(f'{i} {values[i]}' for i in items)})".encode())
        return "OK Success"

    def _select(self, args: list[_Token], readonly: bool) -> str:
        if not args:
            raise _bad()
        self.selected, self.view = None, []
        if len(args) > 1 and isinstance(args[1], list) and any(_text(a).upper() == "CONDSTORE" for a in args[1]):
            self.condstore_on = self.gm.condstore
        name = self._folder_arg(args[0])
        folder = self._account().folders.get(name)
        if folder is None or folder.noselect:
            raise _Reply("NO", f"[NONEXISTENT] Unknown Mailbox: {name} (now in authenticated state) (Failure)")
        self.selected, self.readonly = folder, readonly
        self.view = list(folder.by_uid.items())
        self.max_seen = self.view[-1][0] if self.view else 0
        self.view_validity = folder.uidvalidity
        self.line(f"* FLAGS ({_GMAIL_FLAGS})")
        permanent = "" if readonly else _GMAIL_FLAGS + " \\*"
        self.line(f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted.")
        self.line(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid.")
        self.line(f"* {len(self.view)} EXISTS")
        self.line("* 0 RECENT")
        self.line(f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID.")
        if self.gm.condstore:
            self.line(f"* OK [HIGHESTMODSEQ {self._account().modseq}]")
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        return f"OK [{mode}] {name} selected. (Success)"

    def _cmd_select(self, args: list[_Token]) -> str:
        return self._select(args, readonly=False)

    def _cmd_examine(self, args: list[_Token]) -> str:
        return self._select(args, readonly=True)

    def _cmd_create(self, args: list[_Token]) -> str:
        if len(args) != 1:
            raise _bad()
        name = self._folder_arg(args[0]).rstrip("/")
        if name in self._account().folders:
            raise _Reply("NO", f"[ALREADYEXISTS] Duplicate folder name {name} (Failure)")
        check_new_name(name)
        self._account().create(name)
        return "OK Success"

    def _cmd_delete(self, args: list[_Token]) -> str:
        if len(args) != 1:
            raise _bad()
        name = self._folder_arg(args[0])
        if name not in self._account().folders:
            raise _Reply("NO", f"[NONEXISTENT] Unknown Mailbox: {name} (Failure)")
        if name in SYSTEM_FOLDERS:
            raise _Reply("NO", f"[CANNOT] Cannot delete system folder {name} (Failure)")
        self._account().delete_folder(name)
        return "OK Success"

    def _cmd_rename(self, args: list[_Token]) -> str:
        if len(args) != 2:
            raise _bad()
        old, new = self._folder_arg(args[0]), self._folder_arg(args[1])
        acct = self._account()
        if old not in acct.folders:
            raise _Reply("NO", f"[NONEXISTENT] Unknown Mailbox: {old} (Failure)")
        if old in SYSTEM_FOLDERS:
            raise _Reply("NO", f"[CANNOT] Cannot rename system folder {old} (Failure)")
        if new in acct.folders:
            raise _Reply("NO", f"[ALREADYEXISTS] Duplicate folder name {new} (Failure)")
        check_new_name(new)
        parent = new.rsplit("/", 1)[0] if "/" in new else None
        if parent is not None and parent not in acct.folders:
            acct.create(parent)
        acct.rename_folder(old, new)
        return "OK Success"

    def _cmd_append(self, args: list[_Token]) -> str:
        if len(args) < 2 or not isinstance(args[-1], bytes):
            raise _bad()
        name = self._folder_arg(args[0])
        flags: list[str] = []
        when = datetime.now(timezone.utc).replace(microsecond=0)
        for extra in args[1:-1]:
            if isinstance(extra, list):
                flags = [_flag(_atom(f)) for f in extra]
            else:
                when = parse_internaldate(_text(extra))
        data, acct = args[-1], self._account()
        folder = acct.folders.get(name)
        if folder is None:
            raise _Reply("NO", "[TRYCREATE] Folder doesn't exist. (Failure)")
        if folder.noselect:
            raise _Reply("NO", f"[CANNOT] Cannot append to {name} (Failure)")
        quota = self.gm.quota_bytes
        if quota is not None and acct.used_bytes() + len(data) > quota:
            raise _Reply("NO", "[OVERQUOTA] Account exceeded storage quota (Failure)")
        labels = [] if name == ALL_MAIL else [name]
        msg = acct.new_message(next(self.gm._msgids), data, labels, flags, when, None)
        if "\\Deleted" in flags:
            acct.set_deleted(folder, msg, True)
        return f"OK [APPENDUID {folder.uidvalidity} {folder.uids[msg.msgid]}] (Success)"

    # -- selected state ---------------------------------------------------------------------------

    def _deselect(self) -> None:
        self.selected, self.view, self.max_seen = None, [], 0

    def _cmd_close(self, args: list[_Token]) -> str:
        folder = self.selected
        assert folder is not None
        if not self.readonly:
            acct = self._account()
            for mid in [m for m in folder.uids if m in folder.deleted]:
                acct.expunge_from(acct.messages[mid], folder.name)
        self._deselect()
        return "OK Returned to authenticated state. (Success)"

    def _cmd_unselect(self, args: list[_Token]) -> str:
        self._deselect()
        return "OK Returned to authenticated state. (Success)"

    def _writable(self) -> None:
        if self.readonly:
            raise _Reply("NO", "[READ-ONLY] Mailbox is read-only (Failure)")

    def _cmd_fetch(self, args: list[_Token], uid: bool) -> str:
        if len(args) not in (2, 3):
            raise _bad()
        specs = args[1] if isinstance(args[1], list) else [args[1]]
        items = [i for spec in specs for i in _fetch_item(_atom(spec))]
        changed_since = None
        if len(args) == 3:
            mods = args[2]
            if not (self.gm.condstore and isinstance(mods, list) and len(mods) == 2
                    and _text(mods[0]).upper() == "CHANGEDSINCE" and _text(mods[1]).isdigit()):
                raise _bad("Unsupported FETCH modifier")
            changed_since = int(_text(mods[1]))
        if any(i.name == "MODSEQ" for i in items):
            if not self.gm.condstore:
                raise _bad("Unsupported FETCH item MODSEQ")
            self.condstore_on = True
        if changed_since is not None:
            self.condstore_on = True
        acct, folder = self._account(), self.selected
        assert folder is not None
        for seq, u, mid in self._resolve(_atom(args[0]), uid):
            msg = acct.messages.get(mid)
            if msg is None or (changed_since is not None and msg.modseq <= changed_since):
                continue
            newly_seen = (not self.readonly and "\\Seen" not in msg.flags and any(not i.peek for i in items))
            if newly_seen:
                acct.mutate(msg, lambda m=msg: m.flags.add("\\Seen"))
            names = [i.name for i in items]
            wanted = list(items)
            if uid and "UID" not in names:
                wanted.insert(0, _FetchItem("UID"))
            if newly_seen and "FLAGS" not in names:
                wanted.append(_FetchItem("FLAGS"))
            if self.condstore_on and "MODSEQ" not in names:
                wanted.append(_FetchItem("MODSEQ"))
            parts = [self._fetch_part(item, msg, u) for item in wanted]
            self.line(b"* %d FETCH (" % seq + b" ".join(parts) + b")")
        return "OK Success"

    def _fetch_part(self, item: _FetchItem, msg: GmailMessage, uid: int) -> bytes:
        name = item.name
        if name == "UID":
            return b"UID %d" % uid
        if name == "FLAGS":
            return f"FLAGS ({' '.join(self._view_flags(msg))})".encode()
        if name == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % len(msg.data)
        if name == "INTERNALDATE":
            return f'INTERNALDATE "{format_internaldate(msg.internaldate)}"'.encode()
        if name == "X-GM-MSGID":
            return b"X-GM-MSGID %d" % msg.msgid
        if name == "X-GM-THRID":
            return b"X-GM-THRID %d" % msg.thrid
        if name == "X-GM-LABELS":
            return b"X-GM-LABELS " + self._labels_bytes(msg)
        if name == "MODSEQ":
            return b"MODSEQ (%d)" % msg.modseq
        data = _section_bytes(msg.data, item)
        return item.label.encode() + b" {%d}\r\n" % len(data) + data

    def _cmd_store(self, args: list[_Token], uid: bool) -> str:
        if len(args) < 3:
            raise _bad()
        if isinstance(args[1], list):
            raise _bad("STORE modifiers are not supported")
        self._writable()
        action = _atom(args[1]).upper()
        m = re.fullmatch(r"([+-]?)(FLAGS|X-GM-LABELS)(\.SILENT)?", action)
        if m is None:
            raise _bad(f"Invalid STORE item {action}")
        op, what, silent = m.group(1), m.group(2), bool(m.group(3))
        values = args[2] if len(args) == 3 and isinstance(args[2], list) else args[2:]
        names = [_text(v) for v in values]
        acct, folder = self._account(), self.selected
        assert folder is not None
        targets = self._resolve(_atom(args[0]), uid)
        folders: list[str | None] = []
        if what == "X-GM-LABELS":
            folders = [acct.label_folder(n, create=op != "-") for n in names]
        for seq, u, mid in targets:
            msg = acct.messages.get(mid)
            if msg is None:
                continue
            if what == "FLAGS":
                self._store_flags(msg, op, {_flag(n) for n in names})
            else:
                self._store_labels(msg, op, [f for f in folders if f is not None])
            if not silent:
                parts = [b"UID %d" % u] if uid else []
                if what == "FLAGS":
                    parts.append(f"FLAGS ({' '.join(self._view_flags(msg))})".encode())
                else:
                    parts.append(b"X-GM-LABELS " + self._labels_bytes(msg))
                if self.condstore_on:
                    parts.append(b"MODSEQ (%d)" % msg.modseq)
                self.line(b"* %d FETCH (" % seq + b" ".join(parts) + b")")
        return "OK Success"

    def _store_flags(self, msg: GmailMessage, op: str, flags: set[str]) -> None:
        acct, folder = self._account(), self.selected
        assert folder is not None
        others = flags - {"\\Deleted", "\\Recent"}
        if op == "+":
            acct.mutate(msg, lambda: msg.flags.update(others))
        elif op == "-":
            acct.mutate(msg, lambda: msg.flags.difference_update(others))
        else:
            acct.mutate(msg, lambda: setattr(msg, "flags", set(others)))
        if "\\Deleted" in flags or op == "":
            acct.set_deleted(folder, msg, op != "-" and "\\Deleted" in flags)

    def _store_labels(self, msg: GmailMessage, op: str, folders: list[str]) -> None:
        acct = self._account()
        if op == "+":
            for name in folders:
                acct.add_label(msg, name)
        elif op == "-":
            for name in folders:
                acct.remove_label(msg, name)
        else:
            wanted = set(folders)
            for bin_ in (TRASH, SPAM):
                if bin_ in wanted:
                    acct.add_label(msg, bin_)
                    return

            def change() -> None:
                msg.labels = wanted - {STARRED, ALL_MAIL}
                (msg.flags.add if STARRED in wanted else msg.flags.discard)("\\Flagged")
            acct.mutate(msg, change)

    def _target(self, token: _Token) -> _Folder:
        """The destination of COPY/MOVE."""
        name = self._folder_arg(token)
        folder = self._account().folders.get(name)
        if folder is None:
            raise _Reply("NO", "[TRYCREATE] Folder doesn't exist. (Failure)")
        if folder.noselect:
            raise _Reply("NO", f"[CANNOT] Cannot copy to {name} (Failure)")
        quota = self.gm.quota_bytes
        if quota is not None and self._account().used_bytes() > quota:
            raise _Reply("NO", "[OVERQUOTA] Account exceeded storage quota (Failure)")
        return folder

    def _copy_move(self, args: list[_Token], uid: bool, move: bool) -> str | None:
        """Add the destination's label (and for MOVE take the source's away); the COPYUID code or None."""
        if len(args) != 2:
            raise _bad()
        targets = self._resolve(_atom(args[0]), uid)
        dest = self._target(args[1])
        if move:
            self._writable()
        acct, source = self._account(), self.selected
        assert source is not None
        pairs = []
        for _seq, u, mid in targets:
            msg = acct.messages.get(mid)
            if msg is None:
                continue
            acct.add_label(msg, dest.name)
            if move and dest is not source and msg.msgid in source.uids:
                acct.remove_label(msg, source.name)
            if msg.msgid in dest.uids:
                pairs.append((u, dest.uids[msg.msgid]))
        if not pairs:
            return None
        src, dst = zip(*pairs)
        return f"[COPYUID {dest.uidvalidity} {_uid_set(list(src))} {_uid_set(list(dst))}]"

    def _cmd_copy(self, args: list[_Token], uid: bool) -> str:
        code = self._copy_move(args, uid, move=False)
        return f"OK {code} (Success)" if code else "OK (Success)"

    def _cmd_move(self, args: list[_Token], uid: bool) -> str:
        code = self._copy_move(args, uid, move=True)
        if code:
            self.line(f"* OK {code} (Success)")
        return "OK (Success)"

    def _cmd_expunge(self, args: list[_Token], uid: bool) -> str:
        self._writable()
        if uid != bool(args):
            raise _bad()
        acct, folder = self._account(), self.selected
        assert folder is not None
        listed = {u for _s, u, _m in self._resolve(_atom(args[0]), True)} if uid else None
        for u, mid in list(self.view):
            if mid in folder.deleted and folder.uids.get(mid) == u and (listed is None or u in listed):
                acct.expunge_from(acct.messages[mid], folder.name)
        return "OK Success"

    def _cmd_search(self, args: list[_Token], uid: bool) -> str:
        tokens = list(args)
        if tokens and isinstance(tokens[0], str) and tokens[0].upper() == "CHARSET":
            tokens = tokens[2:]
        if not tokens:
            raise _bad()
        used_modseq: list[bool] = []
        checks = []
        pos = 0
        while pos < len(tokens):
            check, pos = self._search_key(tokens, pos, used_modseq)
            checks.append(check)
        acct = self._account()
        found, top = [], 0
        for i, (u, mid) in enumerate(self.view):
            msg = acct.messages.get(mid)
            if msg is not None and all(c(i + 1, u, msg) for c in checks):
                found.append(u if uid else i + 1)
                top = max(top, msg.modseq)
        tail = f" (MODSEQ {top})" if used_modseq and found else ""
        self.line(" ".join(["* SEARCH", *map(str, found)]) + tail)
        return "OK SEARCH completed (Success)"

    def _search_key(self, tokens: list[_Token], pos: int,
                    used_modseq: list[bool]) -> tuple[Callable[[int, int, GmailMessage], bool], int]:
        """One search key starting at tokens[pos]: (predicate(seq, uid, msg), next position)."""
        def arg(k: int) -> str:
            if pos + k >= len(tokens):
                raise _bad("Missing SEARCH argument")
            return _text(tokens[pos + k])

        token = tokens[pos]
        if isinstance(token, list):
            inner, at = [], 0
            while at < len(token):
                check, at = self._search_key(token, at, used_modseq)
                inner.append(check)
            return (lambda s, u, m: all(c(s, u, m) for c in inner)), pos + 1
        key = _text(token).upper()
        acct = self._account()
        flag_keys = {"SEEN": "\\Seen", "FLAGGED": "\\Flagged", "ANSWERED": "\\Answered", "DRAFT": "\\Draft"}
        if key == "ALL":
            return (lambda s, u, m: True), pos + 1
        if key in flag_keys or (key.startswith("UN") and key[2:] in flag_keys):
            flag, want = flag_keys[key.removeprefix("UN")], not key.startswith("UN")
            return (lambda s, u, m: (flag in m.flags) == want), pos + 1
        if key in ("DELETED", "UNDELETED"):
            folder, want = self.selected, key == "DELETED"
            assert folder is not None
            return (lambda s, u, m: (m.msgid in folder.deleted) == want), pos + 1
        if key in ("KEYWORD", "UNKEYWORD"):
            flag, want = _flag(arg(1)), key == "KEYWORD"
            return (lambda s, u, m: (flag in m.flags) == want), pos + 2
        if key == "UID":
            ranges = _ranges(arg(1), self.view[-1][0] if self.view else 0)
            return (lambda s, u, m: _in_ranges(ranges, u)), pos + 2
        if re.fullmatch(r"[\d*:,]+", key):
            ranges = _ranges(key, len(self.view))
            return (lambda s, u, m: _in_ranges(ranges, s)), pos + 1
        if key == "NOT":
            check, after = self._search_key(tokens, pos + 1, used_modseq)
            return (lambda s, u, m: not check(s, u, m)), after
        if key == "OR":
            first, mid = self._search_key(tokens, pos + 1, used_modseq)
            second, after = self._search_key(tokens, mid, used_modseq)
            return (lambda s, u, m: first(s, u, m) or second(s, u, m)), after
        if key in ("X-GM-MSGID", "X-GM-THRID", "LARGER", "SMALLER", "MODSEQ"):
            if not arg(1).isdigit() or (key == "MODSEQ" and not self.gm.condstore):
                raise _bad(f"Invalid SEARCH key {key}")
            n = int(arg(1))
            if key == "MODSEQ":
                used_modseq.append(True)
                self.condstore_on = True
            value: Callable[[GmailMessage], int] = {
                "X-GM-MSGID": lambda m: m.msgid, "X-GM-THRID": lambda m: m.thrid,
                "LARGER": lambda m: len(m.data) - n - 1, "SMALLER": lambda m: n - len(m.data) - 1,
                "MODSEQ": lambda m: m.modseq - n}[key]
            if key in ("X-GM-MSGID", "X-GM-THRID"):
                return (lambda s, u, m: value(m) == n), pos + 2
            return (lambda s, u, m: value(m) >= 0), pos + 2
        if key == "X-GM-LABELS":
            name = acct.label_folder(arg(1), create=False)
            return (lambda s, u, m: name is not None and acct.member(m, name)), pos + 2
        if key in ("SINCE", "BEFORE", "ON"):
            day = parse_internaldate(f"{arg(1)} 00:00:00 +0000").date()
            cmp = {"SINCE": lambda d: d >= day, "BEFORE": lambda d: d < day, "ON": lambda d: d == day}[key]
            return (lambda s, u, m: cmp(m.internaldate.date())), pos + 2
        if key in ("SUBJECT", "FROM", "TO", "CC", "HEADER"):
            field_name, needle, step = (arg(1), arg(2), 3) if key == "HEADER" else (key, arg(1), 2)
            return (lambda s, u, m: _header_contains(m.data, field_name, needle)), pos + step
        if key in ("TEXT", "BODY"):
            needle_b = arg(1).lower().encode()
            return (lambda s, u, m: needle_b in (m.data if key == "TEXT" else _split_message(m.data)[1]).lower()
                    ), pos + 2
        raise _bad(f"Unsupported SEARCH key {key}")


def _header_contains(data: bytes, name: str, needle: str) -> bool:
    """Case-insensitive substring search in a header field, raw UTF-8 and RFC 2047 words decoded."""
    raw = _header_fields(_split_message(data)[0], {name.lower()}, False).decode("utf-8", "replace")
    try:
        decoded = str(make_header(decode_header(raw)))
    except (ValueError, LookupError):
        decoded = raw
    return needle.lower() in decoded.lower() or needle.lower() in raw.lower()


def _read_command(rfile: _Reader, send: Callable[[bytes], None]) -> tuple[bytes, str] | None:
    """One whole command from the client, answering sync literals with a continuation; None at EOF.

    Returns the raw bytes (literals inline) and the command's text lines without the literals.
    """
    raw, text = bytearray(), []
    while True:
        line = rfile.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            return None
        raw += line
        text.append(line.rstrip(b"\r\n"))
        m = _LITERAL_AT_END.search(line)
        if m is None:
            return bytes(raw), b"".join(text).decode("utf-8", "replace")
        size = int(m.group(1))
        if not m.group(2):
            send(b"+ Ready for literal data\r\n")
        data = rfile.read(size)
        if len(data) < size:
            return None
        raw += data


class _Reader:
    """Buffered reads from a client socket that ACK at once.

    imapclient sends a command's CRLF in a separate small write; with Nagle on its side and
    delayed ACKs on ours every SEARCH would stall ~40 ms, so TCP_QUICKACK is set before each recv.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, bytearray()
        self.quickack = getattr(socket, "TCP_QUICKACK", None)

    def _fill(self) -> bool:
        if self.quickack is not None:
            self.sock.setsockopt(socket.IPPROTO_TCP, self.quickack, 1)
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def readline(self, limit: int = _MAX_LINE) -> bytes:
        """Up to and including the next LF; shorter (without LF) at EOF or past `limit`."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0 or len(self.buf) >= limit or not self._fill():
                size = min(end + 1 if end >= 0 else len(self.buf), limit)
                line = bytes(self.buf[:size])
                del self.buf[:size]
                return line

    def read(self, size: int) -> bytes:
        """`size` bytes, fewer at EOF."""
        while len(self.buf) < size and self._fill():
            pass
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data


class _Handler(socketserver.BaseRequestHandler):
    """Serves one connection until LOGOUT, EOF or the socket is shut from outside."""

    server: _TCPServer

    def handle(self) -> None:
        gm, sock = self.server.gmail, self.request
        rfile = _Reader(sock)

        def readline() -> bytes | None:
            line = rfile.readline(_MAX_LINE)
            return line if line.endswith(b"\n") else None

        session = _Session(gm, sock.sendall, readline)
        try:
            sock.sendall(b"* OK Gimap ready for requests from 127.0.0.1 (Success)\r\n")
            while not session.closing:
                got = _read_command(rfile, sock.sendall)
                if got is None:
                    break
                raw, text = got
                with gm._lock:
                    gm.commands.append(text.split(" ", 1)[1] if " " in text else "")
                sock.sendall(session.execute(raw))
        except OSError:
            pass  # the client went away, or drop_connections()/stop() shut the socket


class _TCPServer(socketserver.TCPServer):
    """A TCP server on 127.0.0.1 that starts one tracked thread per connection."""

    allow_reuse_address = True

    def __init__(self, gmail: GmailServer) -> None:
        self.gmail = gmail
        super().__init__((gmail.host, 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name="gmail-imap-connection", daemon=True)
        with self.gmail._lock:
            self.gmail._conns[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.gmail.errors.append(traceback.format_exc())
        finally:
            self.shutdown_request(request)
            with self.gmail._lock:
                self.gmail._conns.pop(request, None)


class GmailServer:
    """`with GmailServer(users={"alice@gmail.com": "secret"}) as gm:` then IMAP on gm.host:gm.port.

    `commands` lists every command line received (tag stripped, literal data left out);
    `errors` collects tracebacks of server bugs (tests should expect it empty).
    `quota_bytes` limits the account's total message bytes: an APPEND that would pass it and
    a COPY/MOVE while the account is already over it answer [OVERQUOTA]; add_message ignores it.
    """

    def __init__(self, users: dict[str, str], condstore: bool = False, quota_bytes: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.condstore = condstore
        self.quota_bytes = quota_bytes
        self.commands: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.RLock()
        self._accounts = {user: _Account(password) for user, password in users.items()}
        self._msgids = itertools.count(FIRST_MSGID)
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._tcp: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GmailServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on 127.0.0.1, on a free port, in a background thread."""
        if self._tcp is not None:
            return
        self._tcp = _TCPServer(self)
        self.port = int(self._tcp.server_address[1])
        self._thread = threading.Thread(target=self._tcp.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="gmail-imap-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket and every client connection; join all the server's threads."""
        if self._tcp is None:
            return
        self._tcp.shutdown()
        self._tcp.server_close()
        self.drop_connections()
        assert self._thread is not None
        self._thread.join()
        self._tcp = self._thread = None

    def drop_connections(self) -> None:
        """Cut every client connection at once (as a dropped network would); keep listening."""
        with self._lock:
            conns = list(self._conns.items())
        for sock, _thread in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _sock, thread in conns:
            thread.join(timeout=10)

    def add_user(self, user: str, password: str) -> None:
        """A new, empty account."""
        with self._lock:
            self._accounts[user] = _Account(password)

    def add_message(self, user: str, data: bytes, labels: Iterable[str] = (INBOX,), flags: Iterable[str] = (),
                    thread_id: int | None = None, internaldate: datetime | None = None) -> int:
        """Put a message straight into the account; labels are folder names or Gmail's \\Inbox,
        \\Sent, ... (unknown labels are created). Returns its X-GM-MSGID."""
        when = internaldate or datetime.now(timezone.utc).replace(microsecond=0)
        with self._lock:
            acct = self._accounts[user]
            return acct.new_message(next(self._msgids), data, list(labels), flags, when, thread_id).msgid

    def messages(self, user: str) -> list[GmailMessage]:
        """A snapshot of the account's messages, by X-GM-MSGID."""
        with self._lock:
            return [dataclasses.replace(m, labels=set(m.labels), flags=set(m.flags))
                    for _, m in sorted(self._accounts[user].messages.items())]

    def folders(self, user: str) -> list[str]:
        """The account's folder names (including the \\Noselect "[Gmail]")."""
        with self._lock:
            return sorted(self._accounts[user].folders)

    def uids(self, user: str, folder: str) -> dict[int, int]:
        """UID -> X-GM-MSGID of the messages a folder shows now."""
        with self._lock:
            return dict(self._accounts[user].folders[canonical(folder)].by_uid)

    def uidvalidity(self, user: str, folder: str) -> int:
        with self._lock:
            return self._accounts[user].folders[canonical(folder)].uidvalidity

    def reset_uidvalidity(self, user: str, folder: str) -> int:
        """Give a folder a new UIDVALIDITY and renumber its messages from UID 1; returns the new value."""
        with self._lock:
            acct = self._accounts[user]
            box = acct.folders[canonical(folder)]
            msgids, deleted = list(box.uids), set(box.deleted)
            box.uidvalidity, box.uidnext, box.uids, box.by_uid = next(acct._validity), 1, {}, {}
            for msgid in msgids:
                box.enter(msgid)
            box.deleted = deleted
            acct.modseq += 1
            return box.uidvalidity
