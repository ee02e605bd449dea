"""Evidence is opened read-only: read commands never create an index, and a read-only open writes nothing,
also on a copy the user cannot write; new indexes are private."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailindex import MailIndex, ReadOnlyIndex
from mailindex.cli import build_parser, main
from mailindex.cli.commands import COMMANDS, NO_INDEX
from mailindex.plugins import plugin_manager
from tests import mail

ROOT = Path(__file__).resolve().parents[1]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

Listing = dict[str, tuple[Any, ...]]


def listing(root: Path) -> Listing:
    """Every entry under `root` (itself included): kind and mode, size, mtime and content (or link target)."""
    out: Listing = {}
    for entry in [root, *sorted(root.rglob("*"))]:
        st = entry.lstat()
        if stat.S_ISREG(st.st_mode):
            content: str = hashlib.sha256(entry.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(entry)
        else:
            content = ",".join(sorted(p.name for p in entry.iterdir()))
        out[str(entry.relative_to(root))] = (oct(st.st_mode), st.st_size, st.st_mtime_ns, content)
    return out


# -- read commands never create an index ------------------------------------------------------------

ID = "0123456789abcdef01234567"
READ_COMMANDS = [
    ["search"], ["search", "--count"], ["search", "--all", "--json"], ["show", ID], ["source", ID],
    ["body", ID], ["headers", ID, "--raw"], ["flags", ID], ["folders", ID], ["thread", ID], ["contacts"],
    ["contacts", "bob@example.org"], ["quarantine"], ["accounts"], ["accounts", "list"], ["accounts", "get", ID],
    ["sources"], ["sources", "list"], ["sources", "get", "personal"], ["connect-tokens"],
    ["connect-tokens", "list"], ["connect-tokens", "get", "f" * 16],
]


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("where", ["evidence folder", "missing path"])
def test_a_read_command_where_there_is_no_index_is_an_error_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], where: str) -> None:
    evidence = tmp_path / "evidence"
    mail.maildir(evidence, {"INBOX": [mail.message("exhibit A")]})
    before = listing(tmp_path)
    index = evidence if where == "evidence folder" else tmp_path / "typo" / "idx"
    assert main(["--index", str(index), *argv]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"mailindex: no index at {index}\n")
    assert listing(tmp_path) == before
    assert where == "evidence folder" or not index.parent.exists()


def test_a_relative_index_path_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """As the README writes it (`--index ./idx`): the read-only view links to the index's files by
    their absolute paths, never relative to a directory the links are not in."""
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("found here")]})
    monkeypatch.chdir(tmp_path)
    assert main(["--index", "idx", "index", str(root)]) == 0
    capsys.readouterr()
    assert main(["--index", "idx", "search", "--json"]) == 0
    assert [m["subject"] for m in json.loads(capsys.readouterr().out)] == ["found here"]
    with MailIndex("./idx", read_only=True) as mx:
        assert mx.messages.count() == 1


def test_every_command_says_whether_it_writes() -> None:
    (commands,) = [a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands) == {*COMMANDS, *NO_INDEX}  # plugins, completion and man open no index
    parse = build_parser().parse_args
    reads = [parse(["--index", "x", *argv]) for argv in READ_COMMANDS]
    assert [COMMANDS[a.command].writes(a) for a in reads] == [False] * len(reads)
    writes = [["index", "p"], ["sync"], ["accounts", "create"], ["accounts", "delete", ID], ["sources", "add", "p"],
              ["sources", "update", "l", "--status", "OK"], ["connect-tokens", "create", "--callback-url", "u"],
              ["connect-tokens", "redeem", "t", "p"], ["flags", ID, "--seen", "1"], ["folders", ID, "--add", "F"],
              ["copy", ID, "F"], ["move", ID, "F"], ["delete", ID], ["append", "-", "F"]]
    assert all(COMMANDS[a.command].writes(a) for a in (parse(["--index", "x", *argv]) for argv in writes))


def test_plugins_needs_no_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--index", str(tmp_path / "none"), "plugins", "--json"]) == 0
    assert {"maildir", "mbox", "eml"} <= {t for p in json.loads(capsys.readouterr().out) for t in p["source_types"]}
    assert list(tmp_path.iterdir()) == []


# -- read-only writes nothing ---------------------------------------------------------------------------

@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="mailindex-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


class Evidence:
    """An index of a small Maildir, both readable by anyone, and what reading it must answer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.report_bytes = mail.message("report attached", sender="bob@example.org", date=1_600_000_100,
                                         attachments=[("report.pdf", b"%PDF-1.4 " * 200)])
        maildir = mail.maildir(root / "mail", {"INBOX": [mail.message(f"note {i}", date=1_600_000_000 + i)
                                                         for i in range(3)] + [self.report_bytes]})
        self.index = root / "idx"
        with MailIndex(self.index, pm=plugin_manager(entry_points=False)) as mx:
            assert mx.index(maildir, "personal").added == 4
            self.ids = [m["message_id"] for m in mx.messages.list(sort_order="asc")]
            self.report = mx.messages.list(subject="report")[0]["message_id"]
        _modes(root, 0o755, 0o644)

    def copy(self, name: str, dirs: int, files: int) -> Path:
        dst = self.root / name
        shutil.copytree(self.index, dst)
        _modes(dst, dirs, files)
        return dst


def _modes(root: Path, dirs: int, files: int) -> None:
    for entry in sorted(root.rglob("*"), reverse=True):  # the files before the directories holding them
        entry.chmod(dirs if entry.is_dir() else files)
    root.chmod(dirs)


@pytest.fixture
def evidence(shared: Path) -> Evidence:
    return Evidence(shared)


API_CHILD = """
import json, sys
from mailindex import MailIndex
with MailIndex(sys.argv[1], read_only=True) as mx:
    print(json.dumps({"ids": [m["message_id"] for m in mx.messages.list(sort_order="asc")],
                      "count": mx.messages.count(file_name="*.pdf"),
                      "shown": mx.messages.get(sys.argv[2], include_body=1)["subject"],
                      "source": mx.messages.source(sys.argv[2]).hex()}))
"""


def _run(user: list[str], tmpdir: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    # TMPDIR: where the child makes its private view of the Tantivy index, checked empty afterwards.
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*user, sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, timeout=120)


def _reads_everything(ev: Evidence, index: Path, user: list[str]) -> None:
    """search, show, source and count, by the CLI and the Python API, answer as the original index does,
    and leave the mail as it was."""
    mail_before = listing(ev.root / "mail")
    views = ev.root / f"tmp-{index.name}"
    views.mkdir(mode=0o777)
    views.chmod(0o777)
    cli = [(argv, _run(user, views, "-m", "mailindex.cli", "--index", str(index), *argv)) for argv in (
        ["search", "--json", "--sort-order", "asc"], ["show", ev.report, "--json", "--include-headers", "1"],
        ["source", ev.report], ["search", "--count", "--file-name", "*.pdf"])]
    for argv, done in cli:
        assert (argv, done.returncode, done.stderr) == (argv, 0, b"")
    found, shown, source, count = (done.stdout for _, done in cli)
    assert [m["message_id"] for m in json.loads(found)] == ev.ids
    assert json.loads(shown)["headers"]["Subject"] == ["report attached"]
    assert (source, count) == (ev.report_bytes, b"1\n")
    api = _run(user, views, "-c", API_CHILD, str(index), ev.report)
    assert (api.returncode, api.stderr) == (0, b"")
    assert json.loads(api.stdout) == {"ids": ev.ids, "count": 1, "shown": "report attached",
                                      "source": ev.report_bytes.hex()}
    assert list(views.iterdir()) == []  # the private views are removed on close
    assert listing(ev.root / "mail") == mail_before


def _as_nobody() -> list[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the reads as the unprivileged user nobody (CI runs as root)")
    probe = subprocess.run([*NOBODY, sys.executable, "-c", "import mailindex"], cwd=ROOT, capture_output=True)
    assert probe.returncode == 0, f"nobody cannot run {sys.executable}: {probe.stderr.decode()}"
    return NOBODY


@pytest.mark.parametrize("dirs,files", [(0o555, 0o444), (0o755, 0o644)], ids=["not writable", "another owner"])
def test_a_copy_the_user_cannot_write_is_read_and_left_as_it_was(evidence: Evidence, dirs: int, files: int) -> None:
    user = _as_nobody()
    index = evidence.copy("copy", dirs, files)
    before = listing(index)
    _reads_everything(evidence, index, user)
    assert listing(index) == before


def test_read_only_writes_nothing_where_it_could(evidence: Evidence) -> None:
    """The user may write the index (its owner; root anywhere): read-only still writes nothing."""
    index = evidence.copy("own", 0o700, 0o600)
    before = listing(index)
    _reads_everything(evidence, index, [])
    with MailIndex(index, read_only=True) as mx:  # in this process, and also --read-only explicitly
        assert [m["message_id"] for m in mx.messages.list(sort_order="asc")] == evidence.ids
    assert main(["--index", str(index), "--read-only", "search", "--count"]) == 0
    assert listing(index) == before


def test_an_index_left_in_wal_mode_is_read_whole(evidence: Evidence) -> None:
    """Closed in WAL mode, as mailindex used to leave it: no -wal beside it, which mode=ro would create."""
    user = _as_nobody()
    index = evidence.copy("wal", 0o755, 0o644)
    db = sqlite3.connect(index / "meta.sqlite")
    assert db.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    db.close()
    assert sorted(p.name for p in index.iterdir()) == ["meta.sqlite", "tantivy"]
    before = listing(index)
    _reads_everything(evidence, index, user)
    assert listing(index) == before


def _stopped_writer(ev: Evidence) -> tuple[Path, str]:
    """A copy taken while a writer had changes in the -wal, not yet in meta.sqlite; the account they renamed."""
    index = ev.copy("stopped", 0o755, 0o644)
    db = sqlite3.connect(index / "meta.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("UPDATE accounts SET first_name = 'Renamed'")
    account = db.execute("SELECT id FROM accounts").fetchone()[0]
    shutil.copytree(index, ev.root / "left")
    db.close()
    left = ev.root / "left"
    assert {p.name for p in left.iterdir()} == {"meta.sqlite", "meta.sqlite-wal", "meta.sqlite-shm", "tantivy"}
    assert (left / "meta.sqlite-wal").stat().st_size > 0
    _modes(left, 0o555, 0o444)
    return left, account


def test_a_writer_stopped_without_closing_is_read_with_its_log(evidence: Evidence) -> None:
    user = _as_nobody()
    index, account = _stopped_writer(evidence)
    before = listing(index)
    done = _run(user, evidence.root, "-m", "mailindex.cli", "--index", str(index), "accounts", "get", account, "--json")
    assert (done.returncode, done.stderr) == (0, b"")
    assert json.loads(done.stdout)["first_name"] == "Renamed"
    _reads_everything(evidence, index, user)
    assert listing(index) == before


def test_a_log_without_its_shared_memory_is_refused_not_created(evidence: Evidence) -> None:
    user = _as_nobody()
    index, account = _stopped_writer(evidence)
    index.chmod(0o755)
    (index / "meta.sqlite-shm").unlink()
    before = listing(index)
    done = _run(user, evidence.root, "-m", "mailindex.cli", "--index", str(index), "accounts", "get", account)
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.decode() == (
        f"mailindex: {index} holds changes its last writer did not fold in (meta.sqlite-wal, without the meta.sqlite-shm that reading them needs): open it for writing "
        "once, on a copy if it is evidence\n")
    assert listing(index) == before


def test_a_read_only_index_follows_a_writer(tmp_path: Path) -> None:
    """Open read-only before a sync, it answers with what the sync added: the file at rest is in rollback
    mode, the writer switches it to WAL and back, the Tantivy view links the new segments."""
    pm = plugin_manager(entry_points=False)
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("first")]})
    with MailIndex(tmp_path / "idx", pm=pm) as mx:
        mx.index(root, "p")
    with MailIndex(tmp_path / "idx", read_only=True, pm=pm) as ro:
        assert [m["subject"] for m in ro.messages.list()] == ["first"]
        (root / "cur" / "second:2,").write_bytes(mail.message("second", date=1_600_000_001))
        with MailIndex(tmp_path / "idx", pm=pm) as mx:
            assert mx.sync("p").added == 1
            assert [m["subject"] for m in ro.messages.list()] == ["second", "first"]  # the writer still open
        assert [m["subject"] for m in ro.messages.list(subject="second")] == ["second"]
        with pytest.raises(ReadOnlyIndex):
            ro.sync("p")
    with MailIndex(tmp_path / "idx", pm=pm) as mx:  # the next writer out turns the file back to one file at rest
        assert mx.messages.count() == 2
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["meta.sqlite", "tantivy"]


def _views_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> list[tuple[str, str]]:
    """(directory, mode) of each view a read-only open made while it was open, with `env` as the environment's
    temporary-directory variables; every view is gone after the close."""
    for name in ("TMPDIR", "TEMP", "TMP", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pm = plugin_manager(entry_points=False)
    if not (tmp_path / "idx").exists():
        with MailIndex(tmp_path / "idx", pm=pm) as mx:
            mx.index(mail.maildir(tmp_path / "md", {"INBOX": [mail.message("first")]}), "p")
    with MailIndex(tmp_path / "idx", read_only=True, pm=pm) as ro:
        view = ro.engine.tantivy._view.path
        seen = [(str(view.parent), oct(view.stat().st_mode & 0o777))]
        assert ro.messages.count() == 1
    assert not view.exists()
    return seen


def test_a_view_goes_where_the_user_says_else_into_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    memory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp"
    assert _views_seen(tmp_path, monkeypatch, {"TMPDIR": str(mine)}) == [(str(mine), "0o700")]
    assert _views_seen(tmp_path, monkeypatch, {}) == [(memory, "0o700")]
    # a temporary directory that cannot be used is passed over, as tempfile passes it over
    assert _views_seen(tmp_path, monkeypatch, {"TMPDIR": str(tmp_path / "absent")}) == [(memory, "0o700")]
    assert _views_seen(tmp_path, monkeypatch, {"XDG_RUNTIME_DIR": str(mine)}) == [(str(mine), "0o700")]


# -- private files --------------------------------------------------------------------------------------

def _modes_under(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.lstat().st_mode)) for p in [root, *root.rglob("*")]}


def test_a_new_index_is_private(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message(f"m{i}", attachments=[("a.pdf", b"x" * 100)])
                                                    for i in range(30)]})
    index = tmp_path / "new" / "idx"
    with MailIndex(index, pm=plugin_manager(entry_points=False)) as mx:
        assert mx.index(root, "p").added == 30
        open_modes = _modes_under(index)  # while open: the write-ahead log and its shared memory too
        assert {"meta.sqlite-wal", "meta.sqlite-shm", "tantivy/meta.json", "tantivy/.tantivy-writer.lock"} <= \
            set(open_modes)
    closed_modes = _modes_under(index)
    for modes in (open_modes, closed_modes):
        assert {name: mode for name, mode in modes.items() if mode != "0o600"} == {".": "0o700", "tantivy": "0o700"}
    assert any(name.endswith(".store") for name in closed_modes)  # segment files were among those checked


def test_an_existing_index_keeps_its_modes_and_new_files_follow_them(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("first")]})
    index = tmp_path / "idx"
    with MailIndex(index, pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "p")
    _modes(index, 0o750, 0o640)  # opened up for a group, on purpose
    (root / "cur" / "second:2,").write_bytes(mail.message("second"))
    with MailIndex(index, pm=plugin_manager(entry_points=False)) as mx:
        assert mx.sync("p").added == 1
    modes = _modes_under(index)
    assert {name: mode for name, mode in modes.items() if mode != "0o640"} == {".": "0o750", "tantivy": "0o750"}
    assert len(modes) > 8  # meta.sqlite, and Tantivy's files old and new
