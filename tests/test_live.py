"""Live operations on Maildir, mbox and .eml sources, checked against a model and against the disk.

The property: after any sequence of flag changes, copies, moves, deletes,
appends and folder changes across three sources of one account,
- the mail on disk (read back by scanning every source, message by message)
  is exactly what a simple model of locations says, and
- the index answers exactly what that model says (folders, sources, count),
  as an index built afresh from the same mail does.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailindex import MailIndex, QueryError, ReadOnlyIndex, UnsupportedOperation
from mailindex.plugins import plugin_manager
from mailindex.record import message_id_for
from tests import mail

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
    model = {message_id_for(m): [("md" if i <= n // 2 else "mb", "INBOX", frozenset())] for i, m in enumerate(messages)}
    return mx, model, messages


def _disk(mx: MailIndex) -> Counter[tuple[str, str, str, frozenset[str]]]:
    """(label, folder, message_id, flags) of every message file or mbox entry, read from the sources directly."""
    out: Counter[tuple[str, str, str, frozenset[str]]] = Counter()
    for row in mx.sources():
        src = mx.open_source(row["location"], row["type"])
        for c in src.containers():
            for e in src.entries(c.name):
                out[(row["label"], e.folders[0], message_id_for(src.read_bytes(e.locator)), e.flags)] += 1
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
            model[message_id_for(data)] = [(label, folder, _kept(label, on))]
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
    md_mid, mb_mid = message_id_for(messages[0]), message_id_for(messages[-1])
    assert mx.messages.set_flags(md_mid, seen=1, answered=1, draft=1)["success"]
    names = [p.name for p in (tmp_path / "md" / "cur").iterdir()]
    assert len(names) == 2 and any(n.endswith(":2,DRS") for n in names)
    mx.messages.set_flags(mb_mid, seen=1, flagged=1)
    text = (tmp_path / "mb" / "INBOX").read_bytes()
    assert b"Status: RO\n" in text and b"X-Status: F\n" in text and text.startswith(b"From ")
    assert mx.messages.get(mb_mid)["message_id"] == mb_mid  # flags never change identity
    assert mx.messages.flags(mb_mid)["flagged"] and not mx.messages.flags(mb_mid)["answered"]


def test_bad_parameters_and_read_only_refuse_before_touching_mail(tmp_path: Path) -> None:
    mx, model, messages = _setup(tmp_path, 2)
    mid = message_id_for(messages[0])
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
        mx.messages.set_flags(message_id_for(b"Subject: x\n\nx\n"), seen=1)
    mx.close()
    ro = MailIndex(tmp_path / "idx", read_only=True, pm=plugin_manager(entry_points=False))
    for call in (lambda: ro.messages.set_flags(mid, seen=1), lambda: ro.messages.delete(mid),
                 lambda: ro.messages.move(mid, "Archive"), lambda: ro.messages.append(messages[0], "INBOX"),
                 lambda: ro.messages.update_folders(mid, add="X")):
        with pytest.raises(ReadOnlyIndex):
            call()
    assert _disk(ro) == before + Counter({("em", "INBOX", message_id_for(b"Subject: x\n\nx\n"), frozenset()): 1})


def test_the_cli_runs_live_operations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailindex.cli import main

    mx, model, messages = _setup(tmp_path, 2)
    mx.close()
    mid, idx = message_id_for(messages[0]), ["--index", str(tmp_path / "idx")]
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
    mid = message_id_for(messages[-1])
    lock = tmp_path / "mb" / "INBOX.lock"
    lock.write_bytes(b"999999999\n")  # above any pid_max: a writer that is gone
    assert mx.messages.set_flags(mid, seen=1)["success"]  # the crashed writer's lock was cleared
    assert not lock.exists()
    lock.write_bytes(b"%d\n" % os.getppid())  # a live process holds it
    monkeypatch.setattr(mbox_writer, "LOCK_TIMEOUT", 0.2)
    answer = mx.messages.set_flags(mid, seen=0)
    assert answer["success"] is False and "INBOX.lock is held by another program" in answer["connection_log"]
    assert mx.messages.flags(mid)["seen"]  # nothing was written
