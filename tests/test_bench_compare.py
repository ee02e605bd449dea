"""The comparison harness on a small generated Maildir: its hit counts must be the true answers.

Timings are not checked (speed is measured in benchmarks/, not in tests); the
answers are, against a brute-force read of every file. Peers take part when
they are installed; nothing is installed here.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import shutil
from pathlib import Path

import pytest

from benchmarks.compare import main, mail_size
from benchmarks.corpus import generate_maildir


def _headers(root: Path) -> list[tuple[str, int]]:
    """(lowercase From address, Date as Unix seconds) of every message file."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.parent.name in ("cur", "new") and not p.name.startswith("."):
            m = email.message_from_bytes(p.read_bytes(), policy=email.policy.compat32)
            out.append((email.utils.parseaddr(m["From"])[1].lower(),
                        email.utils.mktime_tz(email.utils.parsedate_tz(m["Date"]))))
    return out


def test_hit_counts_are_the_true_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus"
    generate_maildir(corpus, 300, 7, None)
    peers = [name for name in ("notmuch", "mu", "mairix") if shutil.which(name)]
    out = tmp_path / "results"
    assert main([str(corpus), "--runs", "1", "--query-runs", "1", "--no-install", "--out", str(out),
                 "--tools", ",".join(["mailindex", *peers]), "--work", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    (result_file,) = out.glob("*.json")
    result = json.loads(result_file.read_text())
    assert (result["corpus"]["messages"], result["corpus"]["bytes"]) == mail_size(corpus)
    assert sorted(result["tools"]) == sorted(["mailindex", *peers])

    mails = _headers(corpus)
    q = result["question_values"]
    (start, end), (y0, y1) = q["month"], q["year"]
    truth = {"sender": sum(f == q["sender"] for f, _ in mails),
             "month": sum(start <= d < end for _, d in mails),
             "sender_and_dates": sum(f == q["sender"] and y0 <= d < y1 for f, d in mails)}
    assert len(mails) == result["corpus"]["messages"] and truth["sender"] > 0
    for answers in (result["tools"]["mailindex"]["queries"], result["mailindex_api"]):
        assert {k: answers[k]["hits"] for k in truth} == truth
    for key in ("body_word", "phrase"):  # chosen from the text, so they hit; the CLI and the API agree
        assert result["tools"]["mailindex"]["queries"][key]["hits"] == result["mailindex_api"][key]["hits"] > 0
    for peer in peers:
        assert result["tools"][peer]["queries"]["sender"]["hits"] == truth["sender"]
    assert "query p50 / p95 ms, hits" in printed and f"{truth['sender']:,}" in printed
