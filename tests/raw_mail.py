"""Raw-bytes hypothesis strategies for the whole pipeline (tests/test_pipeline_hostile.py), and writers that put
exact bytes on disk as a Maildir, an mbox or an .eml tree.

Each message strategy takes `n` (its place in the mailbox, which makes its bytes unique) and gives a `Raw`:
the exact bytes and whatever the generator knows they must read back as."""

from __future__ import annotations

import base64
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from tests.parse_reference import eight_bit
from tests.strategies import (BOGUS_CHARSETS, HEADER_NAMES, Spec, encoded_word, hostile_file_param, hostile_value,
                              specs, split_words)

FORMATS = ["maildir", "mbox", "eml"]


@dataclass(frozen=True)
class Raw:
    """One generated message: its bytes and what they must read back as (None: not known to the generator)."""

    data: bytes
    subject: str | None = None
    sender: str | None = None  # the From address
    sender_name: str | None = None
    name_known: bool = False  # whether `sender_name` is known (None is a value: no display name)
    files: tuple[tuple[str, int | None], ...] | None = None  # (file_name, size or None if unknown), in order
    to: tuple[str, ...] = ()  # addresses To must hold
    query_subject: bool = True  # the subject is fit for a subject= query (not the whole of a huge one)


def _lines(text: str | bytes, crlf: bool) -> bytes:
    """Text with LF line ends as bytes, its line ends made CRLF when `crlf`."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return data.replace(b"\n", b"\r\n") if crlf else data


def _mid(n: int) -> bytes:
    return b"Message-ID: <raw%d@test.example>\n" % n


# ---------------------------------------------------------------- encoded-words split inside characters


@st.composite
def split_word_messages(draw: st.DrawFn, n: int) -> Raw:
    """Subject and From display name made of encoded-words cut at arbitrary bytes of a multi-byte charset
    (`split_words`), LF or CRLF: the subject must read back as the text."""
    text, words = draw(split_words().filter(lambda s: "?q?=2c?=" not in s[1].lower()))  # see test_parse_hostile
    words = words.replace("\r\n", "\n")
    sender = f"w{n}@example.com"
    head = (f"From: {words} <{sender}>\nTo: me@example.com\nSubject: Re: {words} end\n").encode("ascii")
    data = head + _mid(n) + b"Date: Mon, 14 Sep 2020 12:26:40 +0000\n\nbody %d\n" % n
    return Raw(_lines(data, draw(st.booleans())), subject=f"Re: {text} end", sender=sender,
               sender_name=" ".join(text.split()) or None, name_known=True)


# ---------------------------------------------------------------- raw 8-bit header bytes

# Bytes of 8-bit header text: anything >= 0x80 and ASCII that cannot start an encoded-word or a fold.
EIGHT_BIT = st.binary(min_size=1, max_size=16).map(
    lambda b: bytes(c for c in b if c >= 0x80 or 0x30 <= c <= 0x7A and c not in b"=\\")).filter(bool)


@st.composite
def eight_bit_messages(draw: st.DrawFn, n: int) -> Raw:
    """Raw 8-bit bytes (UTF-8, latin-1, cp1252 or none of them) in Subject, the From display name and To."""
    subject = b"8bit " + draw(EIGHT_BIT) + b" %d" % n
    name = draw(EIGHT_BIT)
    sender = f"e{n}@example.com"
    to_name = draw(EIGHT_BIT)
    data = (b"From: \"" + name + b"\" <" + sender.encode() + b">\nTo: \"" + to_name + b"\" <me@example.com>\n"
            b"Subject: " + subject + b"\n" + _mid(n) + b"\nbody %d\n" % n)
    return Raw(_lines(data, draw(st.booleans())), subject=eight_bit(subject).strip(), sender=sender,
               sender_name=eight_bit(name).strip() or None, name_known=True, to=("me@example.com",))


# ---------------------------------------------------------------- content that would put lone surrogates in the store

# Payloads whose naive decoding gives lone surrogates: utf-7 halves, escapes, utf-16/32 halves, CESU/WTF-8.
SURROGATE_PAYLOADS = [b"+2D0-", b"+3gA-", b"+2D0-+3gA-", b"\\ud800", b"\\U0000dc80", b"\\udcff", b"\x00\xd8",
                      b"\x00\xdc\x41\x00", b"\xff\xfe\x00\xd8", b"\x00\x00\xd8\x00", b"\xed\xa0\x80", b"\xed\xb3\xbf",
                      b"caf\xe9", b"\x80\xff", b"\xc3"]
SURROGATE_CHARSETS = ["utf-7", "utf-16", "utf-16-le", "utf-32", "unicode_escape", "raw-unicode-escape", "utf-8",
                      "cesu-8", "x-unknown", *BOGUS_CHARSETS]


@st.composite
def surrogate_payload(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.one_of(st.sampled_from(SURROGATE_PAYLOADS), st.binary(max_size=6)), max_size=5))
    return b" ".join(parts)


def _no_break(raw: bytes) -> bytes:
    return raw.replace(b"\r", b"").replace(b"\n", b"")


@st.composite
def surrogate_messages(draw: st.DrawFn, n: int) -> Raw:
    """Undecodable bytes and surrogate-producing encodings everywhere the store keeps text: header values
    (`hostile_value`), the From display name, encoded-words in utf-7 and escape codecs, file-name
    parameters (`hostile_file_param`), text bodies in bogus charsets, a nested message's headers."""
    v = lambda fold=False: draw(hostile_value(fold))  # noqa: E731
    sender = f"s{n}@example.com"
    name = _no_break(draw(surrogate_payload()) + v()).replace(b'"', b"").replace(b"\\", b"")
    word = encoded_word(draw(st.sampled_from(SURROGATE_CHARSETS)), draw(surrogate_payload()), draw(st.booleans()))
    names = draw(st.lists(st.sampled_from([h for h in HEADER_NAMES if h != "From"]), max_size=6))
    heads = b"".join(h.encode() + b": " + v(True) + b"\n" for h in names)
    cs = lambda: draw(st.sampled_from(SURROGATE_CHARSETS)).encode("latin-1")  # noqa: E731
    param = draw(hostile_file_param())
    nested = (b"Subject: " + v() + b" " + word.encode() + b"\nFrom: " + v() + b"\nContent-Type: text/plain; charset="
              + cs() + b"\n\n" + draw(surrogate_payload()) + b"\n")
    data = (b"From: \"" + name + b"\" <" + sender.encode() + b">\n" + _mid(n) + heads +
            b"X-Word: " + word.encode() + b"\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
            b"--b\nContent-Type: text/" + draw(st.sampled_from([b"plain", b"html"])) + b"; charset=" + cs() +
            b"\n\n" + draw(surrogate_payload()) + b"\n"
            b"--b\nContent-Type: application/octet-stream" + param + b"\nContent-Disposition: attachment" + param +
            b"\nContent-ID: <" + _no_break(draw(surrogate_payload())) + b">\nContent-Transfer-Encoding: base64\n\n"
            + base64.b64encode(draw(st.binary(min_size=1, max_size=20))) + b"\n"
            b"--b\nContent-Type: message/rfc822\n\n" + nested + b"--b--\n")
    return Raw(_lines(data, draw(st.booleans())), sender=sender)


# ---------------------------------------------------------------- nested multiparts

NAME_CHARS = list("abcXYZ019 -_.()") + list("éü€日本") + ["😀"]
BOUNDARIES = ["b", "=_Part_0.1", "----=_NextPart_000_0001", "a b'()+_,-./:", "x" * 60, "--", "B"]
_CONTENT = bytes(range(256)) * 40


@dataclass
class Part:
    """A node of a generated MIME tree; renders itself and the (file_name, size) list it must give.

    A multipart's boundary is its level then `boundary` (none is a prefix of another's, which RFC 2046
    would read as a delimiter of the outer one), or, for "DUP", its parent's own."""

    kind: str  # "text", "file", "multi", "message"
    name: str = ""
    size: int = 0
    name_style: str = "quoted"  # of a file: quoted | rfc2231 | rfc2047 | ctype-name
    subtype: str = "mixed"
    boundary: str = "b"
    children: list[Part] = field(default_factory=list)
    close: bool = True  # multipart: the close delimiter is there
    boundary_param: bool = True  # multipart: the boundary parameter is there
    attached: bool = False  # message: declared an attachment with a file name

    def bound(self, level: str, parent: str) -> str:
        return parent if self.boundary == "DUP" else f"{level}~{self.boundary}" if level else self.boundary

    def header(self, level: str, parent: str = "") -> bytes:
        if self.kind == "text":
            return b"Content-Type: text/plain; charset=utf-8\n"
        if self.kind == "file":
            return (b"Content-Type: application/octet-stream" + self._param("name") + b"\n"
                    b"Content-Disposition: attachment" + self._param("filename") + b"\n"
                    b"Content-Transfer-Encoding: base64\n")
        if self.kind == "multi":
            b = f'; boundary="{self.bound(level, parent)}"' if self.boundary_param else ""
            return f"Content-Type: multipart/{self.subtype}{b}\n".encode()
        disp = f'Content-Disposition: attachment; filename="fwd{level}.eml"\n' if self.attached else ""
        return ("Content-Type: message/rfc822\n" + disp).encode()

    def _param(self, key: str) -> bytes:
        name = self.name
        if self.name_style == "ctype-name" and key == "filename":
            return b""  # the name only in Content-Type's name=
        if self.name_style == "rfc2231":
            return f"; {key}*=utf-8''{urllib.parse.quote(name, safe='')}".encode("ascii")
        if self.name_style == "rfc2047" and not name.isascii():
            return f'; {key}="{encoded_word("utf-8", name.encode("utf-8"), True)}"'.encode("ascii")
        return b"; " + key.encode() + b'="' + name.encode("utf-8") + b'"'  # raw UTF-8 when not ASCII

    def body(self, level: str, n: int, parent: str = "") -> bytes:
        if self.kind == "text":
            return b"text of part %s of message %d\n" % (level.encode(), n)
        if self.kind == "file":
            return base64.encodebytes(_CONTENT[len(level):len(level) + self.size])
        if self.kind == "message":
            inner = self.children[0]
            return (b"From: inner@example.com\nSubject: inner %s\nMIME-Version: 1.0\n" % level.encode()
                    + inner.header(level + "m", parent) + b"\n" + inner.body(level + "m", n, parent))
        mine = self.bound(level, parent).encode()
        out = b"preamble\n"
        for i, kid in enumerate(self.children, 1):
            sub = f"{level}.{i}"
            out += (b"--" + mine + b"\n" + kid.header(sub, mine.decode()) + b"\n" + kid.body(sub, n, mine.decode())
                    + b"\n")
        if self.close:
            out += b"--" + mine + b"--\nepilogue\n"
        return out

    def files(self, level: str, n: int, crlf: bool, open_end: bool = False) -> list[tuple[str, int | None]] | None:
        """The files this node must give, in order (None: not known); `open_end`: no delimiter ends it."""
        if self.kind == "text":
            return []
        if self.kind == "file":
            return [(self.name, self.size)]
        if self.kind == "message":
            inner = self.children[0].files(level + "m", n, crlf, open_end)
            if inner is None:
                return None
            # the attached message's size is its bytes; where no delimiter follows, the line end is its own
            size = None if open_end else len(_lines(self.body(level, n), crlf))
            return ([(f"fwd{level}.eml", size)] if self.attached else []) + inner
        if not self.boundary_param:
            return []  # no boundary: the body is plain text (parse.py), no parts
        if self.boundary == "DUP":
            return None  # its parent's boundary: which part ends where is anyone's guess
        out: list[tuple[str, int | None]] = []
        for i, kid in enumerate(self.children, 1):
            got = kid.files(f"{level}.{i}", n, crlf, (not self.close or open_end) and i == len(self.children))
            if got is None:
                return None
            out += got
        return out


def _leaf(draw: st.DrawFn) -> Part:
    if draw(st.integers(0, 2)) == 0:
        return Part("text")
    name = "".join(draw(st.lists(st.sampled_from(NAME_CHARS), min_size=1, max_size=12))).strip() or "f"
    return Part("file", name=name, size=draw(st.sampled_from([0, 1, 2, 3, 57, 1000])),
                name_style=draw(st.sampled_from(["quoted", "rfc2231", "rfc2047", "ctype-name"])))


@st.composite
def mime_trees(draw: st.DrawFn, depth: int = 3) -> Part:
    """A multipart whose parts are text, files, multiparts and message/rfc822 parts, down to `depth`;
    sometimes a close delimiter or a boundary parameter is missing, or a boundary repeats its parent's."""
    kids: list[Part] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 5)) if depth > 1 else 0
        if kind <= 2:
            kids.append(_leaf(draw))
        elif kind <= 4:
            kids.append(draw(mime_trees(depth - 1)))
        else:
            inner = draw(mime_trees(depth - 1)) if draw(st.booleans()) else _leaf(draw)
            kids.append(Part("message", children=[inner], attached=draw(st.booleans())))
    broken = draw(st.integers(0, 9))
    return Part("multi", subtype=draw(st.sampled_from(["mixed", "alternative", "related", "x-unknown"])),
                boundary=draw(st.sampled_from(BOUNDARIES)) if broken != 3 or depth == 3 else "DUP",
                children=kids, close=broken not in (1, 2), boundary_param=broken != 4)


@st.composite
def nested_messages(draw: st.DrawFn, n: int) -> Raw:
    """A message whose body is a generated MIME tree (`mime_trees`): its files, by name and size, are known
    unless a boundary repeats."""
    tree = draw(mime_trees())
    if tree.boundary == "DUP":
        tree.boundary = "top"
    sender = f"n{n}@example.com"
    data = (f"From: {sender}\nTo: me@example.com\nSubject: nested {n}\nMIME-Version: 1.0\n".encode() + _mid(n) +
            tree.header("") + b"\n" + tree.body("", n))
    crlf = draw(st.booleans())
    files = tree.files("", n, crlf, open_end=not tree.close)
    return Raw(_lines(data, crlf), subject=f"nested {n}", sender=sender,
               files=None if files is None else tuple(files))


# ---------------------------------------------------------------- huge headers


@st.composite
def huge_header_messages(draw: st.DrawFn, n: int) -> Raw:
    """One header field of hundreds of KB (folded or one line), thousands of header fields, or a To list
    of thousands of addresses; Subject and From before, between or after them."""
    kind = draw(st.sampled_from(["field", "fields", "to"]))
    to: tuple[str, ...] = ()
    if kind == "field":
        size = draw(st.sampled_from([100_000, 300_000, 700_000]))
        sep = draw(st.sampled_from([b"", b"\n "]))
        word = b"w%d " % n
        big = b"X-Huge: " + sep.join([word * 10] * (size // (len(word) * 10))) + b"\n"
    elif kind == "fields":
        count = draw(st.sampled_from([1000, 3000, 6000]))
        name = draw(st.sampled_from([b"X-Field-%d", b"Received", b"X-Same"]))
        big = b"".join((name % i if b"%" in name else name) + b": from host%d by mx; value %d\n" % (i, i)
                       for i in range(count))
    else:
        count = draw(st.sampled_from([1000, 4000, 9000]))
        picks = draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=3))
        to = tuple(f"u{i}@example.net" for i in picks)
        big = b"To: " + b",\n ".join(b"User %d <u%d@example.net>" % (i, i) for i in range(count)) + b"\n"
    sender = f"h{n}@example.com"
    heads = draw(st.permutations([f"From: {sender}\n".encode(), b"Subject: huge %d\n" % n, _mid(n)]))
    heads.insert(draw(st.integers(0, len(heads))), big)
    data = b"".join(heads) + b"\nbody %d\n" % n
    return Raw(_lines(data, draw(st.booleans())), subject=f"huge {n}", sender=sender, to=to)


# ---------------------------------------------------------------- mailboxes of one kind


@st.composite
def raw_boxes(draw: st.DrawFn, kind: Callable[[int], st.SearchStrategy[Raw]], max_size: int = 4) -> list[Raw]:
    """1..max_size messages drawn from `kind` (a strategy factory taking `n`)."""
    return [draw(kind(i)) for i in range(draw(st.integers(1, max_size)))]


# ---------------------------------------------------------------- non-UTF-8 file names

# Bytes of a file name: anything but "/" and NUL (what a POSIX file name may hold); os.fsdecode-able always.
NAME_BYTES = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"/", b"").replace(b"\x00", b"")).filter(
    lambda b: b and not b.startswith(b"."))


@dataclass(frozen=True)
class NamedMessage:
    """A message file at a path of arbitrary bytes: `folder` (a directory name, None for the top) and `name`;
    `junk` is the content of a file that is no mail (quarantined under its name), else it is `spec`."""

    folder: bytes | None
    name: bytes
    spec: Spec
    junk: bytes | None = None

    @property
    def data(self) -> bytes:
        return self.spec.to_bytes() if self.junk is None else self.junk


@st.composite
def named_boxes(draw: st.DrawFn, fmt: str) -> list[NamedMessage]:
    """Messages (tests/strategies `specs`) in files and folders named by arbitrary bytes: Maildir unique
    names (with or without an info part) and Maildir++ folders, or .eml files and their directories."""
    if fmt == "maildir":  # no info-part separators in a unique name, no "." in a Maildir++ folder name
        unique = NAME_BYTES.map(lambda b: re.sub(rb"[:;!]", b"", b)).filter(bool)
        folder = NAME_BYTES.map(lambda b: b.replace(b".", b"")).filter(bool)
    else:
        unique = NAME_BYTES.map(lambda b: b[:200] + b".eml")
        folder = NAME_BYTES.filter(lambda b: b not in (b"cur", b"new", b"tmp"))  # those would make a Maildir
    count = draw(st.integers(1, 5))
    names = draw(st.lists(unique, min_size=count, max_size=count, unique=True))
    out = []
    for i, name in enumerate(names):
        where = draw(st.one_of(st.none(), folder))
        if fmt == "maildir" and draw(st.booleans()):
            name += b":2," + draw(st.sampled_from([b"", b"S", b"FS", b"RS"]))
        junk = b"no header line here %d\n" % i if draw(st.integers(0, 4)) == 0 else None
        out.append(NamedMessage(where, name, draw(specs(i)), junk))
    return out


def write_named(fmt: str, root: Path, box: list[NamedMessage]) -> Path:
    """Write `box` under `root` by bytes paths, exactly as named."""
    top = os.fsencode(root)
    for m in box:
        if fmt == "maildir":
            d = top if m.folder is None else os.path.join(top, b"." + m.folder)
            for sub in (b"cur", b"new", b"tmp"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            path = os.path.join(d, b"cur" if b":2," in m.name else b"new", m.name)
        else:
            d = top if m.folder is None else os.path.join(top, m.folder)
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, m.name)
        with open(path, "wb") as f:
            f.write(m.data)
    for sub in (b"cur", b"new", b"tmp") if fmt == "maildir" else ():
        os.makedirs(os.path.join(top, sub), exist_ok=True)
    return root


# ---------------------------------------------------------------- writers of exact bytes

ENVELOPE = b"From sender@example.com Mon Sep 14 12:26:40 2020\n"
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


def mboxrd(data: bytes) -> bytes:
    """One message as an mboxrd writer stores it: every ``^>*From `` line gets one more ``>``."""
    return _FROM_LINE.sub(rb">\1", data)


def write_mbox(path: Path, messages: list[bytes]) -> Path:
    """An mboxrd file of `messages` (each ending in a line break, as an mbox can only give back), a blank
    line after each."""
    with open(path, "wb") as f:
        for data in messages:
            assert data.endswith(b"\n"), "an mbox message ends with a line break"
            f.write(ENVELOPE + mboxrd(data) + b"\n")
    return path


def write(fmt: str, root: Path, messages: list[bytes]) -> Path:
    """`messages` byte for byte as a Maildir (cur/, some in a Maildir++ folder), an mbox file or an .eml tree."""
    root.mkdir(parents=True, exist_ok=True)
    if fmt == "mbox":
        return write_mbox(root / "box.mbox", messages)
    for i, data in enumerate(messages):
        if fmt == "maildir":
            d = root if i % 2 == 0 else root / ".Sub"
            for sub in ("cur", "new", "tmp"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            (d / "cur" / f"1600000000.M{i}P1.test:2,S").write_bytes(data)
        else:
            d = root if i % 2 == 0 else root / "sub"
            d.mkdir(exist_ok=True)
            (d / f"{i}.eml").write_bytes(data)
    for sub in ("cur", "new", "tmp") if fmt == "maildir" else ():
        (root / sub).mkdir(exist_ok=True)
    return root


# ---------------------------------------------------------------- Content-Length mboxes

# Body lines around "From ": one that starts a message by the documented rules (a dated From_ line), one
# that does not ("From time to time"), and one that looks escaped.
DATED_FROM = b"From someone@example.org Tue Feb  2 10:00:00 2021"
PLAIN_FROM = b"From time to time"
ESCAPED_FROM = b">From the archive"
_ESCAPED = re.compile(rb"^>(>*From )", re.MULTILINE)


@dataclass(frozen=True)
class ClMessage:
    """One message of a Content-Length mbox: the envelope written before it, its bytes, its Content-Length
    header value (None: absent), the body's length, the separator written after it, and the body offsets of
    its dated From_ lines."""

    envelope: bytes
    data: bytes
    cl: bytes | None
    body_len: int
    sep: bytes
    dated: tuple[int, ...]
    subject: str
    sender: str


@st.composite
def cl_mboxes(draw: st.DrawFn) -> tuple[bytes, list[ClMessage]]:
    """An mbox written as Solaris mail writes one (no escaping, a Content-Length header), whose bodies hold
    dated and plain "From " lines and ">From " lines, and whose Content-Length is right, wrong (off by a
    few bytes, past the end, not a number) or absent; LF or CRLF."""
    nl = b"\r\n" if draw(st.booleans()) else b"\n"
    out: list[ClMessage] = []
    blob = b""
    for k in range(draw(st.integers(1, 5))):
        lines: list[bytes] = []
        dated: list[int] = []
        for i, kind in enumerate(draw(st.lists(st.sampled_from(["text", "dated", "plain", "escaped"]), max_size=6))):
            line = {"text": b"line", "dated": DATED_FROM, "plain": PLAIN_FROM, "escaped": ESCAPED_FROM}[kind]
            if kind == "dated":
                dated.append(sum(len(x) for x in lines))
            lines.append(line + b" %d.%d" % (k, i) * (kind != "dated") + nl)
            if kind == "dated":  # a unique line after it: the piece it starts is no other's copy
                lines.append(b"after %d.%d" % (k, i) + nl)
        body = b"".join(lines)
        if body and draw(st.booleans()):
            body = body[: -len(nl)]  # no line break at the end: only a right Content-Length keeps that
        mode = draw(st.sampled_from(["right", "right", "absent", "wrong"]))
        if not body.endswith(nl) and mode != "right":
            body += nl
        value = len(body)
        cl: bytes | None = b"%d" % value
        if mode == "absent":
            cl = None
        elif mode == "wrong":
            cl = draw(st.sampled_from([b"%d" % max(value + d, 0) for d in (-3, -2, -1, 1, 2)]
                                      + [b"10000000", b"12x", b"-5", b""]))
        sender, subject = f"c{k}@example.com", f"cl {k} {mode}"
        heads = [f"From: {sender}".encode(), f"Subject: {subject}".encode(), b"Message-ID: <cl%d@test.example>" % k]
        if cl is not None:
            heads.insert(draw(st.integers(0, len(heads))), b"Content-Length: " + cl)
        data = nl.join(heads) + nl + nl + body
        sep = b"" if mode == "right" and draw(st.booleans()) else nl
        out.append(ClMessage(ENVELOPE.replace(b"\n", nl), data, cl, len(body), sep, tuple(dated), subject, sender))
        blob += out[-1].envelope + data + sep
    return blob, out


def _strip_separator(piece: bytes) -> bytes:
    """The blank line a writer puts between messages is no part of one (mbox.py's rule)."""
    if piece.endswith(b"\n\n"):
        return piece[:-1]
    if len(piece) >= 3 and piece.endswith(b"\n\r\n"):
        return piece[:-2]
    return piece


def _unescaped(piece: bytes, counted: int | None) -> bytes:
    """The documented unescaping: ``^>+From `` loses one ``>``, except in a counted message whose body
    holds a raw ``From `` line (its writer does not escape)."""
    if counted is not None and re.search(rb"^From ", piece[len(piece) - counted:], re.MULTILINE):
        return piece
    return _ESCAPED.sub(rb"\1", piece)


def _split_dated(region: bytes, starts: list[int]) -> list[bytes]:
    """`region` cut at the dated From_ lines starting at `starts` (each line dropped, as a From_ line is)."""
    pieces, prev = [], 0
    for s in starts:
        pieces.append(_strip_separator(region[prev:s]))
        prev = region.index(b"\n", s) + 1
    pieces.append(_strip_separator(region[prev:]))
    return [_unescaped(p, None) for p in pieces]


def cl_expected(box: list[ClMessage]) -> list[bytes]:
    """The messages mailindex must find in a `cl_mboxes` file, by the rule mbox.py documents: a message ends
    before the next From_ line (less one blank line), unless its Content-Length, counted from its header's
    blank line, ends on a ``From `` line (after at most one line break) or at the end of the file; then that
    length wins, and a ``From `` line there starts the next message."""
    out: list[bytes] = []
    for k, m in enumerate(box):
        region = m.data + m.sep
        after_region = box[k + 1].envelope if k + 1 < len(box) else b""  # the next envelope, or the end
        body_at = len(m.data) - m.body_len
        dated = [body_at + d for d in m.dated]
        cl = int(m.cl) if m.cl is not None and m.cl.isdigit() and int(m.cl) <= 1 << 30 else None
        if cl is not None:
            end = body_at + cl
            ext = region + after_region
            tail = ext[end - 1:end + 7] if end - 1 < len(ext) else b""
            skip = 2 if tail[1:3] == b"\r\n" else 1 if tail[1:2] == b"\n" else 0
            if tail and not (tail[1 + skip:] and tail[1 + skip:6 + skip] != b"From "):
                out.append(_unescaped(region[:end], cl))
                nxt = end + skip
                if nxt < len(region):  # a "From " line inside this message starts the next one
                    line_end = region.index(b"\n", nxt) + 1
                    out += _split_dated(region[line_end:], [d - line_end for d in dated if d >= line_end])
                continue
        out += _split_dated(region, dated)
    return out
