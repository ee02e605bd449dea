"""`Backend.skipped`: what a listing left out, counted by reason, for .eml trees and Maildirs."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

from mailindex.sources import _fs
from mailindex.sources.base import (SKIP_EMPTY, SKIP_METADATA, SKIP_NOT_A_FILE, SKIP_NOT_MAIL, SKIP_OUTLOOK,
                                    SKIP_UNREADABLE)
from mailindex.sources.eml import EmlSource
from mailindex.sources.maildir import MaildirSource

MSG = b"From: a@example.org\nSubject: hi\n\nbody\n"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 56


def put(path: Path, data: bytes = MSG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files the eml source opens; one named "locked.txt" cannot be read."""
    names: list[str] = []

    def tracking_open(file, *args, **kwargs):
        name = os.path.basename(file)
        names.append(name)
        if name == "locked.txt":
            raise PermissionError(13, "Permission denied", file)
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(_fs, "open", tracking_open, raising=False)  # where the sources sniff files
    return names


def test_eml_counts_each_reason(tmp_path: Path, opened: list[str]) -> None:
    root = tmp_path / "export"
    put(root / "a.eml")
    put(root / "b", MSG)  # not named as mail, but its head is
    put(root / "empty.eml", b"")  # named as mail: listed, its parse error recorded
    put(root / "notes.txt", b"# what this export is\n")
    put(root / "photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF")
    put(root / "outlook.msg", b"anything: named so")
    put(root / "attachment.bin", OLE2)
    put(root / "blank", b"")
    put(root / "locked.txt", MSG)
    put(root / ".DS_Store", b"Bud1")
    put(root / "Inbox.msf", b"// <!-- <mdb:mork:z v=\"1.4\"/> -->")
    put(root / "readme.txt", b"Subject: looks like a header\n")
    os.mkfifo(root / "pipe")  # never opened: a reader would block
    os.symlink(root / "gone", root / "dangling")
    put(root / "sub" / "1.eml")  # a directory is a container, not a skipped file
    source = EmlSource(root)
    assert sorted(e.key for e in source.entries(".")) == ["a.eml", "b", "empty.eml"]
    assert source.skipped(".") == {
        SKIP_NOT_MAIL: 2, SKIP_OUTLOOK: 2, SKIP_EMPTY: 1, SKIP_UNREADABLE: 1, SKIP_METADATA: 3, SKIP_NOT_A_FILE: 2}
    # Files named as mail are never opened to list them; nor are metadata, empty or *.msg files.
    assert sorted(opened) == ["attachment.bin", "b", "locked.txt", "notes.txt", "photo.jpg"]
    assert list(source.entries("sub")) and source.skipped("sub") == {}


def test_counts_are_those_of_the_last_listing(tmp_path: Path) -> None:
    root = tmp_path / "export"
    put(root / "a.eml")
    notes = put(root / "notes.txt", b"plain text\n")
    source = EmlSource(root)
    assert source.skipped(".") == {}  # not listed yet
    list(source.entries("."))
    assert source.skipped(".") == {SKIP_NOT_MAIL: 1}
    notes.unlink()
    list(source.entries("."))
    assert source.skipped(".") == {}


def test_maildir_counts_dotfiles_and_non_files(tmp_path: Path) -> None:
    root = tmp_path / "m"
    put(root / "cur" / "1.a.host:2,S")
    put(root / "cur" / ".1.a.host:2,S.swp")
    (root / "cur" / "subdir").mkdir()
    os.mkfifo(root / "cur" / "fifo")
    put(root / "new" / "2.b.host")
    put(root / "new" / ".nfs000123")
    put(root / "tmp" / "3.c.host")  # tmp/ is never read, so nothing there is counted either
    put(root / "dovecot-uidlist", b"3 V1 N2\n")
    source = MaildirSource(root)
    listed = {c.name: [e.key for e in source.entries(c.name)] for c in source.containers()}
    assert listed == {"cur": ["1.a.host"], "new": ["2.b.host"]}
    assert source.skipped("cur") == {SKIP_METADATA: 1, SKIP_NOT_A_FILE: 2}
    assert source.skipped("new") == {SKIP_METADATA: 1}
    assert source.skipped("tmp") == {}
