"""The process pool (workers > 1, past PARALLEL_MIN messages) indexes exactly what one process indexes.

The corpus is generated, so it is always there: CI runs the parallel path on every stop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.corpus import generate_maildir
from mailindex import MailIndex, pool, prepare, sync
from mailindex.plugins import plugin_manager
from tests.reference import message_id

COUNT = sync.PARALLEL_MIN + 500
# Files every worker must judge alike: the first two are no mail (quarantined, not indexed), NULs are mail.
HOSTILE = {"no-header": b"just a line\n", "junk": bytes(range(256)) * 4,
           "nuls": b"From: a@\x00b.c\nSubject: \x00\n\n\x00\n"}
NOT_MAIL = {f"1.{name}.host": prepare.not_mail(HOSTILE[name]) for name in ("junk", "no-header")}


@pytest.fixture(scope="module")
def maildir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parallel") / "md"
    generate_maildir(root, COUNT, seed=3)
    for name, data in HOSTILE.items():
        (root / "new" / f"1.{name}.host").write_bytes(data)
    return root


def _on_disk(root: Path) -> set[str]:
    """The ids of every message file, by an independent walk and the README's identity rule."""
    ids = set()
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) in ("cur", "new"):
            ids.update(message_id(Path(dirpath, f).read_bytes()) for f in files)
    return ids


def _everything(mx: MailIndex) -> dict[str, Any]:
    """Every answer the index gives about its messages, apart from when it indexed them."""
    messages = [{k: v for k, v in m.items() if k != "date_indexed"}
                for m in mx.messages.iter(include_flags=1, include_thread_size=1)]
    return {"messages": messages,
            "contacts": mx.contacts.list(limit=100, sort_by="email"),
            "quarantine": sorted((q["key"], q["error"]) for q in mx.quarantine()),
            "threads": sorted(len(mx.messages.thread(m["message_id"])["messages"]) for m in messages[::97])}


@pytest.fixture(scope="module")
def indexed(maildir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, tuple[Any, dict]]]:
    pools: list[int] = []
    run = pool.Pool.run

    def counting_run(self: pool.Pool, chunks: Any) -> Any:
        pools.append(self.workers)
        return run(self, chunks)

    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pool.Pool, "run", counting_run)
        for workers in (1, 2):
            with MailIndex(tmp_path_factory.mktemp(f"idx{workers}"), pm=plugin_manager(entry_points=False)) as mx:
                report = mx.index(str(maildir), "md", type="maildir", workers=workers)
                out[workers] = (report, _everything(mx))
    assert pools == [2], "workers=2 past PARALLEL_MIN must use the process pool, workers=1 must not"
    return out


def test_the_pool_indexes_every_message_on_disk(indexed: dict[int, tuple[Any, dict]], maildir: Path) -> None:
    report, answers = indexed[2]
    on_disk = _on_disk(maildir)
    assert len(on_disk) == COUNT + len(HOSTILE)
    not_mail = {message_id(HOSTILE["junk"]), message_id(HOSTILE["no-header"])}
    assert (report.added, report.failed, report.quarantined, report.skipped) == (len(on_disk) - 2, 2, 2, {})
    assert {m["message_id"] for m in answers["messages"]} == on_disk - not_mail
    assert answers["quarantine"] == sorted(NOT_MAIL.items())


def test_the_pool_gives_the_same_answers_as_one_process(indexed: dict[int, tuple[Any, dict]]) -> None:
    (one, serial), (two, parallel) = indexed[1], indexed[2]
    assert (one.added, one.failed, one.quarantined) == (two.added, two.failed, two.quarantined)
    for what in serial:
        assert parallel[what] == serial[what], what
