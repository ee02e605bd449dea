"""Random live operations, each SIGKILLed at a random moment, on Maildir, mbox and IMAP (Dovecot).

tests/test_crash_live.py kills one operation at every step it has, one step per test. Here
hypothesis draws a sequence of copies, moves, deletes, flag changes and appends on whatever the
mailbox holds by then, and kills each one in a child process either at a step drawn from those
the operation passes (a kill point) or after a drawn delay measured from the moment the child is
about to start it (a real timer, which lands between the steps too). After each kill the parent
syncs once, then checks with the standard library only:
- every message that was on disk is still there byte for byte (modulo mbox From-quoting and the
  Status fields an mbox keeps flags in), except the one a delete or a move was taking away, and a
  moved message is in its source, its destination or both, never neither;
- no other bytes appeared: every stored message is one of the originals, an mbox is nothing but
  its messages;
- the index equals one built afresh from the same mail: the same messages, each listed once, in
  the same folders with the same flags, and no intent left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailindex import MailIndex
from mailindex.killpoints import ENV
from tests.budget import examples
from tests.test_crash import (ROOT, Backend, Copy, ImapBackend, MboxBackend, backend, check_index, kill_child,
                              message, message_id, normalized)
from tests.test_crash_live import _FOLLOW, _TABLE

KINDS = ("maildir", "mbox", "imap")
OPS = ("copy", "move", "delete", "set_flags", "append")
APPENDS = [message("appended", n) for n in range(8)]  # one per step at most
START = {"INBOX": [message("inbox", n) for n in range(4)], "Archive": [message("archive", 0)]}
ORIGINALS = {normalized(m) for m in (*APPENDS, *(m for ms in START.values() for m in ms))}

CHILD = r"""
import sys
from pathlib import Path
from mailindex import MailIndex
from mailindex.plugins import plugin_manager
index, url, op, target, appended = sys.argv[1:6]
mx = MailIndex(index, pm=plugin_manager(entry_points=bool(url)))
if url:
    mx.passwords[url] = "secret"
m = mx.messages
data = Path(appended).read_bytes()
m.count()  # the index is open and read: what is timed from "ready" is the operation
print("ready", flush=True)
if op == "copy":
    m.copy(target, "Archive")
elif op == "move":
    m.move(target, "Archive")
elif op == "delete":
    m.delete(target)
elif op == "append":
    m.append(data, "Archive")
else:
    m.set_flags(target, seen=1, flagged=1, answered=0)
print("done", flush=True)
"""


def _points(kind: str, op: str) -> list[str]:
    """The kill points this operation passes on this kind of source (the table of tests/test_crash_live.py)."""
    return [point for point, _ in _TABLE[kind][op]] + ([_FOLLOW[0]] if op == "move" else [])


@st.composite
def _steps(draw: st.DrawFn, kind: str) -> list[tuple[str, int, str | float]]:
    """[(operation, which message: an index into the sorted ids on disk, kill point or delay in seconds)]."""
    out = []
    for _ in range(draw(st.integers(2, 3))):
        op = draw(st.sampled_from(OPS))
        when = draw(st.one_of(st.sampled_from(_points(kind, op)), st.integers(0, 60).map(lambda ms: ms / 1000)))
        out.append((op, draw(st.integers(0, 20)), when))
    return out


def _timed_kill(args: list[str], delay: float, log: Path) -> None:
    """Run the child and SIGKILL it `delay` seconds after it says it is starting the operation (if it
    has not finished by then)."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "MAILINDEX_INJECT_FAULT")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first == b"ready\n", first + child.stdout.read()
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        rc = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    log.write_bytes(rest)
    assert rc == -signal.SIGKILL or (rc == 0 and rest.endswith(b"done\n")), (rc, rest[-3000:])


def _reset_imap(b: ImapBackend) -> None:
    """alice's mailbox empty again: every folder but INBOX deleted, INBOX expunged."""
    c = b._client()
    try:
        for folder in {copy.folder for copy in b.walk()} | {"Archive"}:
            if folder != "INBOX":
                c.delete(folder)  # NO when it is not there
        c.select("INBOX")
        c.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)")
        c.expunge()
    finally:
        c.logout()
    b._made.clear()


def _snapshot(mx: MailIndex) -> dict[str, tuple[str, list[str], list[str]]]:
    """{message_id: (Message-ID, folders, flags set)} as the index answers it."""
    out = {}
    for m in mx.messages.iter(include_flags=1):
        assert m["message_id"] not in out, f"listed twice: {m['message_id']}"
        out[m["message_id"]] = (m["email_message_id"], sorted(m["folders"]),
                                sorted(f for f, on in m["flags"].items() if on))
    return out


def _check_step(b: Backend, before: list[Copy], after: list[Copy], op: str, subject: str | None) -> None:
    """Nothing lost, nothing foreign, nothing else touched (see the module docstring)."""
    for c in after:
        assert normalized(c.data) in ORIGINALS, f"foreign bytes in {c.folder}: {c.data[:300]!r}"
    if isinstance(b, MboxBackend):
        b.check_whole()

    def others(copies: list[Copy]) -> Counter[tuple[str, bytes, frozenset[str]]]:
        return Counter((c.folder, normalized(c.data), c.flags) for c in copies if c.mid != subject)

    assert others(after) == others(before), f"{op}: a message it did not touch changed"
    was = Counter(c.folder for c in before if c.mid == subject)
    now = Counter(c.folder for c in after if c.mid == subject)
    if op in ("delete", "set_flags"):
        assert now <= was if op == "delete" else now == was, (op, was, now)
    elif op == "move":
        assert now and set(now) <= set(was) | {"Archive"} and now["Archive"] <= was["Archive"] + 1, (op, was, now)
    else:  # copy, append: at most one more, in Archive
        assert now - was <= Counter({"Archive": 1}) and was <= now, (op, was, now)


@pytest.mark.parametrize("kind", KINDS)
def test_random_live_operations_killed_at_random_moments(request: pytest.FixtureRequest, tmp_path: Path,
                                                          kind: str) -> None:
    b = backend(request, kind, tmp_path / "first")
    runs = iter(range(10**6))

    @settings(max_examples=examples(0.08))
    @given(steps=_steps(kind))
    def run(steps: list[tuple[str, int, str | float]]) -> None:
        work = Path(tempfile.mkdtemp(prefix=f"run{next(runs)}-", dir=tmp_path))
        if isinstance(b, ImapBackend):
            _reset_imap(b)
        else:
            b.tmp, b.location = work, str(work / kind)
        b.build({folder: [(m, frozenset({"answered"}) if n == 1 else frozenset()) for n, m in enumerate(ms)]
                 for folder, ms in START.items()})
        b.close()
        index = work / "idx"
        with b.open_index(index) as mx:
            b.add_source(mx)
            mx.sync("src", workers=1)
        for n, (op, pick, when) in enumerate(steps):
            before = b.walk()
            ids = sorted({c.mid for c in before if c.mid})
            target = ids[pick % len(ids)] if ids else ""
            if op != "append" and not target:
                continue
            appended = work / f"appended-{n}.eml"
            appended.write_bytes(APPENDS[n])
            args = [str(index), b.url, op, _message_id_of(index, b, target) if target else "", str(appended)]
            if isinstance(when, str):
                kill_child(CHILD, args, when, work / f"child-{n}.log")
            else:
                _timed_kill(args, when, work / f"child-{n}.log")
            after = b.walk()
            _check_step(b, before, after, op, message_id(APPENDS[n]) if op == "append" else target)
            with b.open_index(index) as mx:
                mx.sync("src", workers=1)
                check_index(mx, after)
                synced = _snapshot(mx)
            fresh = work / f"fresh-{n}"
            with b.open_index(fresh) as mx:
                b.add_source(mx)
                mx.sync("src", workers=1)
                assert synced == _snapshot(mx), f"step {n} ({op}, {when}): the index differs from a fresh one"

    run()


def _message_id_of(index: Path, b: Backend, email_message_id: str) -> str:
    """The index's message_id of the message whose Message-ID header is `email_message_id`."""
    with b.open_index(index) as mx:
        found = [m["message_id"] for m in mx.messages.iter() if m["email_message_id"] == email_message_id]
    assert len(found) == 1, found
    return found[0]
