"""mbox files (mboxo, mboxrd, Content-Length mbox, Gmail Takeout).

A source is one mbox file or a directory tree of them; each file is a
container and a folder (``lists/python.mbox`` -> "lists/python", a top-level
``Inbox`` -> "INBOX", Thunderbird ``Foo.sbd/Bar`` -> "Foo/Bar"). gzip, bzip2
and xz files are read transparently (offsets then count decompressed bytes).

Splitting. A message starts after a From_ line and ends before the next one
(less the one blank separator line writers put there). A line starting with
``From `` starts a message when it is

* the first line of the file; or
* ``From <sender> <date>``, the sender one word or a quoted
  ``"local part"@domain``, with a parseable date (with or without a blank line
  before it: Gmail Takeout omits it): asctime (``Wed Apr  6 17:25:41 2005``,
  a zone before or after the year, ``MET DST``, the year before the time) or
  RFC 2822; or
* ``From <sender with spaces>  <asctime date>`` (two spaces, nothing after the
  date) before a header line: Mailman's pipermail archives write
  ``From andy_liaw at merck.com  Wed Apr  6 17:25:41 2005`` and
  ``From Jo Bloggs <jo@example.org>  Wed Apr  6 17:25:41 2005``; or
* ``From -`` or ``From <x@y>`` with nothing after, and the next line is a
  header (Thunderbird's ``From - `` needs no blank line before it; an address
  alone needs one).

A line longer than MAX_LINE is no From_ line (but the file's first). So body
lines like ``From time to time`` or ``From Russia with love`` (which mboxo and
pipermail writers often leave unescaped) stay in their message. When a message
has a ``Content-Length`` header (in its first MAX_HEAD bytes) and the byte that
many bytes after the header's blank line is a ``From `` line (after at most one
line break) or the end of the file, that length wins: a body may then hold any
``From `` line.

Memory. A message is held while it is read up to MAX_HELD bytes; a longer one
is hashed piece by piece as it streams past (cut where the ``^>*From `` line
patterns see in the pieces what they see in the whole) and its entry comes
without data, for read_bytes to read when it is wanted. A Content-Length that
ends further away is checked by seeking there (a stream that cannot seek does
not trust it); the flags of a message not held come from its first MAX_HEAD
bytes.

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
come with the entry (``Entry.data``) if it was held; the key is their SHA-256
plus ``#n`` (the n-th identical copy in the file); the locator is ``{"path",
"offset", "length", "escaped"}``: where the raw bytes start after the From_
line, how long they are as stored, and whether to unescape them. Flags come from
Status/X-Status/X-Mozilla-Status; in a Gmail Takeout (an ``X-Gmail-Labels`` or
``X-GM-THRID`` header, or a ``From <digits>@xxx`` envelope) folders come from
the labels instead of the file name. A file that changes while it is scanned
raises ConcurrentChange at the end of the listing.

Trees. In a directory tree, a file that is no mbox but one message (its head
is a header line, or its name says mail: eml's rule) is a container of one
entry, the file byte for byte: no From_ line, no unescaping, no
Content-Length. Its key is its path, its locator ``{"path", "whole": True,
"stamp"}``, its content stamp ``size:mtime_ns``, and its folder its
directory's ("INBOX" at the top, ``Foo.sbd`` -> "Foo"). Every other file of a
directory is left out and counted, by eml's reasons, in `skipped` of the
directory's first container (see `containers`).

Live operations rewrite the file under locks (see mbox_writer): flags go to
Status/X-Status, a delete drops the message and its From_ line, an append
adds an mboxrd-escaped message at the end. A message whose bytes no longer
hash to its locator's ``sha256`` is never touched (ConcurrentChange).
Compressed files are read-only. A one-message file keeps no flags (setting
them is refused, as for .eml files); a delete unlinks it, unless its size or
mtime changed since it was listed (ConcurrentChange).
"""

from __future__ import annotations

import calendar
import lzma
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from mailindex import rfc822
from mailindex.errors import ConcurrentChange, SourceError, SourceFormatError, SourceNotFound
from mailindex.folders import GMAIL_STATE_LABELS, GMAIL_SYSTEM_LABELS, symbolic_name
from mailindex.hookspecs import hookimpl
from mailindex.identity import sha256_hex
from mailindex.sources import _fs
from mailindex.sources.base import SKIP_METADATA, Container, Entry, Folder, Backend
from mailindex.sources.maildir import MaildirSource

CHUNK = 1 << 20
MAX_HELD = 16 << 20  # a longer message is not held but hashed as it streams past (its entry has no data)
# A Content-Length counts in a header block this long at most; as much is kept of a message not held,
# for its flags. Below MAX_HELD, so that a message spills only after all of it has been seen.
MAX_HEAD = 256 << 10
MAX_LINE = 4096  # a longer line is no From_ line (but for the file's first, cut to this)
MAX_CONTENT_LENGTH = 1 << 30  # a larger Content-Length is not believed
_KEEP = 16  # bytes left held when a long message spills: the From_ line search looks back into them
MBOX_SUFFIXES = (".mbox", ".mbx", ".mbs")
GMAIL_ALL_MAIL = "[Gmail]/All Mail"

_ESCAPED = re.compile(rb"^>(>*From )", re.MULTILINE)
_RAW_FROM = re.compile(rb"^From ", re.MULTILINE)
_FROM_CANDIDATE = re.compile(rb"\nFrom ")
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_HEADER_END = re.compile(rb"\n\r?\n")
_GT_RUN = re.compile(rb">*")
_MAYBE_FROM = re.compile(rb">*(?:From |(?:F(?:r(?:o(?:m)?)?)?)?\Z)")  # ">*From ", or may yet turn out so
_GMAIL_ENVELOPE = re.compile(rb"^\d+@xxx$")

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_ZONE_HOURS = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "BST": 1, "CET": 1, "MET": 1, "MEZ": 1,
               "CEST": 2, "MEST": 2, "MESZ": 2, "EET": 2, "EEST": 3, "MSK": 3, "HKT": 8, "JST": 9,
               "KST": 9, "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13, "HST": -10, "AKST": -9, "AKDT": -8,
               "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_WEEKDAY = r"(?:mon|tue|wed|thu|fri|sat|sun)"
_WDAY = r"(?:" + _WEEKDAY + r"[a-z]*,?\s+)?"
_TIME = r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?"
_ZONE = r"(?:[+-]\d{4}|[a-z]{1,5}(?:\s+dst)?)"  # "+0100", "EST", "MET DST" (old Unix mailers)
# asctime, as From_ lines write it: "Tue Aug  5 08:00:23 [+0000 ]2008[ +0000]".
_ASCTIME = re.compile(
    _WDAY + r"(?P<mon>[a-z]{3})[a-z]*\s+(?P<d>\d{1,2})\s+" + _TIME
    + r"\s+(?:(?P<z1>" + _ZONE + r")\s+)?(?P<y>\d{4})(?:\s+(?P<z2>[+-]\d{4}))?(?!\d)",
    re.IGNORECASE,
)
# asctime with the year before the time: "Tue Aug  5 2008 08:00:23[ +0000]".
_ASCTIME_YEAR_FIRST = re.compile(
    _WDAY + r"(?P<mon>[a-z]{3})[a-z]*\s+(?P<d>\d{1,2})\s+(?P<y>\d{4})\s+" + _TIME
    + r"(?:\s+(?P<z1>" + _ZONE + r"))?(?![\d:])",
    re.IGNORECASE,
)
# RFC 2822: "Sat, 01 Jan 2000 12:00:00 +0000".
_RFC2822 = re.compile(
    _WDAY + r"(?P<d>\d{1,2})\s+(?P<mon>[a-z]{3})[a-z]*\s+(?P<y>\d{4})\s+" + _TIME
    + r"(?:\s+(?P<z1>" + _ZONE + r"))?(?![\d:])",
    re.IGNORECASE,
)
_DATES = (_ASCTIME, _ASCTIME_YEAR_FIRST, _RFC2822)
# A sender with spaces ends where two spaces and an asctime date start (Mailman's pipermail writes
# "From andy_liaw at merck.com  Wed Apr  6 17:25:41 2005", also "From Jo Bloggs <jo@x.org>  Wed ...").
_SPACED_SENDER = re.compile(r"(?P<sender>\S(?:.*\S)?)\s{2,}(?P<date>" + _WEEKDAY + r"\s.*)", re.IGNORECASE)
_QUOTED_SENDER = re.compile(r'("(?:[^"\\]|\\.)*"\S*) ')  # "John Smith"@example.org


# --- From_ lines -------------------------------------------------------------

def parse_envelope_date(text: str) -> int | None:
    """Unix seconds of the date at the start of `text` (a From_ line's tail), or None."""
    found = _date(text.strip())
    return None if found is None else found[0]


def _date(text: str) -> tuple[int, int] | None:
    """(Unix seconds, end of the date) of the date `text` starts with, or None."""
    for pattern in _DATES:
        m = pattern.match(text)
        if m is None:
            continue
        mon = _MONTHS.get(m["mon"].lower())
        if mon is None:
            continue
        y, d, h, mi, s = int(m["y"]), int(m["d"]), int(m["H"]), int(m["M"]), int(m["S"] or 0)
        if not (1 <= d <= calendar.monthrange(y, mon)[1] and h < 24 and mi < 60 and s <= 60):
            continue
        try:
            secs = calendar.timegm((y, mon, d, h, mi, s, 0, 0, 0))
        except ValueError:  # year 0
            continue
        return secs - _zone_offset(m["z1"] or m.groupdict().get("z2") or ""), m.end()
    return None


def _zone_offset(zone: str) -> int:
    """Seconds east of UTC of "+0100", "EST" or "MET DST" (an unknown name counts as UTC)."""
    if zone[:1] in ("+", "-") and zone[1:].isdigit():
        sign = -1 if zone[0] == "-" else 1
        return sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
    name, _, dst = zone.upper().partition(" ")
    return (_ZONE_HOURS.get(name, 0) + (1 if dst else 0)) * 3600


@dataclass(frozen=True, slots=True)
class Envelope:
    """A From_ line split into sender and date (Unix seconds, or None).

    `spaced` marks a sender holding spaces, known only by the two spaces and the
    asctime date that end the line (pipermail); such a line starts a message only
    before a header line.
    """

    sender: str
    date: int | None
    rest: str
    spaced: bool = False

    @classmethod
    def parse(cls, line: bytes) -> Envelope:
        text = line[5:].rstrip(b"\r\n").decode("latin-1")
        stripped = text.lstrip(" ")
        if text.startswith(" "):  # empty sender: "From  Mon Jan  1 ..."
            date = parse_envelope_date(stripped)
            if date is not None:
                return cls(sender="", date=date, rest=stripped.strip())
        quoted = _QUOTED_SENDER.match(stripped)
        if quoted is not None:
            sender, rest = quoted[1], stripped[quoted.end():]
        else:
            sender, _, rest = stripped.partition(" ")
        date = parse_envelope_date(rest)
        if date is None:
            spaced = cls._spaced(stripped)
            if spaced is not None:
                return spaced
        return cls(sender=sender, date=date, rest=rest.strip())

    @classmethod
    def _spaced(cls, text: str) -> Envelope | None:
        """``<sender with spaces>  <asctime date>`` with nothing after the date, or None."""
        m = _SPACED_SENDER.fullmatch(text)
        if m is None:
            return None
        found = _date(m["date"])
        if found is None or m["date"][found[1]:].strip():
            return None
        return cls(sender=m["sender"], date=found[0], rest=m["date"].strip(), spaced=True)


def is_envelope(line: bytes, prev_blank: bool, next_line: bytes | None) -> bool:
    """Does this ``From `` line (not the file's first) start a new message?"""
    return _starts_message(Envelope.parse(line), prev_blank, next_line)


def _starts_message(env: Envelope, prev_blank: bool, next_line: bytes | None) -> bool:
    header_next = next_line is not None and _HEADER_LINE.match(next_line) is not None
    if env.date is not None:
        return header_next or not env.spaced
    if env.rest or not header_next:
        return False
    return env.sender == "-" or ("@" in env.sender and prev_blank)


# --- headers (only the few an mbox keeps its state in) -----------------------

def header_block(raw: bytes) -> bytes:
    end = rfc822.header_end(raw)
    return raw if end is None else raw[:end]


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
        from email.header import decode_header, make_header  # only for encoded labels (~2 ms of imports)

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
            flag = GMAIL_STATE_LABELS[low]
            if flag:
                flags.add(flag)
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
    """One message as found in the file: where, its From_ line and its raw bytes.

    A message longer than MAX_HELD is not held: `raw` is empty and `spill` has
    what its entry needs (digest, escaping, header block).
    """

    offset: int  # first byte after the From_ line, in the (decompressed) file
    length: int  # as stored, separator line removed
    envelope: Envelope  # its From_ line
    content_length: int | None  # the body length, when a Content-Length header delimits it
    raw: bytes  # as stored (still escaped)
    spill: _Spill | None = None


class _Spill:
    """A message longer than MAX_HELD, taken in piece by piece as it streams past."""

    def __init__(self, head: bytes, body_at: int | None) -> None:
        self.head = head  # its header block (within its first MAX_HEAD bytes), for flags
        self.body_at = body_at  # where a Content-Length-counted body starts
        import hashlib

        self.length = 0
        self.raw = hashlib.sha256()
        self.plain = hashlib.sha256()  # of the bytes unescaped
        self.escapes = False  # has a ^>+From line
        self.body_from = False  # has a raw ^From line in its counted body

    def feed(self, piece: bytes) -> None:
        """Take the next bytes, cut by _cut (so line patterns find in pieces what they find in the whole)."""
        self.raw.update(piece)
        if _ESCAPED.search(piece):
            self.escapes = True
            self.plain.update(unescape(piece))
        else:
            self.plain.update(piece)
        if self.body_at is not None and not self.body_from:
            self.body_from = _RAW_FROM.search(piece, max(self.body_at - self.length, 0)) is not None
        self.length += len(piece)

    def result(self) -> tuple[bool, str, bytes]:
        """(unescaped?, SHA-256 of the message's bytes, header block), decided as needs_unescape does."""
        escaped = self.escapes and not self.body_from
        digest = (self.plain if escaped else self.raw).hexdigest()
        return escaped, digest, unescape(self.head) if escaped else self.head


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
        """Index of the newline ending the line at `pos`: len(buf) at EOF without one, -1 past MAX_LINE bytes."""
        start = pos
        while True:
            i = self.buf.find(b"\n", start, pos + MAX_LINE)
            if i >= 0:
                return i
            if len(self.buf) >= pos + MAX_LINE:
                return -1
            start = len(self.buf)
            if not self.more():
                return len(self.buf)

    def peek(self, i: int, n: int) -> bytes:
        """Up to `n` bytes at index `i` (fewer at EOF, none if the stream cannot seek there).

        Bytes further than MAX_HELD are read by seeking, not held.
        """
        if i + n <= max(len(self.buf), MAX_HELD):
            self.fill(i + n)
            return bytes(self.buf[i:i + n])
        if not self.f.seekable():
            return b""
        here = self.f.tell()
        try:
            self.f.seek(self.base + i)
            data = self.f.read(n)
        except EOFError:  # a compressed file cut short
            data = b""
        self.f.seek(here)
        return data

    def drop(self, n: int) -> None:
        del self.buf[:n]
        self.base += n


def _prev_line_blank(buf: bytearray, line_start: int, floor: int) -> bool:
    """Is the line before `line_start` empty (and inside the message at `floor`)?"""
    if line_start - 2 >= floor and buf[line_start - 2:line_start] == b"\n\n":
        return True
    return line_start - 3 >= floor and buf[line_start - 3:line_start] == b"\n\r\n"


def _strip_separator(buf: bytearray, start: int, end: int) -> int:
    """Drop the blank line a writer puts between messages, if there is one."""
    if end - start >= 2 and buf[end - 2:end] == b"\n\n":
        return end - 1
    if end - start >= 3 and buf[end - 3:end] == b"\n\r\n":
        return end - 2
    return end


def _cut(buf: bytearray, lo: int, hi: int) -> int:
    """Where in (lo, hi] to cut the held bytes of a long message that start at `lo` (lo: nowhere yet).

    Pieces must show the line patterns (``^>*From ``) what the whole shows them:
    so a line start; inside a longer line (from `lo` on), a place after the
    line's start has shown whether it is a ``>*From `` line that does not itself
    look like such a line start; else inside the run of ">" the line starts with
    (each piece then sees a run of ">" that ends the same way).
    """
    i = buf.rfind(b"\n", lo, hi)
    if i >= 0:
        return i + 1
    gt = _GT_RUN.match(buf, lo, hi)
    assert gt is not None, '">*" matches the empty string at lo <= hi'
    run = gt.end()
    x = hi - 1
    while x > run + 5:
        if _MAYBE_FROM.match(buf, x, hi) is None:
            return x
        # Step back before the ">" run x is in (a copy, but only on lines like ">>>>From ").
        x = lo + len(buf[lo:x].rstrip(b">")) - 1 if buf[x - 1] == ord(">") else x - 1
    return run - 1 if run - 1 > lo else lo


class _Message:
    """The message after a From_ line while it is read.

    It is held in the window until it grows past MAX_HELD; from then on its
    bytes go to a _Spill piece by piece and are dropped.
    """

    def __init__(self, w: _Window, start: int) -> None:
        self.w = w
        self.start = w.base + start  # absolute offsets, as the window drops bytes
        self.fed = self.start  # bytes before this went to the spill
        self.spill: _Spill | None = None
        self.counted: tuple[int, int, int] | None = None  # Content-Length: (end, next From_ line, body length)
        self.following: Envelope | None = None  # the From_ line after it, as the search for it parsed it

    def bounds(self) -> tuple[int, int]:
        """(end of the message, start of the next From_ line)."""
        w = self.w
        nxt = self._next_envelope()
        if nxt is not None and self.spill is None:
            self.counted = self._content_length_end(nxt)
        if self.counted is not None:
            self.following = None  # the next message starts where the length says, not there
            return self.counted[0], self.counted[1]
        assert nxt is not None  # only a Content-Length ends the search early
        first = self.start - w.base  # negative once spilled
        return w.base + max(_strip_separator(w.buf, first, nxt), first), w.base + nxt

    def finish(self, end: int, after: int, envelope: Envelope) -> RawSlice:
        """The message as ending at `end`, the window then starting at `after` (the next From_ line).

        A Content-Length may end it past the window: it is read on to there.
        """
        w = self.w
        while w.base + len(w.buf) < end:
            if len(w.buf) - (self.fed - w.base) > MAX_HELD:
                self._spill_to(len(w.buf))
            if not w.more():
                break
        lo, stop = self.fed - w.base, min(end - w.base, len(w.buf))
        counted = None if self.counted is None else self.counted[2]
        if self.spill is None:
            piece = RawSlice(self.start, stop - lo, envelope, counted, bytes(memoryview(w.buf)[lo:stop]))
        else:
            self.spill.feed(bytes(memoryview(w.buf)[lo:stop]))
            piece = RawSlice(self.start, self.spill.length, envelope, counted, b"", self.spill)
        w.fill(after - w.base)
        w.drop(after - w.base)
        return piece

    def _next_envelope(self) -> int | None:
        """Index of the next From_ line (len(buf) at EOF); None if a Content-Length ended the message first."""
        w = self.w
        search = max(self.start - w.base - 1, 0)
        while True:
            m = _FROM_CANDIDATE.search(w.buf, search)
            if m is None:
                search = max(search, len(w.buf) - 6)
                hi = len(w.buf) - _KEEP
                if hi - (self.fed - w.base) > MAX_HELD:
                    if self.spill is None:  # before anything is dropped: does a Content-Length end it?
                        self.counted = self._content_length_end(hi)
                        if self.counted is not None:
                            return None
                    search -= self._spill_to(hi)
                if not w.more():
                    return len(w.buf)
                continue
            line_start = m.start() + 1
            self.following = self._envelope_at(line_start)
            if self.following is not None:
                return line_start
            search = line_start

    def _envelope_at(self, line_start: int) -> Envelope | None:
        """The ``From `` line at `line_start`, if it starts a message."""
        w = self.w
        eol = w.line_end(line_start)
        if eol < 0:
            return None
        next_line = None
        if eol < len(w.buf):
            next_eol = w.line_end(eol + 1)
            next_line = bytes(w.buf[eol + 1:next_eol if next_eol >= 0 else eol + 1 + MAX_LINE])
        prev_blank = _prev_line_blank(w.buf, line_start, self.start - w.base - 1)
        envelope = Envelope.parse(bytes(w.buf[line_start:eol]))
        return envelope if _starts_message(envelope, prev_blank, next_line) else None

    def _spill_to(self, hi: int) -> int:
        """Pass the held bytes up to about index `hi` to the spill and drop them; how many went."""
        w = self.w
        lo = self.fed - w.base
        cut = _cut(w.buf, lo, hi)
        if cut == lo:
            return 0
        if self.spill is None:
            body_at = None if self.counted is None else self.counted[0] - self.counted[2] - self.start
            self.spill = _Spill(header_block(bytes(w.buf[lo:lo + MAX_HEAD])), body_at)
        self.spill.feed(bytes(memoryview(w.buf)[lo:cut]))
        self.fed = w.base + cut
        w.drop(cut)
        return cut

    def _content_length_end(self, stop: int) -> tuple[int, int, int] | None:
        """(end, next From_ line, body length) if the header block, ending before `stop` and within
        MAX_HEAD bytes, has a Content-Length that ends on a From_ line (after at most one line
        break) or at the end of the file."""
        w = self.w
        start = self.start - w.base
        m = _HEADER_END.search(w.buf, max(start - 1, 0), min(stop, start + MAX_HEAD))
        if m is None:
            return None
        block = bytes(w.buf[start:m.start() + 1])
        if b"content-length" not in block.lower():  # most have none: no need to parse the headers
            return None
        value = header_values(block, {b"content-length"}).get(b"content-length", b"")
        if not value.isdigit() or int(value) > MAX_CONTENT_LENGTH:
            return None
        end = m.end() + int(value)
        tail = w.peek(end - 1, 8)  # its last byte, a line break, "From "
        if not tail:  # past the end of the file
            return None
        after = 2 if tail[1:3] == b"\r\n" else 1 if tail[1:2] == b"\n" else 0
        if tail[1 + after:] and tail[1 + after:6 + after] != b"From ":
            return None
        return w.base + end, w.base + end + after, int(value)


def _at_first_from_line(w: _Window, where: str) -> bool:
    """Drop a UTF-8 BOM and blank lines before the first From_ line; False if the stream is empty."""
    w.fill(64)
    if w.buf.startswith(_fs.BOM):
        w.drop(len(_fs.BOM))
    while True:
        w.fill(64)
        blank = 1 if w.buf[:1] == b"\n" else 2 if w.buf[:2] == b"\r\n" else 0
        if not blank:
            break
        w.drop(blank)
    if not w.buf:
        return False
    if w.buf[:5] != b"From ":
        raise SourceFormatError(where, "not an mbox file: it does not start with a 'From ' line")
    return True


def _take_from_line(w: _Window) -> tuple[bytes, int]:
    """The From_ line the window starts with (cut to MAX_LINE) and the index after it.

    The rest of a longer one is dropped unread.
    """
    eol = w.line_end(0)
    if eol >= 0:
        return bytes(w.buf[:eol]).rstrip(b"\r"), min(eol + 1, len(w.buf))
    line = bytes(w.buf[:MAX_LINE])
    while (eol := w.buf.find(b"\n")) < 0:
        w.drop(len(w.buf))
        if not w.more():
            return line, 0
    return line, eol + 1


def split_mbox(f: IO[bytes], where: str = "mbox") -> Iterator[RawSlice]:
    """Every message of an mbox stream, in order, in bounded memory.

    At most MAX_HELD bytes of a message (and a chunk) are held: a longer one
    comes with no raw bytes but its spill. A file not starting with a ``From ``
    line (after an optional UTF-8 BOM and blank lines) is a SourceFormatError,
    an empty one has no messages.
    """
    w = _Window(f)
    if not _at_first_from_line(w, where):
        return
    following: Envelope | None = None
    while True:
        from_line, start = _take_from_line(w)
        msg = _Message(w, start)
        end, after = msg.bounds()
        yield msg.finish(end, after, Envelope.parse(from_line) if following is None else following)
        following = msg.following
        if not w.buf and not w.more():
            return


def unescape(raw: bytes) -> bytes:
    """mboxrd unescaping: ``^>+From `` loses one ``>`` (see the module docstring)."""
    return _ESCAPED.sub(rb"\1", raw)


def needs_unescape(piece: RawSlice) -> bool:
    """Are the ``>From `` lines of a held message escapes (see the module docstring)?"""
    if not _ESCAPED.search(piece.raw):
        return False
    if piece.content_length is not None:  # a non-escaping writer leaves raw From lines in bodies
        return not _RAW_FROM.search(piece.raw, len(piece.raw) - piece.content_length)
    return True


def contents(piece: RawSlice) -> tuple[bytes | None, bool, str, bytes]:
    """(bytes, None when not held; whether they were unescaped; their SHA-256; header block) of a message."""
    if piece.spill is not None:
        return None, *piece.spill.result()
    escaped = needs_unescape(piece)
    data = unescape(piece.raw) if escaped else piece.raw
    return data, escaped, sha256_hex(data), header_block(data)


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
        self.tail = (self.tail + more[-self.KEEP:])[-self.KEEP:]  # not a copy of a whole long message
        return prefix + more


def _dir_parts(dirs: list[str]) -> list[str]:
    """Folder names of the directories of a path (Thunderbird's ``Foo.sbd`` holds the subfolders of "Foo")."""
    return [p[:-4] if p.lower().endswith(".sbd") else p for p in dirs]


def folder_of(rel: str) -> str:
    """Folder of an mbox file at relative path `rel` (extensions and .sbd dropped)."""
    parts = rel.split("/")
    name = parts[-1]
    for suffix in _fs.COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    for suffix in MBOX_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return _fs.join_folder([*_dir_parts(parts[:-1]), name])


def dir_folder_of(rel: str) -> str:
    """Folder of a one-message file at relative path `rel`: its directory's, not a folder per message."""
    return _fs.join_folder(_dir_parts(rel.split("/")[:-1]))


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


@dataclass(frozen=True, slots=True)
class TreeFile:
    """A container file of a source: an mbox file, or (`whole`) a file that is one message."""

    rel: str  # its path relative to the source's root, and the container's name
    path: Path
    whole: bool = False

    @property
    def folder(self) -> str:
        return dir_folder_of(self.rel) if self.whole else folder_of(self.rel)


def _tree_file(e: os.DirEntry[str], root: Path) -> TreeFile | str:
    """The container file a directory entry (not a directory) is, or why it is left out.

    An mbox file first; else `_fs.skip_reason` decides, by the same rules and with the same
    reasons as in an .eml tree, whether it is one message. Raises
    FileNotFoundError if `e` vanished since the listing.
    """
    path = Path(e.path)
    rel = _fs.rel_posix(path, root)
    if _fs.is_file(e) and _is_mbox_file(path, e.name):
        return TreeFile(rel, path)
    reason = _fs.skip_reason(e)
    return TreeFile(rel, path, whole=True) if reason is None else reason


def _sort_out(entries: list[os.DirEntry[str]], root: Path) -> tuple[list[TreeFile], Counter[str]]:
    """The container files among one directory's entries, and its other files counted by reason."""
    files: list[TreeFile] = []
    skips: Counter[str] = Counter()
    for e in entries:
        if _fs.is_dir(e):
            continue  # walked on its own (or hidden)
        try:
            found = _tree_file(e, root)
        except FileNotFoundError:
            continue  # vanished since the listing: not a file of the directory any more
        if isinstance(found, str):
            skips[found] += 1
        else:
            files.append(found)
    return files, skips


def _content_stamp(st: os.stat_result) -> str:
    """A one-message file's content stamp, as an .eml tree's: it changes when the file may have."""
    return f"{st.st_size}:{st.st_mtime_ns}"


def _stamped(files: list[TreeFile]) -> list[Container]:
    """The containers of `files`, stamped (a file vanished since the listing is left out)."""
    stats = ((f, _fs.stat_or_none(f.path)) for f in files)
    return [_fs.container(f.rel, st) for f, st in stats if st is not None]


class MboxSource(_fs.TallySource):
    """One mbox file, or a directory tree of them (each file a folder) and of one-message files.

    `skipped` counts what the last `containers` walk left out (not `entries`: a
    file left out belongs to no container).
    """

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
            elif _fs.looks_like_message(head):
                mail += 1
        return mbox > 0 and mbox >= mail

    @property
    def root(self) -> Path:
        """The directory locator paths are relative to (a single file's parent)."""
        return self.location if self.location.is_dir() else self.location.parent

    def _tree(self) -> Iterator[tuple[list[TreeFile], Counter[str]]]:
        """Each directory in walk order: its container files, sorted, and its other files counted by reason.

        A single-file source is that file, with nothing left out.
        """
        _fs.require_exists(self.location)
        if not self.location.is_dir():
            yield [TreeFile(self.location.name, self.location)], Counter()
            return
        for _d, entries in _fs.walk_dirs(self.location):
            yield _sort_out(entries, self.location)

    def files(self) -> Iterator[TreeFile]:
        """Every container file of the source, sorted."""
        for files, _skips in self._tree():
            yield from files

    def containers(self) -> Iterator[Container]:
        """Every container file, stamped; the files a directory leaves out are charged to one container.

        No file left out is a container, so the counts go to `skipped` of the
        directory's first container, or, for a directory without any, of the
        source's first (a tree without a container reports none). The sync
        keeps a container's counts while its stamp holds, so the stamp of a
        charged container carries its counts: it changes, and the container is
        listed again, exactly when they do. The price: that container's file is
        then read again although its own messages did not change. The walk is
        done before the first container is given, which the last rule needs.
        """
        dirs = [(_stamped(files), skips) for files, skips in self._tree()]
        listed = [c for found, _skips in dirs for c in found]
        charges: dict[str, Counter[str]] = {}
        for found, skips in dirs:
            owner = found[0] if found else listed[0] if listed else None
            if owner is not None and skips:
                charges.setdefault(owner.name, Counter()).update(skips)
        self._skips.clear()  # a container charged by the last walk may not be by this one
        for c in listed:
            yield self._charged(c, charges.get(c.name))

    def _charged(self, c: Container, counts: Counter[str] | None) -> Container:
        """`c` made to report `counts` by `skipped`, its stamp changed to carry them."""
        if not counts:
            return c
        self._tally(c.name).update(counts)
        text = ",".join(f"{reason}={n}" for reason, n in sorted(counts.items()))
        return replace(c, stamp=f"{c.stamp} skipped {text}")

    def entries(self, container: str) -> Iterator[Entry]:
        path = _fs.resolve_locator_path(self.root, container, str(self.location))
        if self._is_whole(path):
            return self._whole_entries(container, path)
        return self._mbox_entries(container, path)

    def _is_whole(self, path: Path) -> bool:
        """Is the container file at `path` one message (sniffed again: it may have changed since the walk)?"""
        return self.location.is_dir() and not _is_mbox_file(path, path.name)

    @staticmethod
    def _whole_entries(container: str, path: Path) -> Iterator[Entry]:
        """The one entry of a one-message file: the file as it is, keyed by its path (as in an .eml tree)."""
        st = _fs.stat_or_none(path)
        if st is None:
            return  # vanished since the listing: nothing to list
        stamp = _content_stamp(st)
        yield Entry(
            container=container,
            key=container,
            folders=(dir_folder_of(container),),
            locator={"path": container, "whole": True, "stamp": stamp},
            content_stamp=stamp,
            mtime=int(st.st_mtime),
        )

    def _mbox_entries(self, container: str, path: Path) -> Iterator[Entry]:
        """The messages of an mbox file, split (see the module docstring)."""
        where = str(self.location)
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
                    entry = self._entry(container, folder, piece, seen)
                    del piece  # its raw bytes, when unescaped into a copy, need not stay while the entry is out
                    yield entry
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
        data, escaped, digest, head = contents(piece)
        seen[digest] = n = seen.get(digest, 0) + 1
        folders, flags = self._folders_and_flags(head, piece.envelope, folder)
        return Entry(
            container=container,
            key=f"{digest}#{n}",
            folders=folders,
            locator={"path": container, "offset": piece.offset, "length": piece.length, "escaped": escaped,
                     "sha256": digest},
            content_stamp="",
            flags=frozenset(flags),
            envelope_date=piece.envelope.date,
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
        if locator.get("whole"):
            where = str(self.location)
            return _fs.read_file_bytes(_fs.resolve_locator_path(self.root, locator.get("path"), where), where)
        raw = self._read_raw(locator)
        return unescape(raw) if locator.get("escaped") else raw

    def holds_mail(self) -> bool:
        """As for every file source; a tree without any container file charges its other files to no
        container, so they are looked at here: such a tree holds mail only if it holds nothing else."""
        tree = list(self._tree())
        if not any(files for files, _skips in tree):
            return not any(n for _files, skips in tree for reason, n in skips.items() if reason != SKIP_METADATA)
        return super().holds_mail()

    def is_message(self, locator: Mapping[str, Any], data: bytes) -> bool:
        """A message of an mbox file is mail by its From_ line; a one-message file of the tree by its bytes."""
        return not locator.get("whole") or _fs.looks_like_message(data)

    def read_flags(self, locator: Mapping[str, Any]) -> frozenset[str]:
        if locator.get("whole"):
            return frozenset()  # a one-message file keeps no flags; its Status header is no store's state
        data = self.read_bytes(locator)
        return frozenset(self._folders_and_flags(data, Envelope("", None, ""), "")[1])

    # -- live operations ----------------------------------------------------

    def folders(self) -> list[Folder]:
        names = sorted({f.folder for f in self.files()})
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
        if want and sha256_hex(data) != want:
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
                "sha256": sha256_hex(data)}

    def set_flags(self, locator: Mapping[str, Any], changes: Mapping[str, bool]) -> Mapping[str, Any]:
        if locator.get("whole"):
            raise self._unsupported("setting flags on a one-message file")
        from mailindex.sources import mbox_writer  # only live operations write: its tempfile costs a sync ~2 ms

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
        if locator.get("whole"):
            self._unlink(locator)
            return
        from mailindex.sources import mbox_writer  # only live operations write: its tempfile costs a sync ~2 ms

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
            start = base + _from_line_start(before)  # the From_ line's first byte
            stop = offset + len(raw) + (1 if after[:1] == b"\n" else 2 if after == b"\r\n" else 0)
            mbox_writer.replace_range(path, start, stop, b"", where)
        self._drop_stream()

    def _unlink(self, locator: Mapping[str, Any]) -> None:
        """Delete a one-message file, unless it changed since it was listed (it may be another message now)."""
        where = str(self.location)
        path = _fs.resolve_locator_path(self.root, locator.get("path"), where)
        st = _fs.stat_or_none(path)
        if st is None:
            raise SourceNotFound(where, f"message file {locator.get('path')!r} is gone")
        if _content_stamp(st) != locator.get("stamp"):
            raise ConcurrentChange(where, f"{locator.get('path')!r} changed since it was synced: "
                                   "sync again; nothing was deleted")
        _fs.remove_file(path, where)

    def append(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        where = str(self.location)
        # Only into an mbox file: a one-message file's folder is its directory's, which is no file to add to.
        rel = next((f.rel for f in self.files() if not f.whole and f.folder == folder), None)
        if rel is None:
            if not self.location.is_dir():
                raise SourceError(where, f"this mbox file is folder {folder_of(self.location.name)!r}; "
                                  f"it cannot hold folder {folder!r}")
            rel = folder.strip("/")
            try:
                path = _fs.resolve_locator_path(self.root, rel, where)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(exist_ok=False)  # a file or directory there is no mbox of the tree: never write into it
            except FileExistsError:
                raise SourceError(where, f"cannot make folder {folder!r}: {rel!r} exists and is no mbox file") from None
            except OSError as exc:
                raise SourceError(where, f"cannot make folder {folder!r}: {exc.strerror or exc}") from exc
        from mailindex.sources import mbox_writer

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
    return b"From " in before[i + 1:]  # at the line's start, or where a counted body ended mid-line


def _from_line_start(before: bytes) -> int:
    """Where the From_ line that `before` ends with starts: its line's start, or, when a Content-Length body
    ended without a line break (the From_ line then follows it on the same line), its "From "."""
    start = before.rfind(b"\n", 0, len(before) - 1) + 1
    if before.startswith(b"From ", start):
        return start
    mid = before.rfind(b"From ", start)
    return mid if mid >= 0 else start


@hookimpl
def mailindex_source_types() -> list[str]:
    return [MboxSource.type]


@hookimpl(trylast=True)
def mailindex_open_source(location: str, source_type: str | None, options: Mapping[str, Any]) -> Backend | None:
    return _fs.open_if(MboxSource, location, source_type, options)


__all__ = ["Envelope", "MboxSource", "RawSlice", "TreeFile", "dir_folder_of", "folder_of", "gmail_folders",
           "is_envelope", "parse_envelope_date", "split_labels", "split_mbox", "unescape"]
