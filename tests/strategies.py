"""Hypothesis strategies: small mailboxes full of traps, and Context.IO filter combinations."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from email.message import EmailMessage

from hypothesis import strategies as st

OWNER = "me@example.com"
DOMAINS = ["example.com", "mail.example.com", "example.org", "sub.mail.example.com", "other.net"]
LOCALS = ["alice", "bob", "carol", "d.ave", "me", "e+tag"]
ADDRESSES = [f"{l}@{d}" for l in LOCALS for d in DOMAINS]
FOLDERS = ["INBOX", "Sent", "Drafts", "Trash", "Work/Project", "Archive", "Sent Items", "Junk", "Deleted Items"]
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

    def to_bytes(self) -> bytes:
        m = EmailMessage()
        m["From"] = self.sender
        m["To"] = ", ".join(self.to)
        if self.cc:
            m["Cc"] = ", ".join(self.cc)
        if self.bcc:
            m["Bcc"] = ", ".join(self.bcc)
        m["Subject"] = self.subject
        m["Date"] = email.utils.formatdate(self.date)
        m["Message-ID"] = f"<m{self.n}@test.example>"
        m.set_content(f"body of message {self.n}\n")
        for i, (name, size) in enumerate(self.files):
            m.add_attachment(bytes((i + j) % 251 for j in range(size)), maintype="application",
                             subtype="octet-stream", filename=name)
        if m.is_multipart():
            m.set_boundary(f"=_boundary_{self.n}")  # the default is random: same spec, same bytes
        return bytes(m)


def _subject(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


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
                q["subject"] = draw(st.sampled_from([needle, needle.upper(), needle.lower()]))
        elif choice == 1:
            q["subject"] = draw(st.sampled_from(SUBJECT_REGEXES))
        else:
            q["subject"] = _subject(draw(st.lists(st.sampled_from(SUBJECT_CHARS), min_size=1, max_size=3))) or "a"
    if maybe():
        q["folder"] = draw(st.sampled_from(FOLDERS + ["inbox", "\\Sent", "\\Drafts", "\\Trash", "\\Junk",
                                                      "\\Archive", "\\Flagged", "\\Starred", "\\Inbox"]))
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
