"""One-message-per-file traps: Enron layout, MH, .eml exports, non-mail files, detection."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mailindex.sources.eml import EmlSource
from mailindex.sources.maildir import MaildirSource
from mailindex.sources.mbox import MboxSource

from .conftest import mbox_bytes, scan

MSG = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


def put(path: Path, data: bytes = MSG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def listing(source: EmlSource) -> dict[str, tuple[str, ...]]:
    out = {}
    for e in scan(source):
        assert source.read_bytes(e.locator) == (source.root / e.key).read_bytes()
        out[e.key] = e.folders
    return out


def test_mh_folder(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    for n in (1, 2, 10):
        put(root / "inbox" / str(n))
    put(root / "inbox" / ".mh_sequences", b"unseen: 2\n")
    put(root / "context", b"Current-Folder: inbox\n")  # MH's own state, header-like but not mail
    put(root / "lists" / "python" / "7")
    assert EmlSource.looks_like(root)
    assert listing(EmlSource(root)) == {
        "inbox/1": ("inbox",), "inbox/10": ("inbox",), "inbox/2": ("inbox",), "lists/python/7": ("lists/python",)}
    assert {c.name for c in EmlSource(root).containers()} == {".", "inbox", "lists", "lists/python"}


def test_lenient_about_what_is_mail(tmp_path: Path) -> None:
    root = tmp_path / "export"
    put(root / "a.eml", b"\r\n\r\nReceived: from x by y\r\nSubject: leading blank lines\r\n\r\nb\r\n")
    put(root / "b.eml", b"From someone@example.org Mon Jan  1 00:00:00 2001\nSubject: with a From_ line\n\nb\n")
    put(root / "c.eml", b"X-Weird-Header-Name_1:value\n\nb\n")
    put(root / "d.eml", b"Content-Type: text/plain\n\nbinary \x00 body is fine\n")
    put(root / "README.md", b"# notes about this export\n")
    put(root / "photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF")
    put(root / "outlook.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00")
    put(root / ".DS_Store", b"Bud1: x")
    put(root / "empty.eml", b"")
    put(root / "garbage.eml", b"\x00\x9f\xff not mail")
    put(root / "12", b"\x00 a numbered MH message, broken")
    # Named as mail: listed even when broken, so the failure is recorded, not lost.
    assert set(listing(EmlSource(root))) == {"a.eml", "b.eml", "c.eml", "d.eml", "empty.eml", "garbage.eml", "12"}


def test_entries(tmp_path: Path) -> None:
    root = tmp_path / "export"
    path = put(root / "Sent Items" / "x.eml")
    (e,) = scan(EmlSource(root))
    st = path.stat()
    assert e.key == "Sent Items/x.eml" and e.container == "Sent Items" and e.folders == ("Sent Items",)
    assert e.locator == {"path": "Sent Items/x.eml"}
    assert e.content_stamp == f"{st.st_size}:{st.st_mtime_ns}" and e.mtime == int(st.st_mtime)
    time.sleep(0.02)
    path.write_bytes(MSG + b"edited in place\r\n")  # the key stays, the content stamp moves
    (again,) = scan(EmlSource(root))
    assert again.key == e.key and again.content_stamp != e.content_stamp


def test_single_file(tmp_path: Path) -> None:
    path = put(tmp_path / "one.eml")
    assert EmlSource.looks_like(path) and not MboxSource.looks_like(path)
    source = EmlSource(path)
    (c,) = source.containers()
    (e,) = source.entries(c.name)
    assert e.folders == ("INBOX",) and source.read_bytes(e.locator) == MSG


def test_detection_order(tmp_path: Path) -> None:
    eml = tmp_path / "eml"
    put(eml / "1.eml")
    put(eml / "2.eml")
    put(eml / "old-export.mbox", mbox_bytes([MSG]))  # an mbox among more messages: still an eml tree
    mbox = tmp_path / "mbox"
    put(mbox / "Inbox", mbox_bytes([MSG]))
    put(mbox / "Work.sbd" / "Project", mbox_bytes([MSG]))
    put(mbox / "Inbox.msf", b"// <!-- <mdb:mork:z v=\"1.4\"/> -->")
    maildir = tmp_path / "maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    put(maildir / "cur" / "1.x:2,S")
    for path, kind in ((eml, "eml"), (mbox, "mbox"), (maildir, "maildir"), (eml / "1.eml", "eml"),
                       (mbox / "Inbox", "mbox")):
        claims = [cls.type for cls in (MaildirSource, MboxSource, EmlSource) if cls.looks_like(path)]
        assert claims == [kind], path
    assert not any(cls.looks_like(tmp_path / "nothing") for cls in (MaildirSource, MboxSource, EmlSource))
    os.mkdir(tmp_path / "empty")
    assert not any(cls.looks_like(tmp_path / "empty") for cls in (MaildirSource, MboxSource, EmlSource))


@pytest.mark.parametrize("sub,folder", [("maildir", "blair-l/sent_items"), ("maildir/blair-l", "sent_items")])
def test_enron_layout(corpora: Path, sub: str, folder: str) -> None:
    root = corpora / "enron-2015-partial" / sub
    assert EmlSource.looks_like(root)
    assert not MaildirSource.looks_like(root) and not MboxSource.looks_like(root)
    source = EmlSource(root)
    entries = list(scan(source))
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert sorted(e.key for e in entries) == on_disk
    if sub == "maildir":
        assert len(entries) == 3936
    folders = {e.folders[0] for e in entries}
    assert folder in folders and all(f == Path(e.key).parent.as_posix() for e in entries for f in e.folders)
    sample = next(e for e in entries if e.folders == (folder,))
    data = source.read_bytes(sample.locator)
    assert b"\r\n" in data and data == (root / sample.key).read_bytes()  # CRLF, byte for byte


def test_cpython_email_directory(corpora: Path) -> None:
    root = corpora / "cpython-test-email"
    assert EmlSource.looks_like(root)
    keys = {e.key for e in scan(EmlSource(root))}
    # msg_19.txt is a digest body with no header at all: skipped as not mail.
    # mailbox_01.mbox is one message file that starts with a From_ line: kept.
    assert "msg_19.txt" not in keys and "mailbox_01.mbox" in keys
    assert len(keys) == 49
