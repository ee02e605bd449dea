"""Real layouts: mail a few levels down a wide tree, and Maildirs inside a tree of loose message files."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from mailindex import MailIndex, UnsupportedOperation
from mailindex.cli import main
from mailindex.plugins import plugin_manager
from mailindex.sources import _fs, maildir
from mailindex.sources.base import SKIP_METADATA, SKIP_NOT_MAIL
from mailindex.sources.eml import EmlSource
from mailindex.sources.maildir import MaildirSource, folder_name, split_name
from mailindex.sources.mbox import MboxSource

from .conftest import scan

CLASSES = (MaildirSource, MboxSource, EmlSource)


def msg(n: int) -> bytes:
    return b"From: u%d@example.org\nMessage-ID: <%d@test.example>\nSubject: message %d\n\nbody\n" % (n, n, n)


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def claims(path: Path) -> list[str]:
    return [cls.type for cls in CLASSES if cls.looks_like(path)]


# --- detection: mail a few levels down a wide tree ---------------------------------

@pytest.fixture
def inboxes(tmp_path: Path) -> Path:
    """The Enron inboxes' layout: user/.DS_Store, user/csv/x.csv, user/inbox/1. for 200 users."""
    root = tmp_path / "maildir"
    for n in range(200):
        user = root / f"user{n:03}"
        put(user / ".DS_Store", b"\x00\x00\x00\x01Bud1")
        put(user / "csv" / "x.csv", b"id,label\n1,spam\n")
        put(user / "inbox" / "1.", msg(n))
    return root


def test_mail_a_few_levels_down_a_wide_tree_is_found(inboxes: Path) -> None:
    assert claims(inboxes) == ["eml"]
    # Depth first: the first user's files come first, not the directories of every user.
    assert list(_fs.sample_files(inboxes))[:2] == [inboxes / "user000" / "csv" / "x.csv",
                                                   inboxes / "user000" / "inbox" / "1."]


def test_wide_tree_is_indexed_and_the_rest_counted(inboxes: Path, tmp_path: Path) -> None:
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        source = mx.open_source(inboxes)
        assert source.type == "eml"
        keys = [e.key for e in scan(source)]
        assert len(keys) == 200 and all(k.endswith("/inbox/1.") for k in keys)
        skipped = Counter[str]()
        for c in source.containers():
            list(source.entries(c.name))
            skipped.update(source.skipped(c.name))
        assert skipped == {SKIP_NOT_MAIL: 200, SKIP_METADATA: 200}
    assert main(["--index", str(tmp_path / "cli"), "index", str(inboxes), "--source", "enron", "--json"]) == 0
    with MailIndex(tmp_path / "cli", read_only=True, pm=plugin_manager(entry_points=False)) as mx:
        assert mx.messages.count() == 200


def test_the_sample_is_bounded(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for n in range(30):
        put(root / "attachments" / f"{n:02}.pdf", b"%PDF-1.4\n")
    put(root / "inbox" / "1.eml", msg(1))
    sample = list(_fs.sample_files(root))
    # A directory gives at most 10 files, so one of attachments cannot hide the mail beside it.
    assert sample == [root / "attachments" / f"{n:02}.pdf" for n in range(10)] + [root / "inbox" / "1.eml"]
    assert claims(root) == ["eml"]
    deep = tmp_path / "deep"
    for n in range(250):
        (deep / f"d{n:03}").mkdir(parents=True)
    put(deep / "zzz" / "1.eml", msg(1))
    assert list(_fs.sample_files(deep)) == []  # 200 directories looked at, then detection gives up
    assert list(_fs.sample_files(deep, max_dirs=300)) == [deep / "zzz" / "1.eml"]


# --- Maildirs inside a tree of loose files -------------------------------------

@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Loose message files and Maildirs (one with a Maildir++ child, one nested with only cur/)."""
    root = tmp_path / "mixed"
    put(root / "loose" / "1.eml", msg(1))
    box = root / "mail"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    put(box / "cur" / "1500000100.a.host:2,FS", msg(2))
    put(box / "cur" / ".1500000100.a.host:2,FS.swp", b"editor litter")
    put(box / "new" / "1500000101.b.host", msg(3))
    put(box / "tmp" / "1500000102.c.host", b"being delivered")
    put(box / "note.eml", msg(4))  # loose, beside the Maildir's own directories
    put(box / ".Sent" / "cur" / "1500000103.d.host:2,S", msg(5))
    put(box / ".Sent" / "maildirfolder", b"")
    put(box / "lists" / "py" / "cur" / "1500000104.e.host:2,R", msg(6))
    return root


def test_maildirs_in_a_tree_are_read_as_maildirs(mixed: Path) -> None:
    assert claims(mixed) == ["eml"]
    source = EmlSource(mixed)
    got = {e.key: (e.container, e.folders, e.flags) for e in scan(source)}
    assert got == {
        "loose/1.eml": ("loose", ("loose",), frozenset()),
        "1500000100.a.host": ("mail/cur", ("mail",), {"flagged", "seen"}),
        "1500000101.b.host": ("mail/new", ("mail",), frozenset()),
        "mail/note.eml": ("mail", ("mail",), frozenset()),
        "1500000103.d.host": ("mail/.Sent/cur", ("mail/Sent",), {"seen"}),
        "1500000104.e.host": ("mail/lists/py/cur", ("mail/lists/py",), {"answered"}),
    }
    assert "mail/tmp" not in {c.name for c in source.containers()}
    assert source.skipped("mail/cur") == {SKIP_METADATA: 1}
    assert [f.name for f in source.folders()] == [
        "INBOX", "loose", "mail", "mail/Sent", "mail/lists", "mail/lists/py"]
    for e in scan(source):
        path = mixed / e.locator["path"]
        assert source.read_bytes(e.locator) == path.read_bytes()
        assert source.read_flags(e.locator) == e.flags


def test_a_maildir_in_a_tree_is_read_as_maildir_source_reads_it(mixed: Path) -> None:
    inside = {e.key: e for e in scan(EmlSource(mixed)) if maildir.is_container(e.container)}
    alone = {e.key: e for e in scan(MaildirSource(mixed / "mail"))}
    assert set(alone) <= set(inside)
    for key, e in alone.items():
        assert (inside[key].flags, inside[key].mtime) == (e.flags, e.mtime)
        assert inside[key].locator["path"] == f"mail/{e.locator['path']}"


def test_maildir_fast_path_and_renames_inside_a_tree(mixed: Path) -> None:
    source = EmlSource(mixed)
    assert source.listing("loose") is None
    entries = {e.locator["path"]: e for e in source.entries("mail/cur")}
    assert source.listing("mail/cur") == set(entries)
    for path, e in entries.items():
        assert source.entry("mail/cur", path) == e
    (e,) = entries.values()
    cur = mixed / "mail" / "cur"
    os.rename(cur / "1500000100.a.host:2,FS", cur / "1500000100.a.host:2,RS")  # a mail program's flag change
    assert source.read_bytes(e.locator) == msg(2)
    assert source.read_flags(e.locator) == {"answered", "seen"}


def test_live_operations_inside_a_tree(mixed: Path) -> None:
    source = EmlSource(mixed)
    before = {e.key for e in scan(source)}
    into_maildir = source.append("mail", msg(7), frozenset({"seen"}))
    into_maildirpp = source.append("mail/Sent", msg(8))
    into_dir = source.append("loose", msg(9), frozenset({"seen"}))  # a loose file keeps no flags
    assert into_maildir["path"].startswith("mail/cur/") and into_maildir["path"].endswith(":2,S")
    assert into_maildirpp["path"].startswith("mail/.Sent/cur/")
    assert into_dir["path"].startswith("loose/") and into_dir["path"].endswith(".eml")
    for locator, data, flags in ((into_maildir, msg(7), {"seen"}), (into_maildirpp, msg(8), set()),
                                 (into_dir, msg(9), set())):
        assert source.read_bytes(locator) == data and source.read_flags(locator) == flags
    (unseen,) = source.entries("mail/new")
    with pytest.raises(UnsupportedOperation):
        source.set_flags(unseen.locator, {"seen": True})
    for locator in (into_maildir, into_dir, unseen.locator):
        source.delete(locator)
        assert not (mixed / locator["path"]).exists()
    delivered = split_name(into_maildirpp["path"].rpartition("/")[2])[0]
    assert {e.key for e in scan(source)} == before - {unseen.key} | {delivered}


def test_pure_maildir_trees_stay_maildir(tmp_path: Path, mixed: Path) -> None:
    assert claims(mixed / "mail") == ["maildir"]  # a Maildir with a loose file and a nested one
    tree = tmp_path / "tree"
    for rel in ("work/INBOX", "home/lists"):
        for sub in ("cur", "new", "tmp"):
            (tree / rel / sub).mkdir(parents=True)
        put(tree / rel / "cur" / "1.x.host:2,S", msg(1))
    assert claims(tree) == ["maildir"]


def test_notmuch_corpus_reads_its_maildirs(corpora: Path) -> None:
    root = corpora / "notmuch"
    source = EmlSource(root)
    entries = list(scan(source))
    assert len(entries) == 320
    in_maildirs = [e for e in entries if maildir.is_container(e.container)]
    assert {e.container for e in in_maildirs} >= {"default/cur", "default/foo/baz/new", "lkml/cur"}
    for e in in_maildirs:
        rel_dir, _, name = e.locator["path"].rpartition("/")
        assert e.key == split_name(name)[0] and e.folders == (folder_name(rel_dir.rpartition("/")[0]),)
    assert not any("/tmp/" in e.locator["path"] or e.folders[0].endswith(("/cur", "/new")) for e in entries)
    assert {e.folders[0] for e in in_maildirs if e.container.startswith("lkml/")} == {"lkml"}
