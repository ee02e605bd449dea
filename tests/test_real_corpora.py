"""The large public corpora (benchmarks/README.md, "Real mail"), when built: each indexes whole.

Set MAILINDEX_REAL_CORPORA to the directory that holds them under the names
below; each absent one is skipped, saying so. They are too large to ship, and
take minutes: run them before any claim about ingest on real mail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.realmail import measure
from mailindex.sources.base import SKIP_NOT_MAIL

ENV = "MAILINDEX_REAL_CORPORA"
LARGE = ["btrfs", "usrp", "i2c.mbox", "enron/maildir", "rmbox", "spamassassin"]


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_a_large_real_corpus_indexes_without_abort_and_agrees(tmp_path: Path, name: str) -> None:
    root = os.environ.get(ENV)
    if not root:
        pytest.skip(f"real corpora absent: {ENV} is not set (build them as benchmarks/README.md says)")
    path = Path(root) / name
    if not path.exists():
        pytest.skip(f"real corpora absent: {path} is not there")
    row = measure(path, tmp_path / "idx", None)
    assert (row["aborted"], row["error"], row["read_error"]) == (0, "", "")
    # No message file of a real archive is taken for a file that is no mail.
    assert not any(reason.startswith(SKIP_NOT_MAIL) for reason in row["quarantined"]), row["quarantined"]
    assert row["count_equals_listed"] is True
    assert 0 < row["count"] <= row["messages"]  # copies of one message are one message
