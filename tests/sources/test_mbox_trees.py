"""mbox trees that hold more than mbox files: one-message files listed whole, the rest counted as skipped."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from mailindex import MailIndex, UnsupportedOperation
from mailindex.errors import ConcurrentChange, SourceError
from mailindex.plugins import plugin_manager
from mailindex.sources.base import SKIP_METADATA, SKIP_NOT_MAIL
from mailindex.sources.eml import EmlSource
from mailindex.sources.mbox import MboxSource

from .conftest import mbox_bytes, scan


def msg(n: int, body: bytes = b"body\n", eol: bytes = b"\n") -> bytes:
    head = [b"Return-Path: <u%d@example.org>" % n, b"From: u%d@example.org" % n,
            b"Message-ID: <%d@trees.example>" % n, b"Subject: message %d" % n, b"", b""]
    return eol.join(head) + body.replace(b"\n", eol)


# A loose message as SpamAssassin's corpus has them: headers first, no From_ line. Its ">From " body line
# and CRLF line ends must come back as they are: no mboxrd unescaping of a file that is no mbox.
CRLF_LOOSE = msg(4, b"quoting:\n>From the archive, unescaped\nbye\n", eol=b"\r\n")
LOOSE = msg(3)
INBOX = [msg(1, b">From here, escaped in the mbox\n"), msg(2)]
PYTHON = [msg(5)]


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def age(root: Path) -> None:
    """Make every file and directory old, so the sync trusts the stamps (fresh ones it lists every time)."""
    past = time.time() - 3600
    for p in [root, *root.rglob("*")]:
        os.utime(p, (past, past), follow_symlinks=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two mbox files, two loose messages, a file that is no mail, desktop litter, a directory of no mail."""
    root = tmp_path / "archive"
    put(root / "Inbox", mbox_bytes(INBOX))
    put(root / "lists" / "python.mbox", mbox_bytes(PYTHON))
    put(root / "loose.eml", LOOSE)
    put(root / "lists" / "0042.txt", CRLF_LOOSE)  # not named as mail: its head says so
    put(root / "notes.txt", b"what this archive is\n")
    put(root / ".DS_Store", b"\x00\x00\x00\x01Bud1")
    put(root / "attachments" / "photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF")  # a directory with no container
    return root


def counted(source: MboxSource) -> Counter[str]:
    """What a walk of `source` left out, over all its containers, as the sync adds it up."""
    total: Counter[str] = Counter()
    for c in source.containers():
        total.update(source.skipped(c.name))
    return total


def test_loose_messages_are_containers_of_one_whole_message(tree: Path) -> None:
    assert MboxSource.looks_like(tree) and not EmlSource.looks_like(tree)
    source = MboxSource(tree)
    assert [c.name for c in source.containers()] == ["Inbox", "loose.eml", "lists/0042.txt", "lists/python.mbox"]
    entries = {e.container: e for e in scan(source)}
    assert [source.read_bytes(e.locator) for e in scan(source) if e.container == "Inbox"] == INBOX
    for rel, data in (("loose.eml", LOOSE), ("lists/0042.txt", CRLF_LOOSE)):
        e = entries[rel]
        assert e.key == rel and e.locator["whole"] and e.data is None and not e.flags
        assert source.read_bytes(e.locator) == data == (tree / rel).read_bytes()  # byte for byte
        st = (tree / rel).stat()
        assert e.content_stamp == f"{st.st_size}:{st.st_mtime_ns}"
    assert {c: e.folders for c, e in entries.items()} == {
        "Inbox": ("INBOX",), "loose.eml": ("INBOX",), "lists/0042.txt": ("lists",),
        "lists/python.mbox": ("lists/python",)}
    assert [f.name for f in source.folders()] == ["INBOX", "lists", "lists/python"]


def test_files_left_out_are_charged_to_the_first_container(tree: Path) -> None:
    source = MboxSource(tree)
    skipped = {c.name: dict(source.skipped(c.name)) for c in source.containers()}
    # notes.txt and .DS_Store, and attachments/ (no container of its own) goes to the source's first.
    assert skipped == {"Inbox": {SKIP_NOT_MAIL: 2, SKIP_METADATA: 1},
                       "loose.eml": {}, "lists/0042.txt": {}, "lists/python.mbox": {}}
    put(tree / "lists" / "Thumbs.db", b"\x00")
    assert source.skipped("lists/0042.txt") == {}  # counted by the next walk, not before
    assert counted(source) == {SKIP_NOT_MAIL: 2, SKIP_METADATA: 2}
    assert source.skipped("lists/0042.txt") == {SKIP_METADATA: 1}


def test_a_charged_stamp_changes_exactly_when_its_counts_do(tree: Path) -> None:
    source = MboxSource(tree)
    first = {c.name: c.stamp for c in source.containers()}
    assert first == {c.name: c.stamp for c in source.containers()}
    (tree / "attachments" / "photo.jpg").unlink()  # the Inbox file itself is untouched
    second = {c.name: c.stamp for c in source.containers()}
    assert {n for n in first if first[n] != second[n]} == {"Inbox"}
    assert source.skipped("Inbox") == {SKIP_NOT_MAIL: 1, SKIP_METADATA: 1}


def test_a_single_mbox_file_reports_nothing_skipped(tree: Path) -> None:
    source = MboxSource(tree / "Inbox")
    assert [len(list(source.entries(c.name))) for c in source.containers()] == [2]
    assert source.skipped("Inbox") == {}


def test_live_operations_on_a_loose_message(tree: Path) -> None:
    source = MboxSource(tree)
    entries = {e.container: e for e in scan(source)}
    with pytest.raises(UnsupportedOperation):
        source.set_flags(entries["loose.eml"].locator, {"seen": True})
    with pytest.raises(SourceError):  # its folder is a directory: no mbox file to add to
        source.append("lists", msg(9))
    assert (tree / "lists" / "0042.txt").read_bytes() == CRLF_LOOSE
    stale = entries["lists/0042.txt"].locator
    put(tree / "lists" / "0042.txt", CRLF_LOOSE + b"appended\r\n")
    with pytest.raises(ConcurrentChange):  # another message now, perhaps: not deleted
        source.delete(stale)
    source.delete(entries["loose.eml"].locator)
    assert not (tree / "loose.eml").exists()
    assert [c.name for c in source.containers()] == ["Inbox", "lists/0042.txt", "lists/python.mbox"]


def test_index_counts_every_file(tree: Path, tmp_path: Path) -> None:
    age(tree)
    skipped = {SKIP_NOT_MAIL: 2, SKIP_METADATA: 1}
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        report = mx.index(tree, "t", workers=1)
        assert (report.added, report.failed, report.skipped) == (5, 0, skipped)
        again = mx.sync("t", workers=1)  # nothing changed: counts come from the stored stamps
        assert (again.added, again.unchanged, again.skipped) == (0, 0, skipped)
        (tree / "notes.txt").unlink()  # no container file changes: the charged one's stamp must
        after = mx.sync("t", workers=1)
        assert (after.added, after.removed, after.skipped) == (0, 0, {SKIP_NOT_MAIL: 1, SKIP_METADATA: 1})
        assert mx.messages.count() == 5
