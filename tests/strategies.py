"""Hypothesis strategies: small mailboxes full of traps, and Context.IO filter combinations."""

from __future__ import annotations

import base64
import email.utils
from dataclasses import dataclass, field
from email.message import EmailMessage

from hypothesis import strategies as st

OWNER = "me@example.com"
DOMAINS = ["example.com", "mail.example.com", "example.org", "sub.mail.example.com", "other.net"]
LOCALS = ["alice", "bob", "carol", "d.ave", "me", "e+tag"]
ADDRESSES = [f"{l}@{d}" for l in LOCALS for d in DOMAINS]
FOLDERS = ["INBOX", "Sent", "Drafts", "Trash", "Work/Project", "Archive", "Sent Items", "Junk", "Deleted Items",
           "Spam", "Sent Messages", "Junk E-mail", "Lists/Sent", "Archives", "All Mail", "Important", "Starred",
           "Draft", "Sentinel"]
SPECIAL_USE_NAMES = ["\\Inbox", "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged",
                     "\\Starred", "\\Important"]
# Header fields mail stores rewrite (README "Ids"); a copy may carry some: it is still the same message.
# Content-Length, Lines, X-IMAP and X-Gmail-Labels are left out: an mbox reader acts on them.
STORE_FIELDS = ["Status: RO", "X-Status: A", "X-Keywords: NonJunk,\n $label1", "X-UID: 17", "x-mozilla-status: 0001",
                "X-Mozilla-Status2: 00000000", "X-Mozilla-Keys:", "X-Evolution: 00000001-0010"]
FILE_NAMES = ["report.pdf", "Report-2023.PDF", "photo.JPG", "photo.jpeg", "a[1].txt", "notes.txt", "README",
              "été.pdf", "data.tar.gz", "star*.pdf", "q?.doc", "x.jpgx"]
SIZES = [0, 1, 999, 1000, 1001, 5000, 40000]
DATES = [978307199, 978307200, 978307201, 1_600_000_000, 1_600_000_001, 1_900_000_000]
SUBJECT_CHARS = list("abcABC xyz.*+?()[]|^$\\/-:éÉüß日本") + ["Re: ", "[PATCH] "]


@dataclass
class Spec:
    """One generated message and everything the reference needs to know about it."""

    n: int
    subject: str
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    date: int
    folders: list[str]
    flagged: bool
    files: list[tuple[str, int]] = field(default_factory=list)
    body: str | None = None  # the text part; None: "body of message N"
    sender_name: str | None = None
    attachment: str | None = None  # the text of an attached notes.txt
    # How each copy (one per folder) is written: CRLF line endings, store fields at the header's top or end.
    dress: list[tuple[bool, tuple[str, ...], bool]] = field(default_factory=list)

    def to_bytes(self, copy: int = 0) -> bytes:
        """The bytes of the copy in `self.folders[copy]`: all copies are one message, differently dressed."""
        data = self._plain()
        if copy >= len(self.dress):
            return data
        crlf, store_fields, at_top = self.dress[copy]
        if store_fields:
            lines = "".join(f + "\n" for f in store_fields).encode("ascii")
            end = data.index(b"\n\n") + 1
            data = lines + data if at_top else data[:end] + lines + data[end:]
        return data.replace(b"\n", b"\r\n") if crlf else data

    def _plain(self) -> bytes:
        m = EmailMessage()
        m["From"] = email.utils.formataddr((self.sender_name, self.sender)) if self.sender_name else self.sender
        m["To"] = ", ".join(self.to)
        if self.cc:
            m["Cc"] = ", ".join(self.cc)
        if self.bcc:
            m["Bcc"] = ", ".join(self.bcc)
        m["Subject"] = self.subject
        m["Date"] = email.utils.formatdate(self.date)
        m["Message-ID"] = f"<m{self.n}@test.example>"
        m.set_content(f"body of message {self.n}\n" if self.body is None else self.body)
        if self.attachment is not None:
            m.add_attachment(self.attachment, subtype="plain", filename="notes.txt")
        for i, (name, size) in enumerate(self.files):
            m.add_attachment(bytes((i + j) % 251 for j in range(size)), maintype="application",
                             subtype="octet-stream", filename=name)
        if m.is_multipart():
            m.set_boundary(f"=_boundary_{self.n}")  # the default is random: same spec, same bytes
        return bytes(m)


def _subject(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


def _literal(text: str) -> str:
    """A substring question never reads as /regex/ (SUBJECT_REGEXES ask those): '//' would be an empty one."""
    return text[:-1] if len(text) >= 2 and text[0] == text[-1] == "/" else text


@st.composite
def specs(draw: st.DrawFn, n: int) -> Spec:
    addrs = st.sampled_from(ADDRESSES)
    return Spec(
        n=n,
        subject=_subject(draw(st.lists(st.sampled_from(SUBJECT_CHARS), max_size=12))),
        sender=draw(st.one_of(addrs, st.just(OWNER))),
        to=draw(st.lists(st.one_of(addrs, st.just(OWNER)), min_size=1, max_size=3, unique=True)),
        cc=draw(st.lists(addrs, max_size=2, unique=True)),
        bcc=draw(st.lists(addrs, max_size=1)),
        date=draw(st.sampled_from(DATES)),
        folders=draw(st.lists(st.sampled_from(FOLDERS), min_size=1, max_size=2, unique=True)),
        flagged=draw(st.booleans()),
        files=draw(st.lists(st.tuples(st.sampled_from(FILE_NAMES), st.sampled_from(SIZES)), max_size=3)),
        dress=draw(st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(STORE_FIELDS), max_size=3).map(tuple),
                                      st.booleans()), max_size=2)),
    )


@st.composite
def mailboxes(draw: st.DrawFn) -> list[Spec]:
    count = draw(st.integers(1, 14))
    return [draw(specs(i)) for i in range(count)]


GLOBS = ["*.pdf", "*.JPG", "re?ort*", "[a-c]*", "[!r]*.pdf", "*", "README", "star[*].pdf", "q[?].doc", "*.tar.*"]
FILE_REGEXES = ["/\\.jpe?g$/", "/^photo/", "/\\d{4}/", "/(?i)PDF$/", "/t/"]
SUBJECT_REGEXES = ["/^Re:/", "/a$/", "/[aé]+/", "/(?i)ab/", "/\\./", "/x|y/", "/^$/", "/\\(\\)/", "/日本/",
                   "/^\\[PATCH\\]/", "/(?i)patch/", "/\\[PATCH\\] .*[ab]/", "/Re: (ab|xy)/", "/\\w\\s\\w/",
                   "/(?i)^re: /", "/^Re: \\[PATCH/", "/\\d|日本/", "/(?i)ÉTÉ|ss/", "/^Re: a$/"]


@st.composite
def queries(draw: st.DrawFn, box: list[Spec]) -> dict[str, object]:
    """A random combination of filters whose values often hit the mailbox."""
    q: dict[str, object] = {}
    maybe = lambda: draw(st.integers(0, 9)) < 3  # noqa: E731

    def addr_list(pool: list[str]) -> str:
        return ",".join(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2)))

    if maybe():
        q["email"] = addr_list(ADDRESSES + DOMAINS + ["@" + d for d in DOMAINS] + ["com", "net"])
    for role in ("to", "from", "cc", "bcc"):
        if maybe():
            q[role] = addr_list(ADDRESSES + [OWNER])
    if maybe():
        subjects = [s.subject for s in box if s.subject]
        choice = draw(st.integers(0, 2))
        if choice == 0 and subjects:
            s = draw(st.sampled_from(subjects))
            i = draw(st.integers(0, len(s) - 1))
            j = draw(st.integers(i + 1, len(s)))
            needle = s[i:j].strip()
            if needle:
                q["subject"] = _literal(draw(st.sampled_from([needle, needle.upper(), needle.lower()])))
        elif choice == 1:
            q["subject"] = draw(st.sampled_from(SUBJECT_REGEXES))
        else:
            q["subject"] = _literal(_subject(draw(st.lists(st.sampled_from(SUBJECT_CHARS), min_size=1, max_size=3)))
                                    or "a")
    if maybe():
        present = sorted({f for s in box for f in s.folders})
        q["folder"] = draw(st.one_of(st.sampled_from(present), st.sampled_from(FOLDERS + ["inbox"]),
                                     st.sampled_from(SPECIAL_USE_NAMES)))
    if maybe():
        q["source"] = draw(st.sampled_from(["box", "other"]))
    if maybe():
        q["file_name"] = draw(st.sampled_from(GLOBS + FILE_REGEXES))
    if maybe():
        q["file_size_min"] = draw(st.sampled_from(SIZES))
    if maybe():
        q["file_size_max"] = draw(st.sampled_from(SIZES))
    for name in ("date_before", "date_after"):
        if maybe():
            q[name] = draw(st.sampled_from(DATES)) + draw(st.sampled_from([-1, 0, 1]))
    for name in ("indexed_before", "indexed_after"):
        if maybe():
            q[name] = draw(st.sampled_from(["now-1", "now", "now+1"]))
    if maybe():
        q["sort_order"] = draw(st.sampled_from(["asc", "desc"]))
    q["limit"] = draw(st.integers(1, 100))
    q["offset"] = draw(st.integers(0, len(box) + 1))
    return q


# ---------------------------------------------------------------- hostile headers (tests/test_parse_hostile.py)

# Charsets to split encoded-words in: multi-byte, stateful (iso-2022-jp, utf-7) and with a BOM (utf-16).
SPLIT_CHARSETS = ["utf-8", "UTF-8", "utf-16", "utf-16-be", "utf-7", "gb18030", "euc-jp", "iso-2022-jp", "shift_jis",
                  "euc-kr", "koi8-r", "windows-1252"]
_TEXT_POOL = list("aZ09 -.,:!?=_\"<>@();") + list("éüßЖжя€Š日本語中文한😀\x00")
BOGUS_CHARSETS = ["y", "x-unknown", "utf-7", "utf-16", "utf-32", "unicode_escape", "raw-unicode-escape", "idna",
                  "utf-8*en", "iso-8859-1", "us-ascii", "", "\"\"", "hex", "rot13", "zlib", "undefined"]
HEADER_NAMES = ["From", "To", "Cc", "Subject", "Reply-To", "Sender", "Content-ID", "List-Help"]


def _q_word(chunk: bytes) -> str:
    return "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else "_" if b == 32 else f"={b:02X}"
                   for b in chunk)


def encoded_word(charset: str, chunk: bytes, b_encoding: bool) -> str:
    """One RFC 2047 encoded-word of `chunk`, B or Q encoded."""
    body = base64.b64encode(chunk).decode("ascii") if b_encoding else _q_word(chunk)
    return f"=?{charset}?{'b' if b_encoding else 'q'}?{body}?="


@st.composite
def split_words(draw: st.DrawFn) -> tuple[str, str]:
    """(text, encoded-words): text of multi-byte characters encoded in one charset and cut into encoded-words
    at arbitrary bytes, so characters are split across words; words are separated by blanks or folds."""
    charset = draw(st.sampled_from(SPLIT_CHARSETS))
    alphabet = [c for c in _TEXT_POOL if _encodable(c, charset)]
    text = draw(st.text(st.sampled_from(alphabet), min_size=1, max_size=12))
    raw = text.encode(charset)
    cuts = sorted(draw(st.sets(st.integers(1, len(raw)), max_size=5)) - {len(raw)})
    chunks = [raw[i:j] for i, j in zip([0, *cuts], [*cuts, len(raw)])]
    words = [encoded_word(charset, c, draw(st.booleans())) for c in chunks]
    seps = draw(st.lists(st.sampled_from([" ", "\r\n ", "\n\t", ""]), min_size=len(words) - 1,
                         max_size=len(words) - 1))
    return text, words[0] + "".join(s + w for s, w in zip(seps, words[1:]))


def _encodable(char: str, charset: str) -> bool:
    try:
        char.encode(charset)
        return True
    except UnicodeEncodeError:
        return False


@st.composite
def hostile_value(draw: st.DrawFn, fold: bool = False) -> bytes:
    """A header value made of raw 8-bit bytes, NULs, plain words and encoded-words in bogus charsets
    (with arbitrary payload bytes); CR/LF only as folds when `fold`."""
    piece = st.one_of(
        st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
        st.sampled_from([b"\x00", b"caf\xe9", b"\xe6\x97\xa5", b"\xe6\x97", b"\xff\xfe", b"\x80\x9f", b"a@b.c",
                         b"<x@y>", b",", b"\"", b" ", b"=?"]),
        st.builds(lambda cs, data, b: encoded_word(cs, data, b).encode("ascii"),
                  st.sampled_from(BOGUS_CHARSETS + SPLIT_CHARSETS), st.binary(max_size=9), st.booleans()),
    )
    sep = st.sampled_from([b"", b" ", b"\r\n "] if fold else [b"", b" "])
    parts = draw(st.lists(st.tuples(piece, sep), max_size=6))
    return b"".join(p + s for p, s in parts).strip(b"\r\n")


@st.composite
def hostile_file_param(draw: st.DrawFn) -> bytes:
    """A Content-Type / Content-Disposition parameter list naming a file hostilely: raw 8-bit, RFC 2047 or
    RFC 2231 (one value or continuations) in a bogus charset."""
    raw = draw(hostile_value()).replace(b'"', b"").replace(b";", b"")
    pct = "".join(f"%{b:02X}" for b in draw(st.binary(max_size=10))).encode("ascii")
    cs = draw(st.sampled_from(BOGUS_CHARSETS + SPLIT_CHARSETS)).replace('"', "").encode("latin-1")
    return draw(st.sampled_from([
        b'; filename="' + raw + b'"',
        b"; name=" + raw.replace(b" ", b""),
        b"; filename*=" + cs + b"''" + pct,
        b"; filename*0*=" + cs + b"''" + pct + b'; filename*1="' + raw + b'"',
    ]))
