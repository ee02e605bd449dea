"""SIGKILL a live operation (copy, move, delete, append, set_flags) at every kill point it reaches,
for each backend, and check the mail and the index the next sync makes of it.

A child process runs the operation with MAILINDEX_KILL_AT naming the point and must die there
by SIGKILL. Then, read back with the standard library only (see tests/test_crash.py):
- every message the operation did not touch is where it was, byte for byte, with its flags;
- the message operated on is where it was or where it was asked to go, once per folder, and
  nowhere else: exactly the outcome stated for that point. The documented allowance for a
  move is "its source, its destination, or both" (mailindex/sources/base.py: transfer copies,
  verifies, then deletes), so both places may hold it after a kill between copy and delete,
  never neither; a flag change on IMAP is two STOREs (flags set, then flags cleared), so each
  flag is its old or its new value;
- every copy equals the original modulo mbox From-quoting and the Status/X-Status fields an
  mbox keeps flags in, and no mbox holds a byte outside its messages;
- after the parent syncs, the index agrees with the disk (`check_index`), and a dot-lock the
  killed writer left behind does not stop the next writer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_crash import (Backend, Copy, MboxBackend, backend, check_index, kill_child, message, message_id,
                               normalized)

LIVE_CHILD = r"""
import sys
from pathlib import Path
from mailindex import MailIndex
from mailindex.plugins import plugin_manager
index, url, op, target, appended = sys.argv[1:6]
mx = MailIndex(index, pm=plugin_manager(entry_points=bool(url)))
if url:
    mx.passwords[url] = "secret"
m = mx.messages
if op == "copy":
    print(m.copy(target, "Archive"))
elif op == "move":
    print(m.move(target, "Archive"))
elif op == "delete":
    print(m.delete(target))
elif op == "append":
    print(m.append(Path(appended).read_bytes(), "Archive"))
else:
    print(m.set_flags(target, seen=1, flagged=1, answered=0))
"""

OLD_FLAGS = frozenset({"answered"})  # the target's flags before set_flags
NEW_FLAGS = frozenset({"seen", "flagged"})  # seen=1, flagged=1, answered=0
# Where the message operated on may be after a kill (see the module docstring), each place once.
ALLOWED = {
    "copy": ({"INBOX"}, {"INBOX", "Archive"}),
    "move": ({"INBOX"}, {"Archive"}, {"INBOX", "Archive"}),
    "delete": ({"INBOX"}, set()),
    "append": (set(), {"Archive"}),
    "set_flags": ({"INBOX"},),
}
BOTH, INBOX, ARCHIVE, GONE = "INBOX+Archive", "INBOX", "Archive", ""

# (kind, operation, kill point, where the message is then; for set_flags: its flags then)
_FILES = {  # Maildir and .eml trees: deliveries and deletes by _fs
    "copy": [("file.after-temp-written", INBOX), ("file.after-link", BOTH), ("transfer.after-copy", BOTH)],
    "move": [("file.after-temp-written", INBOX), ("file.after-link", BOTH), ("transfer.after-copy", BOTH),
             ("transfer.after-verify", BOTH), ("file.after-unlink", ARCHIVE), ("transfer.after-delete", ARCHIVE),
             ("live.before-follow", ARCHIVE)],
    "delete": [("file.after-unlink", GONE), ("live.before-follow", GONE)],
    "append": [("file.after-temp-written", GONE), ("file.after-link", ARCHIVE), ("live.before-follow", ARCHIVE)],
}
_MBOX_REWRITE = ("mbox.after-lock", "mbox.after-temp-written", "mbox.after-rename", "mbox.after-unlock")
_TABLE: dict[str, dict[str, list[tuple[str, str]]]] = {
    "maildir": {**_FILES, "set_flags": [("maildir.after-rename", "new"), ("live.before-follow", "new")]},
    "eml": _FILES,  # loose files keep no flags: set_flags is refused
    "mbox": {
        "copy": [*zip(_MBOX_REWRITE, (INBOX, INBOX, BOTH, BOTH)), ("transfer.after-copy", BOTH)],
        # the second rewrite of a move is the delete (the first, the copy's, is the copy's case)
        "move": [*zip((f"{p}:2" for p in _MBOX_REWRITE), (BOTH, BOTH, ARCHIVE, ARCHIVE)),
                 ("transfer.after-copy", BOTH), ("transfer.after-verify", BOTH),
                 ("transfer.after-delete", ARCHIVE), ("live.before-follow", ARCHIVE)],
        "delete": [*zip(_MBOX_REWRITE, (INBOX, INBOX, GONE, GONE)), ("live.before-follow", GONE)],
        "append": [*zip(_MBOX_REWRITE, (GONE, GONE, ARCHIVE, ARCHIVE)), ("live.before-follow", ARCHIVE)],
        "set_flags": [*zip(_MBOX_REWRITE, ("old", "old", "new", "new")), ("live.before-follow", "new")],
    },
    "imap": {
        "copy": [("imap.after-copy", BOTH), ("transfer.after-copy", BOTH)],
        "move": [("imap.after-copy", BOTH), ("transfer.after-copy", BOTH), ("transfer.after-verify", BOTH),
                 ("imap.after-store-deleted", BOTH), ("imap.after-expunge", ARCHIVE),
                 ("transfer.after-delete", ARCHIVE), ("live.before-follow", ARCHIVE)],
        "delete": [("imap.after-store-deleted", INBOX), ("imap.after-expunge", GONE), ("live.before-follow", GONE)],
        "append": [("imap.after-append", ARCHIVE), ("live.before-follow", ARCHIVE)],
        "set_flags": [("imap.after-add-flags", "partial"), ("live.before-follow", "new")],
    },
}


# The index follows a move with a sync of the source: killed there, after its first Tantivy commit
# (the move is done at the source), the next sync repairs from locators an mbox rewrite made stale.
_FOLLOW = ("sync.after-commit", ARCHIVE)


def _live_cases() -> Iterator[Any]:
    for kind, ops in _TABLE.items():
        for op, cases in ops.items():
            for point, outcome in [*cases, *([_FOLLOW] if op == "move" else [])]:
                yield pytest.param(kind, op, point, outcome, id=f"{kind}-{op}-{point}")


LIVE_CASES = list(_live_cases())

TARGET = message("target", 0)
APPENDED = message("appended", 0)
OTHERS = {"INBOX": [message("inbox", 1), message("inbox", 2), message("inbox", 3)], "Archive": [message("archive", 1)]}
ORIGINALS = {normalized(m) for m in (TARGET, APPENDED, *OTHERS["INBOX"], *OTHERS["Archive"])}


def _build(b: Backend) -> None:
    """INBOX: a message, the target (answered), two more; Archive: one. Rewriting an mbox without
    the target moves what follows it: a stale locator then points into other messages."""
    first, *rest = OTHERS["INBOX"]
    b.build({"INBOX": [(first, frozenset()), (TARGET, OLD_FLAGS), *((m, frozenset()) for m in rest)],
             "Archive": [(m, frozenset()) for m in OTHERS["Archive"]]})


def _expected_places(op: str, point: str, outcome: str, original: frozenset[str]) -> dict[str, frozenset[str]]:
    """{folder: flags} of the operated message's copies that this point must leave."""
    if op == "set_flags":
        flags = {"old": original, "new": NEW_FLAGS, "partial": original | NEW_FLAGS}[outcome]
        return {"INBOX": flags}
    flags = frozenset() if op == "append" else original
    places = {folder: flags for folder in outcome.split("+") if folder}
    if point == "imap.after-store-deleted":
        places["INBOX"] = flags | {"deleted"}  # flagged, not yet expunged: still a message of the folder
    return places


def _check_disk(b: Backend, before: list[Copy], after: list[Copy], op: str, point: str, outcome: str) -> None:
    subject = message_id(APPENDED if op == "append" else TARGET)
    untouched = [c for c in before if c.mid != subject]
    assert [c for c in after if c.mid != subject] == untouched, "a message the operation did not touch changed"
    mine = [c for c in after if c.mid == subject]
    folders = Counter(c.folder for c in mine)
    assert all(n == 1 for n in folders.values()), f"the message is in one folder twice: {folders}"
    assert set(folders) in ALLOWED[op], f"not an outcome a killed {op} may leave: {sorted(folders)}"
    original = next((c for c in before if c.mid == subject), None)
    want = _expected_places(op, point, outcome, original.flags if original else frozenset())
    assert {c.folder: c.flags for c in mine} == want
    source = APPENDED if op == "append" else TARGET
    for c in mine:
        assert normalized(c.data) == normalized(source), f"the copy in {c.folder} is not the message"
        if original is not None and c.folder == original.folder and (op != "set_flags" or b.kind != "mbox"):
            assert (c.name, c.data) == (original.name, original.data), "the original was rewritten"
    for c in after:
        assert normalized(c.data) in ORIGINALS, f"foreign bytes in {c.folder}: {c.data[:300]!r}"
    if isinstance(b, MboxBackend):
        b.check_whole()


@pytest.mark.parametrize("kind,op,point,outcome", LIVE_CASES)
def test_live_operation_killed_at_a_point(request: pytest.FixtureRequest, tmp_path: Path, kind: str, op: str,
                                          point: str, outcome: str) -> None:
    b = backend(request, kind, tmp_path)
    _build(b)
    b.close()
    index = tmp_path / "idx"
    with b.open_index(index) as mx:
        b.add_source(mx)
        mx.sync("src", workers=1)
    before = b.walk()
    (tmp_path / "appended.eml").write_bytes(APPENDED)
    target = message_id(TARGET) or ""
    kill_child(LIVE_CHILD, [str(index), b.url, op, target, str(tmp_path / "appended.eml")], point,
               tmp_path / "child.log")
    after = b.walk()
    _check_disk(b, before, after, op, point, outcome)
    with b.open_index(index) as mx:
        mx.sync("src", workers=1)
        check_index(mx, after)
        if op == "set_flags":
            got = mx.messages.get(target, include_flags=1)["flags"]
            assert {f for f, on in got.items() if on} == next(c.flags for c in after if c.mid == target)
        if kind == "mbox":  # the killed writer's dot-lock (its pid is dead) must not hold up the next one
            for other in (OTHERS["INBOX"][0], OTHERS["Archive"][0]):  # a writer in each file
                assert mx.messages.set_flags(message_id(other) or "", seen=1)["success"]
            assert not [p for p in b.leftovers() if p.endswith(".lock")]
            check_index(mx, b.walk())
