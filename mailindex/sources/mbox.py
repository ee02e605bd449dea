"""mbox files (mboxo, mboxrd, Content-Length mbox, Gmail Takeout).

A source is one mbox file or a directory tree of them; each file is a
container and a folder (``lists/python.mbox`` -> "lists/python", a top-level
``Inbox`` -> "INBOX", Thunderbird ``Foo.sbd/Bar`` -> "Foo/Bar"). gzip, bzip2
and xz files are read transparently (offsets then count decompressed bytes).

Splitting. A message starts after a From_ line and ends before the next one
(less the one blank separator line writers put there). A line starting with
``From `` starts a message when it is

* the first line of the file; or
* ``From <sender> <date>`` with a parseable asctime or RFC 2822 date (with or
  without a blank line before it: Gmail Takeout omits it); or
* ``From -`` or ``From <x@y>`` with nothing after, and the next line is a
  header (Thunderbird's ``From - `` needs no blank line before it; an address
  alone needs one).

So body lines like ``From time to time`` or ``From Russia with love`` (which
mboxo writers often leave unescaped) stay in their message. When a message has
a ``Content-Length`` header and the byte that many bytes after the header's
blank line is a ``From `` line (after at most one line break) or the end of the
file, that length wins: a body may then hold any ``From `` line.

Unescaping. mboxrd writers add one ``>`` to every ``^>*From `` line, mboxo
writers to ``^From `` lines only. The per-file rule "unescape ``^>+From `` one
level when the file shows mboxrd escaping (a ``>>From `` line), else only
``^>From ``" gives the same bytes as always unescaping ``^>+From `` one level
(a file without ``>>From`` lines has nothing else to unescape), so that is what
is done, message by message. mboxo is lossy: an original ``>From `` line in an
mboxo file comes back as ``From ``; nothing can tell them apart. One
exception: a Content-Length-delimited message whose body holds a raw ``From ``
line was written by a program that does not escape (Solaris/SysV mail), so its
``>From `` lines are left alone.

Entries. The bytes are the message without its From_ line, unescaped, and
come with the entry (``Entry.data``); the key is their SHA-256 plus ``#n``
(the n-th identical copy in the file); the locator is ``{"path", "offset",
"length", "escaped"}``: where the raw bytes start after the From_ line, how
long they are as stored, and whether to unescape them. Flags come from
Status/X-Status/X-Mozilla-Status; in a Gmail Takeout (an ``X-Gmail-Labels`` or
``X-GM-THRID`` header, or a ``From <digits>@xxx`` envelope) folders come from
the labels instead of the file name. A file that changes while it is scanned
raises ConcurrentChange at the end of the listing.

Live operations rewrite the file under locks (see mbox_writer): flags go to
Status/X-Status, a delete drops the message and its From_ line, an append
adds an mboxrd-escaped message at the end. A message whose bytes no longer
hash to its locator's ``sha256`` is never touched (ConcurrentChange).
Compressed files are read-only.
"""

from __future__ import annotations

import calendar
import hashlib
import lzma
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path
from typing import IO, Any

from mailindex.errors import ConcurrentChange, SourceError, SourceFormatError, SourceNotFound
from mailindex.folders import GMAIL_STATE_LABELS, GMAIL_SYSTEM_LABELS, symbolic_name
from mailindex.hookspecs import hookimpl
from mailindex.sources import _fs, mbox_writer
from mailindex.sources.base import Container, Entry, Folder, Source
from mailindex.sources.maildir import MaildirSource

CHUNK = 1 << 20
MAX_CONTENT_LENGTH = 1 << 30  # a larger Content-Length is not believed
MBOX_SUFFIXES = (".mbox", ".mbx", ".mbs")
GMAIL_ALL_MAIL = "[Gmail]/All Mail"

_ESCAPED = re.compile(rb"^>(>*From )", re.MULTILINE)
_RAW_FROM = re.compile(rb"^From ", re.MULTILINE)
_FROM_CANDIDATE = re.compile(rb"\nFrom ")
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_HEADER_END = re.compile(rb"\n\r?\n")
_GMAIL_ENVELOPE = re.compile(rb"^\d+@xxx$")

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_ZONE_HOURS = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
               "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_WDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?"
_TIME = r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?"
_ZONE = r"(?:[+-]\d{4}|[a-z]{1,5})"
# asctime, as From_ lines write it: "Tue Aug  5 08:00:23 [+0000 ]2008[ +0000]".
_ASCTIME = re.compile(
    _WDAY + r"(?P<mon>[a-z]{3})[a-z]*\s+(?P<d>\d{1,2})\s+" + _TIME
    + r"\s+(?:(?P<z1>" + _ZONE + r")\s+)?(?P<y>\d{4})(?:\s+(?P<z2>[+-]\d{4}))?(?!\d)",
    re.IGNORECASE,
)
# RFC 2822: "Sat, 01 Jan 2000 12:00:00 +0000".
_RFC2822 = re.compile(
    _WDAY + r"(?P<d>\d{1,2})\s+(?P<mon>[a-z]{3})[a-z]*\s+(?P<y>\d{4})\s+" + _TIME
    + r"(?:\s+(?P<z1>" + _ZONE + r"))?(?![\d:])",
    re.IGNORECASE,
)


# --- From_ lines -------------------------------------------------------------

def parse_envelope_date(text: str) -> int | None:
    """Unix seconds of the date at the start of `text` (a From_ line's tail), or None."""
    text = text.strip()
    for pattern in (_ASCTIME, _RFC2822):
        m = pattern.match(text)
        if m is None:
            continue
        mon = _MONTHS.get(m["mon"].lower())
        if mon is None:
            continue
        zone = m["z1"] or (m.groupdict().get("z2")) or ""
        try:
            secs = calendar.timegm((int(m["y"]), mon, int(m["d"]), int(m["H"]), int(m["M"]),
                                    int(m["S"] or 0), 0, 0, 0))
            _check_calendar(int(m["y"]), mon, int(m["d"]), int(m["H"]), int(m["M"]), int(m["S"] or 0))
        except ValueError:
            continue
        return secs - _zone_offset(zone)
    return None


def _check_calendar(y: int, mon: int, d: int, h: int, mi: int, s: int) -> None:
    if not (1 <= d <= calendar.monthrange(y, mon)[1] and h < 24 and mi < 60 and s <= 60):
        raise ValueError("not a date")


def _zone_offset(zone: str) -> int:
    if zone[:1] in ("+", "-") and zone[1:].isdigit():
        sign = -1 if zone[0] == "-" else 1
        return sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
    return _ZONE_HOURS.get(zone.upper(), 0) * 3600


@dataclass(frozen=True, slots=True)
class Envelope:
    """A From_ line split into sender and date (Unix seconds, or None)."""

    sender: str
    date: int | None
    rest: str

    @classmethod
    def parse(cls, line: bytes) -> Envelope:
        text = line[5:].rstrip(b"\r\n").decode("latin-1")
        stripped = text.lstrip(" ")
        sender, _, rest = stripped.partition(" ")
        date = parse_envelope_date(rest)
        if date is None and text.startswith(" "):  # empty sender: "From  Mon Jan  1 ..."
            date = parse_envelope_date(stripped)
            if date is not None:
                sender, rest = "", stripped
        return cls(sender=sender, date=date, rest=rest.strip())


def is_envelope(line: bytes, prev_blank: bool, next_line: bytes | None) -> bool:
    """Does this ``From `` line (not the file's first) start a new message?"""
    env = Envelope.parse(line)
    if env.date is not None:
        return True
    if env.rest or next_line is None or not _HEADER_LINE.match(next_line):
        return False
    return env.sender == "-" or ("@" in env.sender and prev_blank)


# --- headers (only the few an mbox keeps its state in) -----------------------

def header_block(raw: bytes) -> bytes:
    m = _HEADER_END.search(raw)
    return raw if m is None else raw[: m.start() + 1]


def header_values(block: bytes, names: set[bytes]) -> dict[bytes, bytes]:
    """First value of each wanted header (lowercase names), continuation lines unfolded."""
    out: dict[bytes, bytes] = {}
    current: bytes | None = None
    for line in block.splitlines():
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                out[current] += b" " + line.strip()
            continue
        current = None
        name, sep, value = line.partition(b":")
        key = name.strip().lower()
        if sep and key in names and key not in out:
            out[key] = value.strip()
            current = key
    return out


def status_flags(status: bytes, x_status: bytes, mozilla: bytes) -> set[str]:
    """Flags from Status (R seen; O "old" is not a flag), X-Status and X-Mozilla-Status."""
    flags = set()
    if b"R" in status:
        flags.add("seen")
    for letter, flag in ((b"A", "answered"), (b"F", "flagged"), (b"T", "draft"), (b"D", "deleted")):
        if letter in x_status:
            flags.add(flag)
    try:
        bits = int(mozilla[:4], 16) if mozilla else 0
    except ValueError:
        bits = 0
    for bit, flag in ((0x1, "seen"), (0x2, "answered"), (0x4, "flagged"), (0x8, "deleted")):
        if bits & bit:
            flags.add(flag)
    return flags


def split_labels(value: bytes) -> list[str]:
    """X-Gmail-Labels: comma-separated, double quotes protect commas, RFC 2047 allowed."""
    text = value.decode("utf-8", "replace")
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (ValueError, LookupError, UnicodeError):
            pass
    labels, buf, quoted, escape = [], [], False, False
    for ch in text:
        if escape:
            buf.append(ch)
            escape = False
        elif ch == "\\" and quoted:
            escape = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            labels.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    labels.append("".join(buf).strip())
    return [label for label in labels if label]


def gmail_folders(labels: list[str]) -> tuple[tuple[str, ...], set[str]]:
    """Folders and flags of a Takeout message from its labels.

    System labels become their IMAP folders (folders.GMAIL_SYSTEM_LABELS), user
    labels stay as they are ("/" is their hierarchy delimiter), state labels
    ("Opened", "Unread") become flags; no place at all means All Mail.
    """
    folders: list[str] = []
    flags: set[str] = set()
    for label in labels:
        low = label.lower()
        if low in GMAIL_STATE_LABELS:
            if GMAIL_STATE_LABELS[low]:
                flags.add(GMAIL_STATE_LABELS[low])
            continue
        system = GMAIL_SYSTEM_LABELS.get(low)
        if system is not None:
            folder = system[0]
            if system[1] == "\\Starred":
                flags.add("flagged")
            elif system[1] == "\\Drafts":
                flags.add("draft")
        else:
            folder = label.strip("/")
        if folder and folder not in folders:
            folders.append(folder)
    return tuple(folders) or (GMAIL_ALL_MAIL,), flags


# --- splitting ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RawSlice:
    """One message as found in the file: where, its From_ line and its raw bytes."""

    offset: int  # first byte after the From_ line, in the (decompressed) file
    raw: bytes  # as stored (still escaped), separator line removed
    from_line: bytes
    content_length: bool  # delimited by a Content-Length header


class _Window:
    """Bytes of a stream from absolute offset `base` on, read in chunks."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.buf = bytearray()
        self.base = 0
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.f.read(CHUNK)
        except EOFError:  # a compressed file cut short: list what it holds
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def fill(self, n: int) -> None:
        """Have at least `n` bytes in the window, or all there is."""
        while len(self.buf) < n and self.more():
            pass

    def line_end(self, pos: int) -> int:
        """Index of the newline ending the line at `pos` (len(buf) at EOF without one)."""
        start = pos
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                return i
            start = len(self.buf)
            if not self.more():
                return len(self.buf)

    def drop(self, n: int) -> None:
        del self.buf[:n]
        self.base += n


def _prev_line_blank(buf: bytearray, line_start: int, floor: int) -> bool:
    """Is the line before `line_start` empty (and inside the message at `floor`)?"""
    if line_start - 2 >= floor and buf[line_start - 2:line_start] == b"\n\n":
        return True
    return line_start - 3 >= floor and buf[line_start - 3:line_start] == b"\n\r\n"


def _next_envelope(w: _Window, start: int) -> int:
    """Start index of the next From_ line at or after `start` (len(buf) at EOF)."""
    search = max(start - 1, 0)
    while True:
        m = _FROM_CANDIDATE.search(w.buf, search)
        if m is None:
            seen = len(w.buf)
            if not w.more():
                return len(w.buf)
            search = max(search, seen - 6)
            continue
        line_start = m.start() + 1
        eol = w.line_end(line_start)
        next_eol = w.line_end(eol + 1) if eol < len(w.buf) else eol
        line = bytes(w.buf[line_start:eol])
        next_line = bytes(w.buf[eol + 1:next_eol]) if eol < len(w.buf) else None
        if is_envelope(line, _prev_line_blank(w.buf, line_start, start - 1), next_line):
            return line_start
        search = line_start


def _strip_separator(buf: bytearray, start: int, end: int) -> int:
    """Drop the blank line a writer puts between messages, if there is one."""
    if end - start >= 2 and buf[end - 2:end] == b"\n\n":
        return end - 1
    if end - start >= 3 and buf[end - 3:end] == b"\n\r\n":
        return end - 2
    return end


def _content_length_end(w: _Window, start: int, stop: int) -> tuple[int, int] | None:
    """(message end, next From_ start) if a Content-Length header is to be trusted."""
    # The header block ends at the first blank line (searched up to the next From_).
    m = _HEADER_END.search(w.buf, max(start - 1, 0), stop)
    if m is None:
        return None
    body = m.end()
    block = bytes(w.buf[start:m.start() + 1])
    value = header_values(block, {b"content-length"}).get(b"content-length", b"")
    if not value.isdigit() or int(value) > MAX_CONTENT_LENGTH:
        return None
    end = body + int(value)
    w.fill(end + 7)
    if end > len(w.buf):
        return None
    nxt = end
    if w.buf[nxt:nxt + 1] == b"\n":
        nxt += 1
    elif w.buf[nxt:nxt + 2] == b"\r\n":
        nxt += 2
    if nxt >= len(w.buf) or w.buf[nxt:nxt + 5] == b"From ":
        return end, nxt
    return None


def split_mbox(f: IO[bytes], where: str = "mbox") -> Iterator[RawSlice]:
    """Every message of an mbox stream, in order, in bounded memory.

    Memory holds one message (plus a chunk); a file not starting with a
    ``From `` line (after an optional UTF-8 BOM and blank lines) is a
    SourceFormatError, an empty one has no messages.
    """
    w = _Window(f)
    w.fill(64)
    pos = 0
    if w.buf.startswith(_fs.BOM):
        pos = len(_fs.BOM)
    while True:  # leading blank lines
        if w.buf[pos:pos + 1] == b"\n":
            pos += 1
        elif w.buf[pos:pos + 2] == b"\r\n":
            pos += 2
        else:
            break
        w.fill(pos + 64)
    if pos >= len(w.buf) and w.eof:
        return
    if w.buf[pos:pos + 5] != b"From ":
        raise SourceFormatError(where, "not an mbox file: it does not start with a 'From ' line")
    while True:
        eol = w.line_end(pos)
        from_line = bytes(w.buf[pos:eol]).rstrip(b"\r")
        start = min(eol + 1, len(w.buf))
        nxt = _next_envelope(w, start)
        by_length = _content_length_end(w, start, nxt)
        if by_length is not None:
            end, nxt = by_length
        else:
            end = max(_strip_separator(w.buf, start, nxt), start)
        yield RawSlice(offset=w.base + start, raw=bytes(w.buf[start:end]), from_line=from_line,
                       content_length=by_length is not None)
        if nxt >= len(w.buf) and not w.more():
            return
        w.drop(nxt)
        pos = 0


def unescape(raw: bytes) -> bytes:
    """mboxrd unescaping: ``^>+From `` loses one ``>`` (see the module docstring)."""
    return _ESCAPED.sub(rb"\1", raw)


def needs_unescape(piece: RawSlice) -> bool:
    if not _ESCAPED.search(piece.raw):
        return False
    if piece.content_length:  # a non-escaping writer leaves raw From lines in bodies
        body = piece.raw[len(header_block(piece.raw)):]
        return not _RAW_FROM.search(body)
    return True


# --- the source --------------------------------------------------------------

class _ForwardReader:
    """Reads at positions that mostly move forward, keeping the last few KB for small steps back."""

    KEEP = 16384

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.pos = 0
        self.tail = b""  # the bytes just before self.pos

    def read_at(self, position: int, n: int) -> bytes | None:
        """`n` bytes at `position` (fewer at EOF); None when that is too far back."""
        tail_start = self.pos - len(self.tail)
        if position < tail_start:
            return None
        if position > self.pos:
            self.f.seek(position)
            self.pos = position
            self.tail = b""
            tail_start = position
        prefix = self.tail[position - tail_start:][:n]
        more = self.f.read(n - len(prefix)) if n > len(prefix) else b""
        self.pos += len(more)
        self.tail = (self.tail + more)[-self.KEEP:]
        return prefix + more


def folder_of(rel: str) -> str:
    """Folder of an mbox file at relative path `rel` (extensions and .sbd dropped)."""
    parts = rel.split("/")
    dirs = [p[:-4] if p.lower().endswith(".sbd") else p for p in parts[:-1]]
    name = parts[-1]
    for suffix in _fs.COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    for suffix in MBOX_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return _fs.join_folder([*dirs, name])


def _is_mbox_file(path: Path, name: str) -> bool:
    """In a tree: starts with a From_ line, or is empty with an mbox-like name."""
    if _fs.is_ignored_file(name):
        return False
    head = _fs.read_head(path, 64)
    if head is None:
        return False
    if not head:
        suffix = os.path.splitext(name)[1].lower()
        return suffix in ("", *MBOX_SUFFIXES)
    return _fs.looks_like_mbox_head(head)


class MboxSource(Source):
    """One mbox file, or a directory tree of them (each file a folder)."""

    type = "mbox"
    _stream: tuple[tuple[Any, ...], _ForwardReader] | None = None  # see _compressed_read

    @classmethod
    def looks_like(cls, location: Path) -> bool:
        """A file starting with ``From ``, or a tree where such files outnumber message files."""
        location = Path(location)
        if location.is_file():
            return _fs.looks_like_mbox_head(_fs.read_head(location, 64))
        if not location.is_dir() or MaildirSource.looks_like(location):
            return False
        mbox = mail = 0
        for path in _fs.sample_files(location):
            head = _fs.read_head(path)
            if _fs.looks_like_mbox_head(head):
                mbox += 1
            elif _fs.looks_like_message_head(head):
                mail += 1
        return mbox > 0 and mbox >= mail

    @property
    def root(self) -> Path:
        """The directory locator paths are relative to (a single file's parent)."""
        return self.location if self.location.is_dir() else self.location.parent

    def files(self) -> Iterator[tuple[str, Path]]:
        """(relative path, path) of every mbox file of the source, sorted."""
        _fs.require_exists(self.location)
        if not self.location.is_dir():
            yield self.location.name, self.location
            return
        for _d, entries in _fs.walk_dirs(self.location):
            for e in entries:
                if _fs.is_hidden(e.name) or not _fs.is_file(e):
                    continue
                path = Path(e.path)
                if _is_mbox_file(path, e.name):
                    yield _fs.rel_posix(path, self.location), path

    def containers(self) -> Iterator[Container]:
        for rel, path in self.files():
            st = _fs.stat_or_none(path)
            if st is not None:  # vanished since the listing: skipped
                yield _fs.container(rel, st)

    def entries(self, container: str) -> Iterator[Entry]:
        where = str(self.location)
        path = _fs.resolve_locator_path(self.root, container, where)
        try:
            f = _fs.open_binary(path, _fs.compression_of(path))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return  # vanished since the listing: nothing to list
        except OSError as exc:
            raise SourceError(where, f"cannot read {container}: {exc}") from exc
        with f:
            before = os.fstat(f.fileno())
            folder = folder_of(container)
            seen: dict[str, int] = {}
            try:
                for piece in split_mbox(f, f"{where}: {container}"):
                    yield self._entry(container, folder, piece, seen)
            except (OSError, lzma.LZMAError) as exc:  # a corrupt compressed stream, an I/O error
                self._check_unchanged(path, before, container)
                raise SourceError(where, f"cannot read {container}: {exc}") from exc
        self._check_unchanged(path, before, container)

    def _check_unchanged(self, path: Path, before: os.stat_result, container: str) -> None:
        after = _fs.stat_or_none(path)
        if after is None or (after.st_ino, after.st_size, after.st_mtime_ns) != (
                before.st_ino, before.st_size, before.st_mtime_ns):
            raise ConcurrentChange(str(self.location), f"{container} changed while it was scanned: sync again")

    def _entry(self, container: str, folder: str, piece: RawSlice, seen: dict[str, int]) -> Entry:
        escaped = needs_unescape(piece)
        data = unescape(piece.raw) if escaped else piece.raw
        digest = hashlib.sha256(data).hexdigest()
        seen[digest] = n = seen.get(digest, 0) + 1
        envelope = Envelope.parse(piece.from_line)
        folders, flags = self._folders_and_flags(data, envelope, folder)
        return Entry(
            container=container,
            key=f"{digest}#{n}",
            folders=folders,
            locator={"path": container, "offset": piece.offset, "length": len(piece.raw), "escaped": escaped,
                     "sha256": digest},
            content_stamp="",
            flags=frozenset(flags),
            envelope_date=envelope.date,
            data=data,
        )

    @staticmethod
    def _folders_and_flags(data: bytes, envelope: Envelope, folder: str) -> tuple[tuple[str, ...], set[str]]:
        wanted = {b"status", b"x-status", b"x-mozilla-status", b"x-gmail-labels", b"x-gm-thrid"}
        h = header_values(header_block(data), wanted)
        flags = status_flags(h.get(b"status", b""), h.get(b"x-status", b""), h.get(b"x-mozilla-status", b""))
        takeout = (b"x-gmail-labels" in h or b"x-gm-thrid" in h
                   or bool(_GMAIL_ENVELOPE.match(envelope.sender.encode("latin-1"))))
        if not takeout:
            return (folder,), flags
        folders, label_flags = gmail_folders(split_labels(h.get(b"x-gmail-labels", b"")))
        return folders, flags | label_flags

    # -- reading ------------------------------------------------------------

    def _read_raw(self, locator: Mapping[str, Any]) -> bytes:
        where = str(self.location)
        offset, length = locator.get("offset"), locator.get("length")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length < 0:
            raise SourceError(where, f"bad mbox locator {dict(locator)!r}")
        path = _fs.resolve_locator_path(self.root, locator.get("path"), where)
        look_back = min(offset, 4096)  # to check that a From_ line still precedes the message
        try:
            compression = _fs.compression_of(path)
            if compression is None:
                with open(path, "rb") as f:
                    f.seek(offset - look_back)
                    data = f.read(look_back + length)
            else:
                data = self._compressed_read(path, compression, offset - look_back, look_back + length)
        except (FileNotFoundError, NotADirectoryError):
            raise SourceNotFound(where, f"mbox file {locator.get('path')!r} is gone") from None
        except (OSError, EOFError, lzma.LZMAError) as exc:
            self._drop_stream()
            raise SourceError(where, f"cannot read {locator.get('path')!r}: {exc}") from exc
        if len(data) < look_back + length:
            raise SourceError(where, f"{locator.get('path')!r} is shorter than it was: sync again")
        if not _follows_from_line(data[:look_back], offset):
            raise ConcurrentChange(where, f"{locator.get('path')!r} was rewritten: no message at {offset}")
        return data[look_back:]

    def _compressed_read(self, path: Path, compression: str, position: int, n: int) -> bytes:
        """`n` decompressed bytes at `position`, from a stream kept open while reads move forward.

        Seeking back in a compressed stream decompresses from the start, so
        reading a file message by message would cost O(n^2) without this.
        """
        st = os.stat(path)
        ident = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        if self._stream is not None and self._stream[0] == ident:
            data = self._stream[1].read_at(position, n)
            if data is not None:
                return data
        self._drop_stream()
        reader = _ForwardReader(_fs.open_binary(path, compression))
        self._stream = (ident, reader)
        data = reader.read_at(position, n)
        assert data is not None
        return data

    def _drop_stream(self) -> None:
        if self._stream is not None:
            self._stream[1].f.close()
            self._stream = None

    def read_bytes(self, locator: Mapping[str, Any]) -> bytes:
        raw = self._read_raw(locator)
        return unescape(raw) if locator.get("escaped") else raw

    def read_flags(self, locator: Mapping[str, Any]) -> frozenset[str]:
        data = self.read_bytes(locator)
        return frozenset(self._folders_and_flags(data, Envelope("", None, ""), "")[1])

    # -- live operations ----------------------------------------------------

    def folders(self) -> list[Folder]:
        names = sorted({folder_of(rel) for rel, _ in self.files()})
        return [Folder(n, symbolic_name(n)) for n in names]

    def _writable(self, rel: Any) -> Path:
        path = _fs.resolve_locator_path(self.root, rel, str(self.location))
        if _fs.compression_of(path) is not None:
            raise self._unsupported("changes to a compressed mbox file")
        return path

    def _checked_raw(self, locator: Mapping[str, Any]) -> bytes:
        """The stored bytes at `locator`, if they are still the message it names (call under the locks)."""
        raw = self._read_raw(locator)
        data = unescape(raw) if locator.get("escaped") else raw
        want = locator.get("sha256")
        if want and hashlib.sha256(data).hexdigest() != want:
            raise ConcurrentChange(str(self.location), f"{locator.get('path')!r} changed since it was synced: "
                                   "sync again; nothing was written")
        return raw

    def _relocated(self, locator: Mapping[str, Any]) -> Mapping[str, Any]:
        """The locator now (call under the locks). An earlier change to the file (another copy deleted
        or re-flagged in the same operation) shifts offsets: the message with the same bytes nearest
        its old offset is the one meant; if none is left, the stale locator fails in _checked_raw."""
        try:
            self._checked_raw(locator)
            return locator
        except SourceError:
            pass
        want, old = locator.get("sha256"), int(locator.get("offset", 0))
        same = [e.locator for e in self.entries(str(locator.get("path"))) if e.locator.get("sha256") == want]
        return min(same, key=lambda loc: abs(int(loc["offset"]) - old)) if want and same else locator

    def _locator(self, rel: str, offset: int, raw: bytes) -> dict[str, Any]:
        escaped = bool(_ESCAPED.search(raw))
        data = unescape(raw) if escaped else raw
        return {"path": rel, "offset": offset, "length": len(raw), "escaped": escaped,
                "sha256": hashlib.sha256(data).hexdigest()}

    def set_flags(self, locator: Mapping[str, Any], changes: Mapping[str, bool]) -> Mapping[str, Any]:
        where = str(self.location)
        path = self._writable(locator.get("path"))
        with mbox_writer.locked(path, where):
            locator = self._relocated(locator)
            raw = self._checked_raw(locator)
            data = unescape(raw) if locator.get("escaped") else raw
            flags = set(self._folders_and_flags(data, Envelope("", None, ""), "")[1])
            flags = (flags - {f for f, on in changes.items() if not on}) | {f for f, on in changes.items() if on}
            new_raw = mbox_writer.with_flags(raw, flags)
            offset = int(locator["offset"])
            mbox_writer.replace_range(path, offset, offset + len(raw), new_raw, where)
        self._drop_stream()
        return self._locator(str(locator["path"]), offset, new_raw)

    def delete(self, locator: Mapping[str, Any]) -> None:
        where = str(self.location)
        path = self._writable(locator.get("path"))
        with mbox_writer.locked(path, where):
            locator = self._relocated(locator)
            raw = self._checked_raw(locator)
            offset = int(locator["offset"])
            with open(path, "rb") as f:
                base = max(0, offset - 4096)
                f.seek(base)
                before = f.read(offset - base)
                f.seek(offset + len(raw))
                after = f.read(2)
            start = base + before.rfind(b"\n", 0, len(before) - 1) + 1  # the From_ line's first byte
            stop = offset + len(raw) + (1 if after[:1] == b"\n" else 2 if after == b"\r\n" else 0)
            mbox_writer.replace_range(path, start, stop, b"", where)
        self._drop_stream()

    def append(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        where = str(self.location)
        rel = next((r for r, _ in self.files() if folder_of(r) == folder), None)
        if rel is None:
            if not self.location.is_dir():
                raise SourceError(where, f"this mbox file is folder {folder_of(self.location.name)!r}; "
                                  f"it cannot hold folder {folder!r}")
            rel = folder.strip("/")
            try:
                path = _fs.resolve_locator_path(self.root, rel, where)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(exist_ok=True)
            except OSError as exc:
                raise SourceError(where, f"cannot make folder {folder!r}: {exc.strerror or exc}") from exc
        path = self._writable(rel)
        stored = mbox_writer.stored_form(data, flags)
        with mbox_writer.locked(path, where):
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                f.seek(max(0, size - 2))
                tail = f.read()
            prefix = b"" if size == 0 or tail.endswith(b"\n\n") else b"\n" if tail.endswith(b"\n") else b"\n\n"
            mbox_writer.replace_range(path, size, size, prefix + stored, where)
        self._drop_stream()
        head = stored.index(b"\n") + 1
        return self._locator(rel, size + len(prefix) + head, stored[head:-1])


def _follows_from_line(before: bytes, offset: int) -> bool:
    """Do the bytes before a message end with a From_ line (a cheap sanity check)?"""
    if not before.endswith(b"\n"):
        return False
    i = before.rfind(b"\n", 0, len(before) - 1)
    if i < 0:
        if len(before) < offset:
            return True  # a From_ line longer than the look-back: cannot tell
        line = before[len(_fs.BOM):] if before.startswith(_fs.BOM) else before
        return line.startswith(b"From ")
    return before[i + 1:].startswith(b"From ")


@hookimpl
def mailindex_source_types() -> list[str]:
    return [MboxSource.type]


@hookimpl(trylast=True)
def mailindex_open_source(location: str, source_type: str | None, options: Mapping[str, Any]) -> Source | None:
    return _fs.open_if(MboxSource, location, source_type, options)


__all__ = ["Envelope", "MboxSource", "RawSlice", "is_envelope", "parse_envelope_date", "split_mbox",
           "unescape", "folder_of", "gmail_folders", "split_labels"]
