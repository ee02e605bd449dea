"""mbox traps: escaping, Content-Length, compression, concurrent change, truncation, Gmail, real files."""

from __future__ import annotations

import bz2
import calendar
import gzip
import io
import lzma
import mailbox as stdlib_mailbox
import os
import shutil
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailindex.errors import ConcurrentChange, SourceError, SourceFormatError, SourceNotFound
from mailindex.sources import mbox as mbox_module
from mailindex.sources.mbox import (MboxSource, folder_of, gmail_folders, is_envelope, parse_envelope_date,
                                    split_labels, split_mbox, unescape)
from tests.budget import examples

from .conftest import ENVELOPE, mbox_bytes, mboxo_escape, mboxrd_escape, scan


def msg(n: int, *body: bytes, headers: bytes = b"", eol: bytes = b"\n") -> bytes:
    lines = [b"From: a@example.org", b"Subject: m%d" % n, *filter(None, headers.split(b"\n")), b"",
             *(body or [b"body %d" % n])]
    return eol.join(lines) + eol


def entries_of(path: Path) -> list:
    return list(scan(MboxSource(path)))


def datas(path: Path) -> list[bytes]:
    source = MboxSource(path)
    out = []
    for e in scan(source):
        assert source.read_bytes(e.locator) == e.data
        out.append(e.data)
    return out


def date(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


# --- escaping ---------------------------------------------------------------

LINES = st.one_of(
    st.sampled_from([b"From x", b">From x", b">>From x", b">>>From y", b"From ", b"From", b" From x", b"",
                     b"From a@b Mon Jan  1 00:00:00 2001", b"From -", b"From: x", b"text"]),
    st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
)
MESSAGES = st.lists(st.tuples(st.lists(LINES, max_size=8), st.sampled_from([b"\n", b"\r\n"])), min_size=1,
                    max_size=5).map(lambda specs: [msg(i, *body, eol=eol) for i, (body, eol) in enumerate(specs)])


@settings(max_examples=examples(1.5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=MESSAGES, chunk=st.sampled_from([3, 7, 64, 1 << 20]))
def test_mboxrd_round_trip(messages: list[bytes], chunk: int) -> None:
    data = mbox_bytes(messages, mboxrd_escape)
    with mock.patch.object(mbox_module, "CHUNK", chunk):  # message and line boundaries across chunks
        pieces = list(split_mbox(io.BytesIO(data)))
    got = [unescape(p.raw) for p in pieces]
    assert got == messages
    for p in pieces:
        assert data[p.offset:p.offset + len(p.raw)] == p.raw


@settings(max_examples=examples(1), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=MESSAGES)
def test_mboxo_round_trip(messages: list[bytes]) -> None:
    # mboxo cannot keep an original ">From " line apart from an escaped "From ": leave those out.
    messages = [m for m in messages if not mbox_module._ESCAPED.search(m)]
    data = mbox_bytes(messages, mboxo_escape)
    assert [unescape(p.raw) for p in split_mbox(io.BytesIO(data))] == messages


def test_unescaped_from_lines_in_bodies_stay_put(tmp_path: Path) -> None:
    # mboxo writers often leave these unescaped: none looks like an envelope line.
    body = [b"", b"From time to time", b"", b"From Russia with love", b"Year: 1963", b"",
            b"From bob@example.org", b"text after an address alone with no header after it"]
    path = tmp_path / "box"
    path.write_bytes(mbox_bytes([msg(1, *body), msg(2)], escape=lambda m: m))
    assert datas(path) == [msg(1, *body), msg(2)]


def test_envelope_lines() -> None:
    assert is_envelope(b"From a@b Sat Jan  3 01:05:34 1996", prev_blank=False, next_line=b"X: y")
    assert is_envelope(b"From 123@xxx Tue Aug 05 08:00:23 +0000 2008", prev_blank=False, next_line=None)
    assert is_envelope(b"From MAILER-DAEMON Sun Aug  7 11:40:37 2022 extra info", False, b"")
    assert is_envelope(b"From - ", prev_blank=False, next_line=b"From: x")  # Thunderbird
    assert not is_envelope(b"From - ", prev_blank=True, next_line=b"not a header")
    assert is_envelope(b"From 1844347792267117879@xxx", prev_blank=True, next_line=b"MIME-Version: 1.0")
    assert not is_envelope(b"From bob@example.org", prev_blank=False, next_line=b"Subject: x")
    assert not is_envelope(b"From time to time", prev_blank=True, next_line=b"X: y")
    assert not is_envelope(b"From Russia with love", prev_blank=True, next_line=b"Year: 1963")


def test_envelope_dates() -> None:
    assert parse_envelope_date("Tue Aug 05 08:00:23 +0000 2008") == date(2008, 8, 5, 8, 0, 23)
    assert parse_envelope_date("Mon Mar 22 09:41:09 -0800 1993") == date(1993, 3, 22, 17, 41, 9)
    assert parse_envelope_date("Sun Aug  7 11:40:37 2022 extra info") == date(2022, 8, 7, 11, 40, 37)
    assert parse_envelope_date("Thu Jan  1 00:00:00 2004 +0100") == date(2003, 12, 31, 23)
    assert parse_envelope_date("Sat Jan  3 01:05:34 EST 1996") == date(1996, 1, 3, 6, 5, 34)
    assert parse_envelope_date("Sat, 01 Jan 2000 12:00:00 +0000") == date(2000, 1, 1, 12)
    assert parse_envelope_date("Jan  3 01:05 1996") == date(1996, 1, 3, 1, 5)
    for bad in ("", "with love", "to time", "Feb 31 00:00:00 2001", "Mon Jan  1 25:00:00 2001"):
        assert parse_envelope_date(bad) is None


# --- Content-Length ---------------------------------------------------------

def test_content_length_keeps_raw_from_lines(tmp_path: Path) -> None:
    body = b"First line.\nFrom body@example.org Thu Jul 30 00:02:00 2026\nFrom - \nX-Not: header\n>From kept\n"
    m1 = b"From: a@example.org\nContent-Length: %d\n\n" % len(body) + body
    path = tmp_path / "cl.mbox"
    path.write_bytes(ENVELOPE + m1 + b"\n" + ENVELOPE + msg(2) + b"\n")
    got = entries_of(path)
    assert [e.data for e in got] == [m1, msg(2)]
    assert got[0].locator["escaped"] is False  # a writer that leaves "From " alone did not add ">" either
    # The same at the end of the file, with no separator line.
    path.write_bytes(ENVELOPE + m1)
    assert datas(path) == [m1]


def test_content_length_escaped_by_its_writer(tmp_path: Path) -> None:
    # Netscape wrote Content-Length and still escaped "From " lines (mimekit content-length.mbox).
    body = b"forwarded:\n>From - Fri Dec 13 15:01:21 1996\nReturn-Path: <x@y>\n"
    m1 = b"From: a@example.org\nContent-Length: %d\n\n" % len(body) + body
    path = tmp_path / "cl.mbox"
    path.write_bytes(b"From - Fri Mar  7 02:51:22 1997\n" + m1 + b"\n" + ENVELOPE + msg(2) + b"\n")
    (e1, e2) = entries_of(path)
    assert e1.locator["escaped"] is True
    assert e1.data == m1.replace(b">From - Fri", b"From - Fri")
    assert MboxSource(path).read_bytes(e1.locator) == e1.data
    assert e2.data == msg(2)


def test_wrong_content_length_falls_back_to_from_lines(tmp_path: Path) -> None:
    m1 = msg(1, b"body", headers=b"Content-Length: 3")  # too short: lands inside the body
    m2 = msg(2, headers=b"Content-Length: 99999")  # past the end of the file
    path = tmp_path / "cl.mbox"
    path.write_bytes(mbox_bytes([m1, m2]))
    assert datas(path) == [m1, m2]


# --- files ------------------------------------------------------------------

@pytest.mark.parametrize("suffix,compress", [(".gz", gzip.compress), (".bz2", bz2.compress),
                                             (".xz", lzma.compress)])
def test_compressed(tmp_path: Path, suffix: str, compress) -> None:
    messages = [msg(1, b">From a", b"From b"), msg(2), msg(3, b"x" * 100_000)]
    plain = mbox_bytes(messages)
    (tmp_path / "lists").mkdir()
    path = tmp_path / "lists" / f"python.mbox{suffix}"
    path.write_bytes(compress(plain))
    (tmp_path / "Inbox").write_bytes(mbox_bytes([msg(9)]))
    assert MboxSource.looks_like(path) and MboxSource.looks_like(tmp_path)
    source = MboxSource(tmp_path)
    got = [e for e in scan(source) if e.container == f"lists/python.mbox{suffix}"]
    assert [e.data for e in got] == messages
    assert {e.folders for e in got} == {("lists/python",)}
    for e in got:
        assert plain[e.locator["offset"]:e.locator["offset"] + e.locator["length"]] == mboxrd_escape(e.data)
        assert source.read_bytes(e.locator) == e.data
    for e in reversed(got):  # backwards: the decompressing stream is reopened
        assert source.read_bytes(e.locator) == e.data
    assert [e.folders for e in scan(source) if e.container == "Inbox"] == [("INBOX",)]


def test_folder_names() -> None:
    assert folder_of("lists/python.mbox") == "lists/python"
    assert folder_of("Inbox") == "INBOX"
    assert folder_of("INBOX.mbox.gz") == "INBOX"
    assert folder_of("archive.mbox.xz") == "archive"
    assert folder_of("Local Folders/Work.sbd/Project") == "Local Folders/Work/Project"
    assert folder_of("small.gmail.mbox") == "small.gmail"
    assert folder_of("notes.txt") == "notes.txt"


def test_tree_skips_non_mbox_files(tmp_path: Path) -> None:
    (tmp_path / "Inbox").write_bytes(mbox_bytes([msg(1)]))
    (tmp_path / "Inbox.msf").write_bytes(b"// <!-- <mdb:mork:z v=\"1.4\"/> -->")
    (tmp_path / "Empty").write_bytes(b"")  # a Thunderbird folder with no mail yet
    (tmp_path / "notes.txt").write_bytes(b"just notes\n")
    (tmp_path / ".hidden").write_bytes(mbox_bytes([msg(2)]))
    assert {c.name for c in MboxSource(tmp_path).containers()} == {"Inbox", "Empty"}
    assert [e.folders for e in scan(MboxSource(tmp_path))] == [("INBOX",)]


def test_concurrent_change(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(mbox_bytes([msg(1), msg(2), msg(3)]))
    source = MboxSource(path)
    it = source.entries("box.mbox")
    next(it)
    with open(path, "ab") as f:  # another program delivers while we scan
        f.write(mbox_bytes([msg(4)]))
    with pytest.raises(ConcurrentChange):
        list(it)
    # A listing that does not overlap a change is fine.
    assert len(list(source.entries("box.mbox"))) == 4


def test_truncated_last_message_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    long = msg(2, b"a long body " * 20)
    path.write_bytes(mbox_bytes([msg(1), long])[:-100])
    got = datas(path)
    assert got[0] == msg(1) and len(got) == 2
    assert long.startswith(got[1]) and len(got[1]) == len(long) - 99


def test_empty_and_not_mbox(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    assert [c.name for c in MboxSource(empty).containers()] == ["empty.mbox"]
    assert entries_of(empty) == []
    assert not MboxSource.looks_like(empty)  # nothing says it is mbox, but named it is accepted
    blank = tmp_path / "blank"
    blank.write_bytes(b"\n\n")
    assert entries_of(blank) == []
    other = tmp_path / "other.mbox"
    other.write_bytes(b"Subject: not an mbox\n\nbody\n")
    with pytest.raises(SourceFormatError):
        entries_of(other)


def test_bom_and_leading_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "bom.mbox"
    path.write_bytes(b"\xef\xbb\xbf" + mbox_bytes([msg(1), msg(2)]))
    assert MboxSource.looks_like(path)
    assert datas(path) == [msg(1), msg(2)]
    path.write_bytes(b"\n\r\n" + mbox_bytes([msg(1)]))
    assert datas(path) == [msg(1)]


def test_read_bytes_after_the_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(mbox_bytes([msg(1), msg(2)]))
    source = MboxSource(path)
    e1, e2 = entries_of(path)
    path.write_bytes(mbox_bytes([msg(1)]))  # message 2 expunged by a mail program
    assert source.read_bytes(e1.locator) == msg(1)
    with pytest.raises(SourceError):
        source.read_bytes(e2.locator)
    path.write_bytes(b"From x Thu Jan  1 00:00:00 2004\nSubject: other\n\n" + b"y" * 200)
    with pytest.raises(SourceError):  # rewritten: the offset is no longer a message start
        source.read_bytes(e1.locator)
    os.unlink(path)
    with pytest.raises(SourceNotFound):
        source.read_bytes(e1.locator)


def test_keys_flags_and_dates(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    seen = msg(1, headers=b"Status: RO\nX-Status: AF")
    path.write_bytes(mbox_bytes([seen, msg(2, headers=b"Status: O\nX-Status: DT"), seen, seen]))
    e = entries_of(path)
    assert [x.flags for x in e] == [{"seen", "answered", "flagged"}, {"deleted", "draft"}, *[
        {"seen", "answered", "flagged"}] * 2]
    assert e[0].key.endswith("#1") and e[2].key == e[0].key[:-2] + "#2" and e[3].key.endswith("#3")
    assert len({x.key for x in e}) == 4
    assert all(x.envelope_date == date(2004, 1, 1) for x in e)
    assert e[0].locator == {"path": "box.mbox", "offset": len(ENVELOPE), "length": len(seen), "escaped": False,
                            "sha256": e[0].key[:-2]}
    assert MboxSource(path).read_flags(e[1].locator) == {"deleted", "draft"}


# --- Gmail Takeout ----------------------------------------------------------

def test_gmail_labels() -> None:
    assert split_labels(b'Inbox,Important,"Work, Inc",=?UTF-8?Q?=C3=A9t=C3=A9?=') == [
        "Inbox", "Important", "Work, Inc", "été"]
    assert gmail_folders(["Inbox", "Sent", "Opened", "Work/Project"]) == (
        ("INBOX", "[Gmail]/Sent Mail", "Work/Project"), {"seen"})
    assert gmail_folders(["Unread"]) == (("[Gmail]/All Mail",), set())
    assert gmail_folders(["Starred", "Archived", "Opened"]) == (
        ("[Gmail]/Starred", "[Gmail]/All Mail"), {"seen", "flagged"})


def test_gmail_takeout_file(tmp_path: Path) -> None:
    m1 = msg(1, headers=b"X-GM-THRID: 1\nX-Gmail-Labels: Inbox,Opened,Category Updates")
    m2 = msg(2, headers=b"X-Gmail-Labels: Sent,\r\n Work/Project")
    m3 = msg(3, headers=b"X-GM-THRID: 3")
    path = tmp_path / "All mail Including Spam and Trash.mbox"
    envelope = b"From 1277085061787347926@xxx Tue Aug 05 08:00:23 +0000 2008\n"
    path.write_bytes(mbox_bytes([m1, m2, m3], envelope=envelope))
    e = entries_of(path)
    assert [x.folders for x in e] == [("INBOX", "Category Updates"), ("[Gmail]/Sent Mail", "Work/Project"),
                                      ("[Gmail]/All Mail",)]
    assert [x.flags for x in e] == [{"seen"}, set(), set()]


def test_gmail_takeout_sample(corpora: Path) -> None:
    path = corpora / "gmail-takeout-sample" / "small.gmail.mbox"
    e = entries_of(path)
    assert len(e) == 6
    # Message 2 has no blank line before the next From_ line: it still ends there.
    assert e[1].data.endswith(b"http://lists.gnu.org/mailman/listinfo/gnumed-devel\r\n")
    assert e[2].data.startswith(b"X-GM-THRID: 1529553825574740118\r\n")
    assert [x.folders for x in e] == [("[Gmail]/All Mail",)] * 2 + [("Chat",)] * 2 + [("[Gmail]/All Mail",)] * 2
    assert all("seen" not in x.flags for x in e[:2])  # "Unread"
    assert e[0].envelope_date == date(2008, 8, 5, 8, 0, 23)
    assert e[4].envelope_date == date(1993, 3, 22, 17, 41, 9)


# --- real mbox files --------------------------------------------------------

@pytest.mark.parametrize("name,ours,stdlib", [
    # An unquoted "From time to time" in a body: the stdlib splits there, we do not.
    ("cpython-test-email/mailbox_01.mbox", 1, 2),
    # A UTF-8 BOM before the first From_ line and "From Russia with love" in bodies: the stdlib
    # misses the first message and splits at "From Russia" lines.
    ("mimekit/mbox/unmunged.mbox", 2, 3),
    # Thunderbird "From - " lines with no blank line before them.
    ("mimekit/mbox/simple.mbox", 3, 3),
    # Gmail "From <id>@xxx" lines with no date.
    ("mimekit/mbox/issue1189.mbox", 4, 4),
    # Netscape: Content-Length headers (some wrong, which fall back to From_ lines) and escaped bodies.
    ("mimekit/mbox/content-length.mbox", 29, 29),
    ("gmail-takeout-sample/small.gmail.mbox", 6, 6),
])
def test_real_mbox_counts(corpora: Path, tmp_path: Path, name: str, ours: int, stdlib: int) -> None:
    path = corpora / name
    assert MboxSource.looks_like(path)
    assert len(datas(path)) == ours
    assert len(stdlib_box(path, tmp_path)) == stdlib


def stdlib_box(path: Path, tmp_path: Path) -> stdlib_mailbox.mbox:
    """The stdlib's view of a copy (it opens mbox files for writing when it can)."""
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    return stdlib_mailbox.mbox(str(copy), create=False)


def test_real_mbox_bodies(corpora: Path, tmp_path: Path) -> None:
    (only,) = datas(corpora / "cpython-test-email" / "mailbox_01.mbox")
    assert only.endswith(b"\nFrom time to time\n")
    first, second = datas(corpora / "mimekit" / "mbox" / "unmunged.mbox")
    assert b"\nFrom Russia with love\n" in first and b"\nFrom Russia with love\nYear: 1963\n" in second
    # Where the stdlib's split agrees (no body From_ lines), the bytes agree too, but for the
    # separator line: the stdlib drops it only when it is "\n" and not after the last message;
    # we drop one blank line ("\n" or "\r\n") before every From_ line and at the end.
    for name in ("mimekit/mbox/simple.mbox", "mimekit/mbox/issue1189.mbox", "gmail-takeout-sample/small.gmail.mbox"):
        box = stdlib_box(corpora / name, tmp_path)
        theirs = [box.get_bytes(key) for key in box.keys()]
        ours = datas(corpora / name)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert b in (a, a + b"\n", a + b"\r\n")


def test_corpora_directory_is_an_mbox_tree(corpora: Path) -> None:
    source = MboxSource(corpora / "mimekit" / "mbox")
    assert MboxSource.looks_like(source.location)
    assert {c.name for c in source.containers()} == {
        "content-length.mbox", "issue1189.mbox", "simple.mbox", "unmunged.mbox"}
    assert sum(1 for _ in scan(source)) == 29 + 4 + 3 + 2
