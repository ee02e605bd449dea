"""Real mail from ../shared/corpora: every listed message is accounted for and reads back byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailindex import MailIndex
from mailindex.plugins import plugin_manager
from mailindex.record import sha256_hex

CORPORA = ["enron-2015-partial/maildir", "notmuch", "mail-parser", "cpython-test-email", "mimekit",
           "stalwart-mail-parser", "ruby-mail", "gmail-takeout-sample"]


@pytest.mark.parametrize("name", CORPORA)
def test_every_message_is_indexed_and_byte_exact(corpora: Path, tmp_path: Path, name: str) -> None:
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        src = mx.open_source(corpora / name)
        listed = {(c.name, e.key): e for c in src.containers() for e in src.entries(c.name)}
        report = mx.index(corpora / name, "c")
        assert report.unchanged == 0 and report.removed == 0
        rows = mx.store.db.execute("SELECT container, key, message, sha256 FROM locations").fetchall()
        assert {(c, k) for c, k, _, _ in rows} == set(listed), "a listed message is missing from the index"
        assert mx.messages.count() == len({m for _, _, m, _ in rows})
        for container, key, _, sha in rows:  # the bytes the index hashed are the bytes on disk
            assert sha256_hex(src.read_bytes(listed[(container, key)].locator)) == sha
        again = mx.sync("c")
        assert (again.added, again.updated, again.removed) == (0, 0, 0)


def test_enron_hand_checked_queries(corpora: Path, tmp_path: Path) -> None:
    root = corpora / "enron-2015-partial" / "maildir"
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "enron")
        sent = mx.messages.count(folder="\\Sent")
        folders = {f for m in mx.messages.iter(folder="\\Sent") for f in m["folders"]}
        assert sent > 0 and all(f.rsplit("/", 1)[-1] in ("sent_items", "_sent_mail", "sent") for f in folders)
        by_robert = mx.messages.count(**{"from": "robert.badeer@enron.com"})
        assert by_robert > 0
        assert by_robert == sum(1 for m in mx.messages.iter(email="robert.badeer@enron.com")
                                if m["addresses"]["from"]["email"] == "robert.badeer@enron.com")
        enron = mx.messages.count(email="enron.com")
        assert mx.messages.count() >= enron >= by_robert
