"""The real-mail harness on a tiny Maildir written here: its row must give the true counts.

Timings are not checked (speed is measured in benchmarks/, not in tests). The
ingest runs in a child process, as in a real run, with one worker.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.realmail import MBOXRD_FROM, run, table, write_mboxrd

GOOD = 3


def _maildir(root: Path) -> Path:
    """GOOD messages in cur/ and one file that is no mail (no header fields at all) in new/."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    for i in range(GOOD):
        (root / "cur" / f"{i}.test:2,S").write_bytes(
            f"From: Sender {i} <sender{i}@example.org>\nTo: someone@example.org\nSubject: message {i}\n"
            f"Date: Mon, 1 Jan 2024 10:0{i}:00 +0000\nMessage-ID: <m{i}@example.org>\n\n"
            f"body {i}\nFrom here on, a line an mbox would escape.\n".encode())
    (root / "new" / "broken.test").write_bytes(b"this is not a mail message\n")
    return root


def test_row_counts_a_small_maildir_after_an_aborted_corpus(tmp_path: Path) -> None:
    maildir = _maildir(tmp_path / "mail")
    not_mail = tmp_path / "not-mail"
    (not_mail / "a").mkdir(parents=True)
    (not_mail / "a" / "data.bin").write_bytes(b"\x00\x01")
    result = run([not_mail, maildir], workers=1, keep=tmp_path / "indexes")
    failed, row = result["corpora"]

    assert failed["aborted"] == 1 and failed["error"]  # recorded, and the run went on
    assert (row["files"], row["messages"], row["indexed"], row["aborted"]) == (GOOD + 1, GOOD + 1, GOOD, 0)
    assert sum(row["quarantined"].values()) == 1 and row["error"] == "" and row["read_error"] == ""
    assert (row["count"], row["listed"], row["count_equals_listed"]) == (GOOD, GOOD, True)
    assert row["index_bytes"] > 0 and row["peak_rss_mb"] > 0
    assert (tmp_path / "indexes" / "02-mail" / "meta.sqlite").exists()  # --keep keeps it

    lines = table(result).splitlines()
    cells = lines[3].split()  # the title, the header, then one row per corpus
    assert cells[:7] == ["mail", "4", "4", "3", "1", "0", "0"] and cells[-1] == "yes"
    assert any(line.startswith("not-mail: aborted: ") for line in lines)


def test_mboxrd_escapes_from_lines(tmp_path: Path) -> None:
    maildir = _maildir(tmp_path / "mail")
    out = tmp_path / "all.mbox"
    assert write_mboxrd(maildir, out) == GOOD + 1
    data = out.read_bytes()
    assert data.startswith(MBOXRD_FROM) and data.count(MBOXRD_FROM) == GOOD + 1
    assert data.count(b"\n>From here on") == GOOD and b"\nFrom here" not in data
    assert data.endswith(b"this is not a mail message\n\n")
