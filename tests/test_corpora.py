"""Real mail from ../shared/corpora: every listed message is accounted for and reads back byte for byte."""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mailindex import MailIndex
from mailindex.plugins import plugin_manager
from mailindex.record import message_id_for, sha256_hex
from tests.thread_reference import read_mail, reference_threads

CORPORA = ["enron-2015-partial/maildir", "notmuch", "mail-parser", "cpython-test-email", "mimekit",
           "stalwart-mail-parser", "ruby-mail", "gmail-takeout-sample"]


@pytest.mark.parametrize("name", CORPORA)
def test_every_message_is_indexed_and_byte_exact(corpora: Path, tmp_path: Path, name: str) -> None:
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        src = mx.open_source(corpora / name)
        listed = {(c.name, e.key): e for c in src.containers() for e in src.entries(c.name)}
        report = mx.index(corpora / name, "c", sync_all_folders=1)
        assert report.unchanged == 0 and report.removed == 0
        rows = mx.store.db.execute("SELECT container, key, message, sha256 FROM locations").fetchall()
        assert {(c, k) for c, k, _, _ in rows} == set(listed), "a listed message is missing from the index"
        assert mx.messages.count() == len({m for _, _, m, _ in rows})
        on_disk: dict[int, set[bytes]] = {}
        for container, key, message, sha in rows:  # the bytes the index hashed are the bytes on disk
            data = src.read_bytes(listed[(container, key)].locator)
            assert sha256_hex(data) == sha
            on_disk.setdefault(message, set()).add(data)
        ids = dict(mx.store.db.execute("SELECT id, message_id FROM messages"))
        for message, copies in on_disk.items():  # `source` gives one of its copies, byte for byte
            assert mx.messages.source(ids[message]) in copies
        again = mx.sync("c")
        assert (again.added, again.updated, again.removed) == (0, 0, 0)


def _enron_oracle(root: Path) -> list[dict[str, object]]:
    """Each distinct Enron message read the simple way: stdlib headers of each file, deduplicated by bytes."""
    seen: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        seen.setdefault(hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest(), {
            "from": {a.lower() for _, a in email.utils.getaddresses(msg.get_all("From", []))},
            "to": {a.lower() for _, a in email.utils.getaddresses(msg.get_all("To", []))},
            "subject": re.sub(r"\r?\n", "", str(msg.get("Subject", ""))),  # RFC 5322 unfolding
            "date": int(email.utils.parsedate_to_datetime(msg["Date"]).timestamp()),
            "folder": path.parent.relative_to(root).as_posix(),
        })
    return list(seen.values())


def test_enron_hand_checked_queries(corpora: Path, tmp_path: Path) -> None:
    root = corpora / "enron-2015-partial" / "maildir"
    oracle = _enron_oracle(root)
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "enron", sync_all_folders=1)
        assert mx.messages.count() == len(oracle)
        sept = (1_000_000_000 - 1, 1_001_894_400)  # 2001-09-09 01:46:40 UTC to 2001-10-01 00:00 UTC
        checks: list[tuple[dict[str, object], Callable[[dict[str, object]], bool]]] = [
            ({"from": "lynn.blair@enron.com"}, lambda m: "lynn.blair@enron.com" in m["from"]),  # type: ignore[operator]
            ({"to": "lynn.blair@enron.com", "from": "john.buchanan@enron.com"},
             lambda m: "lynn.blair@enron.com" in m["to"] and "john.buchanan@enron.com" in m["from"]),  # type: ignore[operator]
            ({"subject": "/^RE: /"}, lambda m: str(m["subject"]).startswith("RE: ")),
            ({"subject": "/(?i)conference room eb\\d+/"},
             lambda m: re.search(r"(?i)conference room eb\d+", str(m["subject"])) is not None),
            ({"subject": "California"}, lambda m: "california" in str(m["subject"]).casefold()),
            ({"date_after": sept[0], "date_before": sept[1]}, lambda m: sept[0] < int(m["date"]) < sept[1]),  # type: ignore[call-overload]
        ]
        for params, wanted in checks:
            expected = sum(1 for m in oracle if wanted(m))
            assert expected > 0, params  # a check that finds nothing proves little
            assert mx.messages.count(**params) == expected, params
        sent = mx.messages.count(folder="\\Sent")
        folders = {f for m in mx.messages.iter(folder="\\Sent") for f in m["folders"]}
        assert sent > 0 and all(f.rsplit("/", 1)[-1] in ("sent_items", "_sent_mail", "sent") for f in folders)
        by_robert = mx.messages.count(**{"from": "robert.badeer@enron.com"})
        assert by_robert > 0
        assert by_robert == sum(1 for m in mx.messages.iter(email="robert.badeer@enron.com")
                                if m["addresses"]["from"]["email"] == "robert.badeer@enron.com")
        enron = mx.messages.count(email="enron.com")
        assert mx.messages.count() >= enron >= by_robert


def test_lkml_threads_end_to_end(corpora: Path, tmp_path: Path) -> None:
    """Indexed through the whole pipeline, each message's thread is its reference component."""
    root = corpora / "notmuch" / "lkml"
    files = sorted(p for p in (root / "cur").iterdir() if p.is_file())
    mails = [read_mail(p, message_id_for(p.read_bytes())) for p in files]
    components = {key: group for group in reference_threads(mails) for key in group}
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "lkml")
        assert mx.messages.count() == len(components)
        for m in mx.messages.iter(include_thread_size=1):
            assert m["thread_size"] == len(components[m["message_id"]])
        biggest = max(components.values(), key=len)
        member = next(iter(biggest))
        listed = {m["message_id"] for m in mx.messages.thread(member, limit=100)["messages"]}
        assert listed == set(biggest) and len(biggest) > 50
