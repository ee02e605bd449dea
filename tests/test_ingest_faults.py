"""Nothing in one message's content or name stops a sync: each failure is that message's, named and counted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailindex import MailIndex
from mailindex import sync as sync_module
from mailindex.plugins import plugin_manager
from mailindex.prepare import FAULT_ENV
from tests import mail
from tests.reference import message_id

MARKER = "X-Test-Fault: this one"


def _box(tmp_path: Path, n: int = 12) -> tuple[Path, list[bytes]]:
    messages = [mail.message(f"message {i}", date=1_500_000_000 + i) for i in range(n)]
    messages[5] = mail.message("the culprit", X_Test_Fault="this one")
    return mail.maildir(tmp_path / "md", {"INBOX": messages}), messages


def _agree(mx: MailIndex) -> list[str]:
    """The search index and the records list the same messages, each once."""
    listed = [m["message_id"] for m in mx.messages.iter()]
    assert mx.messages.count() == len(listed) == len(set(listed)) == mx.store.count_messages()
    return listed


@pytest.mark.parametrize("stage", ["parse", "encode", "document", "rows"])
def test_a_stage_failing_for_one_message_quarantines_it_and_indexes_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    root, messages = _box(tmp_path)
    monkeypatch.setenv(FAULT_ENV, f"{stage}:{MARKER}")
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        report = mx.index(root, "md", workers=1)
        assert (report.added, report.failed) == (12, 1)
        assert set(_agree(mx)) == {message_id(m) for m in messages}
        [q] = mx.quarantine()
        assert q["indexed"] is True and q["error"].startswith(f"{stage} failed: RuntimeError: injected fault")
        culprit = mx.messages.get(message_id(messages[5]))
        assert culprit["subject"] == ""  # recorded from what could be read: identity, hash and size
        assert mx.messages.source(culprit["message_id"]) == messages[5]
        monkeypatch.delenv(FAULT_ENV)
        again = mx.sync("md")
        assert (again.unchanged, again.failed, again.quarantined) == (12, 0, 1)  # recorded, not retried for ever


def test_a_read_failure_is_quarantined_without_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, messages = _box(tmp_path)
    monkeypatch.setenv(FAULT_ENV, f"read:{MARKER}")
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        report = mx.index(root, "md", workers=1)
        assert (report.added, report.failed) == (11, 1)
        assert set(_agree(mx)) == {message_id(m) for i, m in enumerate(messages) if i != 5}
        [q] = mx.quarantine()
        assert q["indexed"] is False and q["error"].startswith("read failed: RuntimeError")


def test_a_worker_that_dies_is_replaced_and_only_its_culprit_is_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, messages = _box(tmp_path, n=40)
    monkeypatch.setattr(sync_module, "PARALLEL_MIN", 10)
    monkeypatch.setattr(sync_module, "CHUNK", 4)
    monkeypatch.setenv(FAULT_ENV, f"die:{MARKER}")
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        report = mx.index(root, "md", workers=2)
        assert (report.added, report.failed) == (39, 1)
        assert set(_agree(mx)) == {message_id(m) for i, m in enumerate(messages) if i != 5}
        [q] = mx.quarantine()
        assert q["error"].startswith("worker died") and q["indexed"] is False


def test_a_failed_records_transaction_leaves_search_and_records_in_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, messages = _box(tmp_path)

    def broken(*args: object) -> None:
        raise OSError("disk full")

    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.add_source("md", root)
        with monkeypatch.context() as m:
            m.setattr(sync_module.SourceSync, "_record", broken)
            with pytest.raises(OSError):
                mx.sync("md", workers=1)
        assert _agree(mx) == []  # Tantivy had the batch; it was taken back out
        assert mx.sync("md", workers=1).added == 12
        assert set(_agree(mx)) == {message_id(m) for m in messages}


# -- real-mail classes, as small fixtures of our own ----------------------------------

# The lore linux-btrfs spam that aborted whole syncs: encoded-words that split a UTF-8 character,
# inside address local parts, so the stdlib's address parser left lone surrogates.
SPLIT_WORD_SPAM = (
    b"From: spammer@example.net\r\n"
    b"To:     list@example.org,\r\n"
    b"        =?utf-8?Q?=D0=97=D0=B4=D1=80=D0=B0=D0=B2=D1=81=D1=82=D0?=@localhost.localdomain,\r\n"
    b"        _=D0=92=D0=B0=D1=81?=@=?utf-8?Q?=B2=D1=83=D0=B9=D1=82=D0=B5.localdomain,\r\n"
    b"        =?utf-8?Q?_=D0=B8=D0=BD=D1=82=D0=B5=D1=80=D0=B5=D1=81=D1?=@localhost.localdomain\r\n"
    b"Subject: =?utf-8?Q?=D0=9F=D1=80=D0=B8?=\r\n"
    b"Date: Mon, 1 Jan 2018 00:00:00 +0000\r\n\r\nbody\r\n"
)


def test_split_encoded_words_in_addresses_index(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [SPLIT_WORD_SPAM, mail.message("fine")]})
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        report = mx.index(root, "md", workers=1)
        assert (report.added, report.failed) == (2, 0)
        assert len(_agree(mx)) == 2
        spam = mx.messages.get(message_id(SPLIT_WORD_SPAM))
        assert spam["subject"] == "При"
        assert "list@example.org" in [a["email"] for a in spam["addresses"]["to"]]
        assert mx.messages.count(to="list@example.org") == 1


def test_file_names_that_are_not_utf8_are_indexed_and_read_back(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("plain")]})
    odd = mail.message("latin-1 file name")
    odd_name = os.fsdecode(b"1600000000.M9P9.h\xf6st\xff:2,S")
    (root / "cur" / odd_name).write_bytes(odd)
    tree = tmp_path / "tree" / os.fsdecode(b"caf\xe9")
    tree.mkdir(parents=True)
    (tree / os.fsdecode(b"n\xe9.eml")).write_bytes(odd)
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        assert mx.index(root, "md", workers=1).added == 2
        assert mx.index(tmp_path / "tree", "tree", workers=1).updated == 1  # the same message, a second place
        assert len(_agree(mx)) == 2
        mid = message_id(odd)
        assert mx.messages.source(mid) == odd
        assert sorted(f["name"] for f in mx.messages.folders(mid)) == ["INBOX", "café"]
        assert mx.messages.count(folder="café") == 1
        assert mx.quarantine() == []
        again = mx.sync("md", workers=1)
        assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 2)
        (root / "cur" / odd_name).unlink()
        assert mx.sync("md", workers=1).updated == 1  # still in the tree
        assert [f["name"] for f in mx.messages.folders(mid)] == ["café"]


# -- nothing left out silently ---------------------------------------------------------

def test_every_folder_is_indexed_by_default_and_left_out_folders_are_counted(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("keep")],
                                          "Trash": [mail.message(f"trash {i}") for i in range(3)]})
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        assert mx.index(root, "all", workers=1).added == 4
        assert mx.messages.count(folder="Trash") == 3
        mx.add_source("some", root, sync_all_folders=0)
        first = mx.sync("some", workers=1)
        assert first.skipped == {sync_module.FOLDER_LEFT_OUT: 3}
        again = mx.sync("some", workers=1)
        assert again.skipped == first.skipped and again.to_dict()["skipped"] == first.skipped


def test_files_that_are_not_mail_are_counted_by_reason_on_every_sync(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "user" / "inbox").mkdir(parents=True)
    (tree / "user" / "inbox" / "1.").write_bytes(mail.message("one"))
    (tree / "user" / "notes.csv").write_bytes(b"a,b,c\n1,2,3\n")
    (tree / "user" / "export.msg").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    (tree / "user" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        first = mx.index(tree, "t", workers=1)
        assert first.added == 1
        assert first.skipped == {"not RFC 822": 1, "Outlook .msg": 1, "store metadata": 1}
        assert mx.sync("t", workers=1).skipped == first.skipped
