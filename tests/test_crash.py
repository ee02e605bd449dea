"""SIGKILL a sync at any moment; the next sync leaves exactly the source's messages, each once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailindex import MailIndex
from mailindex.plugins import plugin_manager
from mailindex.record import message_id_for
from tests import mail

# Runs a sync in a child process that kills itself at the N-th call of a chosen step.
CHILD = r"""
import os, signal, sys
import mailindex.sync as sync
from mailindex import MailIndex
from mailindex.index.tantivy_index import Writer
sync.BATCH = 40
index, label, where, nth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = [0]
def wrap(orig, before):
    def inner(*a, **k):
        calls[0] += 1
        if before and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        result = orig(*a, **k)
        if not before and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return inner
if where != "none":
    Writer.commit = wrap(Writer.commit, where == "before-commit")
MailIndex(index).sync(label, workers=1)
"""


def _child(index: Path, label: str, where: str, nth: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(index), label, where, str(nth)],
                            cwd=Path(__file__).resolve().parents[1])


def _expected(root: Path) -> set[str]:
    return {message_id_for(p.read_bytes()) for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")}


def _check(index: Path, label: str, root: Path) -> None:
    with MailIndex(index, pm=plugin_manager(entry_points=False)) as mx:
        mx.sync(label, workers=1)
        ids = [m["message_id"] for m in mx.messages.iter()]
        assert len(ids) == len(set(ids)), "a message is indexed twice"
        assert set(ids) == _expected(root)
        assert mx.messages.count() == len(ids) == mx.store.count_messages()
        assert mx.store.intent() == []


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    root = mail.maildir(tmp_path / "md", {
        "INBOX": [mail.message(f"message {i}", date=1_500_000_000 + i * 3600) for i in range(150)],
        "Sent": [mail.message(f"sent {i}", sender="me@example.com") for i in range(50)],
    })
    index = tmp_path / "idx"
    with MailIndex(index, pm=plugin_manager(entry_points=False)) as mx:
        mx.add_source("p", root)
    return root, index


@pytest.mark.parametrize("where,nth", [("before-commit", 1), ("after-commit", 1), ("before-commit", 3),
                                       ("after-commit", 4), ("after-commit", 5)])
def test_kill_at_a_commit_point(setup: tuple[Path, Path], where: str, nth: int) -> None:
    root, index = setup
    assert _child(index, "p", where, nth).wait() == -signal.SIGKILL
    _check(index, "p", root)


def test_kill_while_removing_and_moving(setup: tuple[Path, Path]) -> None:
    root, index = setup
    _check(index, "p", root)
    files = sorted((root / "cur").iterdir())
    for p in files[:30]:
        p.unlink()
    for p in files[30:60]:
        p.rename(root / ".Sent" / "cur" / p.name)
    (root / "cur" / "added:2,").write_bytes(mail.message("added late"))
    for nth in (1, 2):
        assert _child(index, "p", "after-commit", nth).wait() == -signal.SIGKILL
    _check(index, "p", root)


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.5])
def test_kill_at_a_random_moment(setup: tuple[Path, Path], delay: float) -> None:
    root, index = setup
    child = _child(index, "p", "none", 0)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    _check(index, "p", root)
