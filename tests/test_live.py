"""Live operations on Maildir, mbox and .eml sources, checked against a model and against the disk.

The property: after any sequence of flag changes, copies, moves, deletes,
appends and folder changes across three sources of one account,
- the mail on disk (read back with the standard library: mailbox.Maildir,
  mailbox.mbox, os.walk) is exactly what a simple model of locations says, and
- the index answers exactly what that model says (folders, sources, count),
  as an index built afresh from the same mail does.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailindex import MailIndex, QueryError, ReadOnlyIndex, UnsupportedOperation
from mailindex.plugins import plugin_manager
from tests import mail
from tests.reference import message_id

LABELS = ("md", "mb", "em")
TYPES = {"md": "maildir", "mb": "mbox", "em": "eml"}
FOLDERS = ("INBOX", "Archive", "Work")
FLAGS = ("seen", "answered", "flagged", "deleted", "draft")
Loc = tuple[str, str, frozenset[str]]  # (source label, folder, flags)


def _kept(label: str, flags: frozenset[str]) -> frozenset[str]:
    """The flags a location of this source keeps: none in an .eml tree."""
    return frozenset() if label == "em" else flags


def _setup(tmp: Path, n: int) -> tuple[MailIndex, dict[str, list[Loc]], list[bytes]]:
    messages = [mail.message(f"m{i}", body=f"body {i}\nFrom the start of a line\n") for i in range(n)]
    mail.maildir(tmp / "md", {"INBOX": messages[: n // 2 + 1]})
    (tmp / "mb").mkdir()
    mail.mbox(tmp / "mb" / "INBOX", messages[n // 2 + 1:])
    (tmp / "em").mkdir()
    mx = MailIndex(tmp / "idx", pm=plugin_manager(entry_points=False))
    for label in LABELS:
        mx.add_source(label, tmp / label, TYPES[label], sync_all_folders=1, sync_flags=1)
    mx.sync()
    model = {message_id(m): [("md" if i <= n // 2 else "mb", "INBOX", frozenset())] for i, m in enumerate(messages)}
    return mx, model, messages


# The flag letters on disk: the Maildir spec's info part (":2,FS"); mbox Status (R) and X-Status (A F T D).
MAILDIR_FLAGS = {"D": "draft", "F": "flagged", "R": "answered", "S": "seen", "T": "deleted"}
MBOX_FLAGS = {"R": "seen", "A": "answered", "F": "flagged", "T": "draft", "D": "deleted"}
Found = Iterator[tuple[str, bytes, frozenset[str]]]  # (folder, bytes as the index keeps them, flags)


def _read_maildir(root: Path) -> Found:
    """The top directory INBOX and each Maildir++ ``.Name`` a folder; flags from each file name's info part
    (listed by hand: mailbox.Maildir would parse every message to tell them)."""
    for folder in ["INBOX", *mailbox.Maildir(root, factory=None, create=False).list_folders()]:
        box = root if folder == "INBOX" else root / f".{folder}"
        for sub in ("cur", "new"):
            for name in os.listdir(box / sub):
                yield folder, (box / sub / name).read_bytes(), frozenset(MAILDIR_FLAGS[c]
                                                                         for c in name.partition(":2,")[2])


def _read_mbox(root: Path) -> Found:
    """Each file an mbox and a folder; a message's bytes lose the From_ line and one level of ``>From`` quoting."""
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.suffix != ".lock"):
        box = mailbox.mbox(path, factory=None, create=False)
        try:
            for key in box.keys():
                letters = box.get_message(key).get_flags().replace("O", "")  # O ("old") is no flag
                data = re.sub(rb"(?m)^>(>*From )", rb"\1", box.get_bytes(key))
                yield path.relative_to(root).as_posix(), data, frozenset(MBOX_FLAGS[c] for c in letters)
        finally:
            box.close()


def _read_eml(root: Path) -> Found:
    """Each directory a folder (the top one INBOX), each file a message; no flags."""
    for folder, _, files in os.walk(root):
        rel = Path(folder).relative_to(root).as_posix()
        for name in files:
            if not name.startswith("."):
                yield "INBOX" if rel == "." else rel, Path(folder, name).read_bytes(), frozenset()


READERS: dict[str, Callable[[Path], Found]] = {"maildir": _read_maildir, "mbox": _read_mbox, "eml": _read_eml}


def _disk(mx: MailIndex) -> Counter[tuple[str, str, str, frozenset[str]]]:
    """(label, folder, message_id, flags) of every message file or mbox entry, read from disk with the
    standard library alone (never mailindex's sources, whose reading is what is being checked)."""
    out: Counter[tuple[str, str, str, frozenset[str]]] = Counter()
    for row in mx.sources():
        for folder, data, flags in READERS[row["type"]](Path(row["location"])):
            out[(row["label"], folder, message_id(data), flags)] += 1
    return out


def _expected(model: dict[str, list[Loc]]) -> Counter[tuple[str, str, str, frozenset[str]]]:
    return Counter((label, folder, mid, flags) for mid, locs in model.items() for label, folder, flags in locs)


OPS = st.lists(st.tuples(st.sampled_from(["flags", "copy", "move", "delete", "append", "add", "remove"]),
                         st.integers(0, 50), st.sampled_from(FOLDERS), st.sampled_from(LABELS),
                         st.frozensets(st.sampled_from(FLAGS)), st.frozensets(st.sampled_from(FLAGS))),
               min_size=1, max_size=8)


@given(ops=OPS)
@example(ops=[("move", 0, "INBOX", "em", frozenset({"seen"}), frozenset()),
              ("copy", 0, "INBOX", "md", frozenset(), frozenset())])  # an .eml copy keeps no flags to copy on
@example(ops=[("move", 28, "INBOX", "em", frozenset(FLAGS), frozenset()),
              ("flags", 48, "INBOX", "md", frozenset(FLAGS), frozenset())])
@example(ops=[("delete", 0, "INBOX", "md", frozenset(), frozenset()),  # two copies in one mbox file:
              ("append", 0, "INBOX", "md", frozenset(), frozenset()),  # deleting the first shifts the second
              ("flags", 0, "INBOX", "md", frozenset(), frozenset()),
              ("flags", 0, "INBOX", "md", frozenset(), frozenset()),
              ("move", 49, "Work", "mb", frozenset(), frozenset()),
              ("flags", 0, "INBOX", "md", frozenset(), frozenset()),
              ("copy", 45, "Work", "mb", frozenset(), frozenset()),
              ("delete", 45, "INBOX", "md", frozenset(), frozenset())])
def test_operations_leave_disk_and_index_as_the_model_says(tmp_path_factory: pytest.TempPathFactory,
                                                           ops: list[tuple]) -> None:
    tmp = tmp_path_factory.mktemp("live")
    mx, model, _ = _setup(tmp, 4)
    appended = 0
    order = {label: i for i, label in enumerate(LABELS)}
    for op, pick, folder, label, on, off in ops:
        live = sorted(m for m, locs in model.items() if locs)
        mid = live[pick % len(live)] if live else None
        locs = sorted(model[mid], key=lambda loc: order[loc[0]]) if mid else []
        changes = {**{f: False for f in off}, **{f: True for f in on}}
        if op == "append" or mid is None:
            appended += 1
            data = mail.message(f"new {appended}", body="fresh\n>From quoted\n")
            assert mx.messages.append(data, folder, label, **{f"flag_{f}": 1 for f in on}) == {"success": True}
            model[message_id(data)] = [(label, folder, _kept(label, on))]
        elif op == "flags":
            if all(loc[0] == "em" for loc in locs):
                with pytest.raises(UnsupportedOperation):
                    mx.messages.set_flags(mid, **changes)
                continue
            answer = mx.messages.set_flags(mid, **changes)
            model[mid] = [(s, f, (fl - off) | on if s != "em" else fl) for s, f, fl in model[mid]]
            first = next(loc for loc in sorted(model[mid], key=lambda loc: order[loc[0]]) if loc[0] != "em")
            assert {k for k, v in answer["flags"].items() if v} == first[2]
        elif op in ("copy", "move"):
            src = locs[0]
            flags = (src[2] - off) | on if changes else src[2]
            assert mx.messages.copy(mid, folder, label, move=int(op == "move"),
                                    **{f"flag_{k}": int(v) for k, v in changes.items()}) == {"success": True}
            if op == "move":
                model[mid].remove(src)
            model[mid].append((label, folder, _kept(label, flags)))
        elif op == "delete":
            assert mx.messages.delete(mid) == {"success": True}
            model[mid] = []
        elif op == "add":
            home = locs[0][0]
            in_home = {f for s, f, _ in locs if s == home}
            assert mx.messages.update_folders(mid, add=folder)["success"]
            if folder not in in_home:
                model[mid].append((home, folder, locs[0][2]))
        elif op == "remove":
            home = locs[0][0]
            in_home = {f for s, f, _ in locs if s == home}
            if in_home <= {folder}:
                with pytest.raises(QueryError, match="last folder"):
                    mx.messages.update_folders(mid, remove=folder)
                continue
            assert mx.messages.update_folders(mid, remove=folder)["success"]
            model[mid] = [loc for loc in model[mid] if not (loc[0] == home and loc[1] == folder)]
    assert _disk(mx) == _expected(model)
    _check_index(mx, model)
    fresh = MailIndex(tmp / "fresh", pm=plugin_manager(entry_points=False))
    for row in mx.sources():
        fresh.add_source(row["label"], row["location"], row["type"], sync_all_folders=1, sync_flags=1)
    fresh.sync()
    _check_index(fresh, model)
    mx.close()
    fresh.close()
    shutil.rmtree(tmp)


def _check_index(mx: MailIndex, model: dict[str, list[Loc]]) -> None:
    present = {mid: locs for mid, locs in model.items() if locs}
    assert {m["message_id"] for m in mx.messages.iter()} == set(present)
    for mid, locs in present.items():
        got = mx.messages.get(mid)
        assert sorted(got["folders"]) == sorted({f for _, f, _ in locs})
        assert sorted(s["label"] for s in got["sources"]) == sorted({s for s, _, _ in locs})
    flagged = {mid for mid, locs in present.items() if any("flagged" in fl for s, _, fl in locs if s != "em")}
    assert {m["message_id"] for m in mx.messages.iter(folder="\\Flagged")} == flagged


def test_maildir_flags_are_the_info_part_and_mbox_flags_are_status_headers(tmp_path: Path) -> None:
    mx, model, messages = _setup(tmp_path, 3)
    md_mid, mb_mid = message_id(messages[0]), message_id(messages[-1])
    assert mx.messages.set_flags(md_mid, seen=1, answered=1, draft=1)["success"]
    names = [p.name for p in (tmp_path / "md" / "cur").iterdir()]
    assert len(names) == 2 and any(n.endswith(":2,DRS") for n in names)
    mx.messages.set_flags(mb_mid, seen=1, flagged=1)
    text = (tmp_path / "mb" / "INBOX").read_bytes()
    assert b"Status: RO\n" in text and b"X-Status: F\n" in text and text.startswith(b"From ")
    # flags never change identity: the rewritten message on disk still has its id, and the index still has it
    assert _disk(mx)[("mb", "INBOX", mb_mid, frozenset({"seen", "flagged"}))] == 1
    assert {m["message_id"] for m in mx.messages.iter()} == {message_id(m) for m in messages}
    assert mx.messages.flags(mb_mid)["flagged"] and not mx.messages.flags(mb_mid)["answered"]


def test_bad_parameters_and_read_only_refuse_before_touching_mail(tmp_path: Path) -> None:
    mx, model, messages = _setup(tmp_path, 2)
    mid = message_id(messages[0])
    before = _disk(mx)
    for call, param in ((lambda: mx.messages.set_flags(mid, starred=1), "starred"),
                        (lambda: mx.messages.set_flags(mid, seen=2), "seen"),
                        (lambda: mx.messages.copy(mid, ""), "dst_folder"),
                        (lambda: mx.messages.copy(mid, "A", flag_urgent=1), "flag_urgent"),
                        (lambda: mx.messages.copy(mid, "A", move=5), "move"),
                        (lambda: mx.messages.append(b"", "INBOX"), "message"),
                        (lambda: mx.messages.set_folders(mid, []), "folders"),
                        (lambda: mx.messages.set_folders(mid, [{"symbolic_name": "\\Nowhere"}]), "symbolic_name"),
                        (lambda: mx.messages.set_folders(mid, [{"label": "x"}]), "folders")):
        with pytest.raises(QueryError) as err:
            call()
        assert err.value.param == param
    assert mx.messages.append(b"Subject: x\n\nx\n", "INBOX", "em") == {"success": True}
    with pytest.raises(UnsupportedOperation, match="eml"):
        mx.messages.set_flags(message_id(b"Subject: x\n\nx\n"), seen=1)
    mx.close()
    ro = MailIndex(tmp_path / "idx", read_only=True, pm=plugin_manager(entry_points=False))
    for call in (lambda: ro.messages.set_flags(mid, seen=1), lambda: ro.messages.delete(mid),
                 lambda: ro.messages.move(mid, "Archive"), lambda: ro.messages.append(messages[0], "INBOX"),
                 lambda: ro.messages.update_folders(mid, add="X")):
        with pytest.raises(ReadOnlyIndex):
            call()
    assert _disk(ro) == before + Counter({("em", "INBOX", message_id(b"Subject: x\n\nx\n"), frozenset()): 1})


def test_the_cli_runs_live_operations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailindex.cli import main

    mx, model, messages = _setup(tmp_path, 2)
    mx.close()
    mid, idx = message_id(messages[0]), ["--index", str(tmp_path / "idx")]
    assert main([*idx, "flags", mid, "--flagged", "1"]) == 0
    assert "flagged" in capsys.readouterr().out
    assert main([*idx, "move", mid, "Archive", "--dst-source", "mb", "--json"]) == 0
    assert '"success": true' in capsys.readouterr().out
    assert main([*idx, "folders", mid, "--json"]) == 0
    assert '"Archive"' in capsys.readouterr().out
    (tmp_path / "new.eml").write_bytes(mail.message("appended"))
    assert main([*idx, "append", str(tmp_path / "new.eml"), "INBOX", "--dst-source", "md", "--flag-seen", "1"]) == 0
    assert main([*idx, "search", "--subject", "appended", "--json"]) == 0
    assert '"INBOX"' in capsys.readouterr().out.split("added")[-1]
    assert main([*idx, "delete", mid]) == 0
    assert main([*idx, "show", mid]) == 1
    assert "message not found" in capsys.readouterr().err


def test_mbox_locks_wait_for_a_live_holder_and_clear_a_dead_ones(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from mailindex.sources import mbox_writer

    mx, model, messages = _setup(tmp_path, 3)
    mid = message_id(messages[-1])
    lock = tmp_path / "mb" / "INBOX.lock"
    lock.write_bytes(b"999999999\n")  # above any pid_max: a writer that is gone
    assert mx.messages.set_flags(mid, seen=1)["success"]  # the crashed writer's lock was cleared
    assert not lock.exists()
    lock.write_bytes(b"%d\n" % os.getppid())  # a live process holds it
    monkeypatch.setattr(mbox_writer, "LOCK_TIMEOUT", 0.2)
    answer = mx.messages.set_flags(mid, seen=0)
    assert answer["success"] is False and "INBOX.lock is held by another program" in answer["connection_log"]
    assert mx.messages.flags(mid)["seen"]  # nothing was written


def _same_length(tag: str) -> bytes:
    """A message whose length does not depend on `tag` (one character), so another can take its place."""
    return (f"From: {tag}@example.com\nSubject: {tag}\nMessage-ID: <{tag}@rewrite.test>\n"
            f"Date: Tue, 01 Sep 2020 12:00:00 +0000\n\nbody {tag}\n").encode()


@pytest.mark.parametrize("move", [1, 0])
@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml"])
def test_a_message_rewritten_behind_the_index_is_neither_copied_nor_moved(tmp_path: Path, kind: str,
                                                                          move: int) -> None:
    """Another program rewrote the mail after the sync: the locator now holds other bytes. A copy or move
    of the indexed message is ConcurrentChange and writes nothing; before, it copied whatever lay there."""
    a, target, c, d = (_same_length(t) for t in "atcd")
    root = tmp_path / kind
    from_line = b"From x@example.com Sat Jan  1 00:00:00 2000\n"
    if kind == "maildir":
        mail.maildir(root, {"INBOX": [target, c]})
        victim = next(p for p in (root / "cur").iterdir() if p.read_bytes() == target)
    elif kind == "mbox":
        root.mkdir()
        victim = root / "INBOX"
        victim.write_bytes(b"".join(from_line + m + b"\n" for m in (a, target, c)))
    else:
        root.mkdir()
        victim = root / "target.eml"
        victim.write_bytes(target)
        (root / "c.eml").write_bytes(c)
    mx = MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False))
    mx.add_source("src", root, kind, sync_all_folders=1, sync_flags=1)
    mx.sync()
    # The rewrite keeps the file's name (and, for the mbox, puts c exactly where the target was).
    if kind == "mbox":
        victim.write_bytes(b"".join(from_line + m + b"\n" for m in (target, c, d)))
    else:
        victim.write_bytes(d)
    disk = sorted((str(p.relative_to(root)), p.read_bytes()) for p in root.rglob("*") if p.is_file())
    answer = mx.messages.copy(message_id(target), "Archive", move=move)
    assert answer["success"] is False and "changed since it was indexed" in answer["connection_log"], answer
    assert sorted((str(p.relative_to(root)), p.read_bytes()) for p in root.rglob("*") if p.is_file()) == disk
    # The failed operation's follow-up sync shows the mail as it now is; a Maildir file never changes under
    # its unique name (the spec), so a sync does not re-read one and still lists the target there.
    listed = Counter((m["email_message_id"], tuple(m["folders"])) for m in mx.messages.iter())
    now = {"maildir": ["t", "c"], "mbox": ["t", "c", "d"], "eml": ["c", "d"]}[kind]
    assert listed == Counter((f"<{t}@rewrite.test>", ("INBOX",)) for t in now)
    mx.close()
