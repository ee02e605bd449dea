"""Maildir traps: Maildir++ names, nested Maildirs, flags, renames by another program."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailindex.errors import SourceNotFound
from mailindex.sources.maildir import MaildirSource, flags_of, folder_name, split_name

from .conftest import scan

MSG = b"From: a@example.org\nSubject: hi\n\nbody\n"


def make(root: Path, *subdirs: str) -> Path:
    for sub in subdirs or ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def put(path: Path, data: bytes = MSG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def folders_of(source: MaildirSource) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in scan(source):
        out.setdefault(e.folders[0], set()).add(e.key)
    return out


def test_maildirplusplus_names(tmp_path: Path) -> None:
    root = make(tmp_path / "Mail")
    put(root / "cur" / "1.a.host:2,S")
    for name in (".Sent", ".Work.Project", ".Work"):
        make(root / name)
        put(root / name / "new" / f"2.{name}.host")
    (root / ".notmuch" / "xapian").mkdir(parents=True)  # a dot-dir without cur/new is not a folder
    assert MaildirSource.looks_like(root)
    assert set(folders_of(MaildirSource(root))) == {"INBOX", "Sent", "Work/Project", "Work"}
    assert folder_name(".Work.Project") == "Work/Project"
    assert folder_name("") == "INBOX"
    assert folder_name("acct/.Lists.python") == "acct/Lists/python"


def test_nested_maildirs(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    for rel in ("work/INBOX", "work/Sent", "home/lists/python", "home/lists/python/announce"):
        make(root / rel)
        put(root / rel / "cur" / f"1.{rel.replace('/', '_')}:2,")
    (root / "home" / "empty").mkdir()  # an empty directory does not spoil detection
    assert MaildirSource.looks_like(root)
    assert set(folders_of(MaildirSource(root))) == {
        "work/INBOX", "work/Sent", "home/lists/python", "home/lists/python/announce"}
    containers = {c.name for c in MaildirSource(root).containers()}
    assert "home/lists/python/announce/cur" in containers and "work/Sent/new" in containers


def test_not_a_maildir(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    put(tmp_path / "a" / "1", MSG)  # a directory of message files is not a Maildir tree
    make(tmp_path / "b")
    assert not MaildirSource.looks_like(tmp_path)
    assert not MaildirSource.looks_like(tmp_path / "a" / "1")
    assert MaildirSource.looks_like(tmp_path / "b")


def test_keys_and_flags(tmp_path: Path) -> None:
    root = make(tmp_path / "m")
    put(root / "cur" / "100.A.host:2,FRS")
    put(root / "cur" / "101.B.host:2,DT")
    put(root / "cur" / "102.C.host!2,Sa")  # "!" separator (mbsync on Windows); lowercase = keyword
    put(root / "cur" / "103.D.host")  # no info part
    put(root / "new" / "104.E.host")
    put(root / "new" / "105.F.host:2,S")  # in new/: unseen whatever the name says
    got = {e.key: e.flags for e in scan(MaildirSource(root))}
    assert got == {
        "100.A.host": {"flagged", "answered", "seen"},
        "101.B.host": {"draft", "deleted"},
        "102.C.host": {"seen"},
        "103.D.host": set(),
        "104.E.host": set(),
        "105.F.host": set(),
    }
    assert split_name("1.x,S=123:2,RS") == ("1.x,S=123", "RS")
    assert flags_of("1.x:2,S", "new") == frozenset()


def test_skips_dotfiles_tmp_and_non_files(tmp_path: Path) -> None:
    root = make(tmp_path / "m")
    put(root / "cur" / "1.ok:2,")
    put(root / "cur" / ".hidden")
    put(root / "tmp" / "2.being-delivered")
    (root / "cur" / "subdir").mkdir()
    put(root / "dovecot-uidlist", b"3 V1 N2\n")
    entries = list(scan(MaildirSource(root)))
    assert [e.key for e in entries] == ["1.ok"]
    e = entries[0]
    assert e.locator == {"path": "cur/1.ok:2,"}
    assert e.content_stamp == "" and e.mtime == int((root / "cur" / "1.ok:2,").stat().st_mtime)
    assert {c.name for c in MaildirSource(root).containers()} == {"cur", "new"}


def test_delivery_time_in_the_name_is_the_date_fallback(tmp_path: Path) -> None:
    root = make(tmp_path / "m")
    put(root / "cur" / "1500000000.M1P2.host:2,S")
    (e,) = scan(MaildirSource(root))
    assert e.mtime == 1_500_000_000 and e.flags == frozenset({"seen"})


def test_rename_by_another_program(tmp_path: Path) -> None:
    root = make(tmp_path / "m")
    make(root / ".Sent")
    put(root / ".Sent" / "new" / "7.uniq.host", b"the bytes\n")
    source = MaildirSource(root)
    (entry,) = scan(source)
    assert entry.flags == frozenset()
    # The mail program reads it: new/ -> cur/ with an info part.
    os.rename(root / ".Sent" / "new" / "7.uniq.host", root / ".Sent" / "cur" / "7.uniq.host:2,S")
    assert source.read_bytes(entry.locator) == b"the bytes\n"
    assert source.read_flags(entry.locator) == {"seen"}
    # ...and flags it; read_flags is live, never cached.
    os.rename(root / ".Sent" / "cur" / "7.uniq.host:2,S", root / ".Sent" / "cur" / "7.uniq.host:2,FRS")
    assert source.read_flags(entry.locator) == {"seen", "flagged", "answered"}
    (again,) = scan(source)
    assert again.key == entry.key and again.container == ".Sent/cur"
    os.unlink(root / ".Sent" / "cur" / "7.uniq.host:2,FRS")
    with pytest.raises(SourceNotFound):
        source.read_bytes(entry.locator)
    with pytest.raises(SourceNotFound):
        source.read_flags(entry.locator)


def test_flag_change_while_listing(tmp_path: Path) -> None:
    root = make(tmp_path / "m")
    for n in range(4):
        put(root / "cur" / f"{n}.u.host:2,")
    it = MaildirSource(root).entries("cur")
    first = next(it)
    os.rename(root / "cur" / "2.u.host:2,", root / "cur" / "2.u.host:2,S")  # another program marks it seen
    rest = list(it)
    assert sorted(e.key for e in [first, *rest]) == [f"{n}.u.host" for n in range(4)]
    assert next(e for e in rest if e.key == "2.u.host").flags == {"seen"}


def test_locator_cannot_escape_the_source(tmp_path: Path) -> None:
    from mailindex.errors import SourceError

    root = make(tmp_path / "m")
    put(tmp_path / "secret", b"x")
    with pytest.raises(SourceError):
        MaildirSource(root).read_bytes({"path": "../secret"})


def test_listing_fast_path_agrees_with_entries(tmp_path: Path) -> None:
    root = make(tmp_path / "m")
    put(root / "cur" / "1500000000.A.h:2,FS")
    put(root / "cur" / "1500000001.B.h:2,")
    put(root / "new" / "1500000002.C.h")
    put(root / "cur" / ".hidden")
    src = MaildirSource(root)
    for c in src.containers():
        entries = {e.locator["path"]: e for e in src.entries(c.name)}
        listing = src.listing(c.name)
        assert listing == set(entries)  # dotfiles left out, the same paths
        for path in listing:
            assert src.entry(c.name, path) == entries[path]
