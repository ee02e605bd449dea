"""MailIndex end to end: sources in, messages out, incremental and safe."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mailindex import (IndexLocked, IntegrityError, MailIndex, MessageNotFound, QueryError, ReadOnlyIndex,
                       SourceFormatError, SourceNotFound)
from mailindex.errors import IndexClosed, IndexNotFound, IndexThreadError
from mailindex.plugins import plugin_manager
from tests import mail
from tests.reference import message_id


def _all(mx: MailIndex, **filters: object) -> list[dict]:
    return list(mx.messages.iter(**filters))


def test_maildir_folders_and_fields(mx: MailIndex, tmp_path: Path) -> None:
    shared = mail.message("in two folders", date=1_500_000_000)
    root = mail.maildir(tmp_path / "md", {
        "INBOX": [mail.message("first", date=1_600_000_000), shared],
        "Sent": [mail.message("sent one", sender="me@example.com", to="bob@example.org")],
        "Work/Project": [shared],
    })
    report = mx.index(root, "personal")
    assert (report.added, report.failed, report.removed) == (3, 0, 0)
    msgs = {m["subject"]: m for m in _all(mx)}
    assert sorted(msgs) == ["first", "in two folders", "sent one"]
    assert sorted(msgs["in two folders"]["folders"]) == ["INBOX", "Work/Project"]
    assert msgs["sent one"]["folders"] == ["Sent"]
    assert msgs["first"]["date"] == 1_600_000_000
    assert msgs["first"]["addresses"]["from"]["email"] == "alice@example.com"
    assert msgs["first"]["sources"] == [{"label": "personal", "resource_url": root.resolve().as_uri()}]
    assert [m["subject"] for m in _all(mx, folder="\\Sent")] == ["sent one"]
    assert [m["subject"] for m in _all(mx, folder="Work/Project")] == ["in two folders"]
    assert mx.messages.count(**{"from": "me@example.com"}) == 1


def test_ids_are_stable_across_indexes(tmp_path: Path) -> None:
    messages = [mail.message(f"m{i}") for i in range(5)]
    root = mail.maildir(tmp_path / "md", {"INBOX": messages})
    ids = []
    for name in ("a", "b"):
        with MailIndex(tmp_path / name, pm=plugin_manager(entry_points=False)) as mx:
            mx.index(root)
            ids.append(sorted(m["message_id"] for m in _all(mx)))
    assert ids[0] == ids[1] == sorted(message_id(m) for m in messages)  # the README's rule, not just any hex


def test_incremental_sync(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message(f"m{i}", date=1_600_000_000 + i) for i in range(6)],
                                          "Archive": []})
    assert mx.index(root, "p").added == 6
    again = mx.sync("p")
    assert (again.added, again.updated, again.removed) == (0, 0, 0)

    new = root / "cur" / "extra:2,S"
    new.write_bytes(mail.message("extra"))
    assert mx.sync("p").added == 1

    victim = sorted((root / "cur").iterdir())[0]
    before = {m["message_id"]: m for m in _all(mx)}
    # Move one message to another folder: same id, same date_indexed, new folder.
    moved = sorted((root / "cur").iterdir())[1]
    target = root / ".Archive" / "cur" / moved.name
    os.rename(moved, target)
    victim.unlink()
    report = mx.sync("p")
    assert report.removed == 1
    after = {m["message_id"]: m for m in _all(mx)}
    assert len(after) == 6
    moved_ids = [mid for mid, m in after.items() if m["folders"] == ["Archive"]]
    assert len(moved_ids) == 1
    assert after[moved_ids[0]]["date_indexed"] == before[moved_ids[0]]["date_indexed"]
    assert mx.messages.count(folder="Archive") == 1
    assert mx.messages.count() == 6


def test_flags_are_read_live_and_follow_renames(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("flag me")]}, flags="S")
    mx.index(root, "p", sync_flags=1)
    (mid,) = [m["message_id"] for m in _all(mx)]
    assert mx.messages.get(mid, include_flags=1)["flags"]["seen"] is True
    (path,) = (root / "cur").iterdir()
    path.rename(path.with_name(path.name.split(":2,")[0] + ":2,FS"))  # another program flags it
    flags = mx.messages.get(mid, include_flags=1)["flags"]
    assert flags["flagged"] and flags["seen"]
    mx.sync("p")
    assert [m["message_id"] for m in _all(mx, folder="\\Flagged")] == [mid]


def test_source_is_byte_exact_and_verified(mx: MailIndex, tmp_path: Path) -> None:
    data = mail.message("exact", body="line one\r\nline two\n")
    root = mail.maildir(tmp_path / "md", {"INBOX": [data]})
    mx.index(root, "p")
    (m,) = _all(mx)
    assert mx.messages.source(m["message_id"]) == data
    (path,) = (root / "cur").iterdir()
    path.write_bytes(data.replace(b"line one", b"line 1!!"))
    with pytest.raises(IntegrityError):
        mx.messages.source(m["message_id"])


def test_lookup_by_email_message_id_and_not_found(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("x", msgid="<abc@test>")]})
    mx.index(root, "p")
    assert mx.messages.get("<abc@test>")["subject"] == "x"
    with pytest.raises(MessageNotFound):
        mx.messages.get("0" * 24)


def test_mbox_and_eml_sources(mx: MailIndex, tmp_path: Path) -> None:
    mail.mbox(tmp_path / "archive.mbox", [mail.message("from mbox", body="From here on\n")])
    eml = tmp_path / "exports" / "projects"
    eml.mkdir(parents=True)
    (eml / "one.eml").write_bytes(mail.message("from eml"))
    assert mx.index(tmp_path / "archive.mbox", "archive").added == 1
    assert mx.index(tmp_path / "exports", "exports").added == 1
    by_source = {m["subject"]: m for m in _all(mx)}
    assert [s["label"] for s in by_source["from mbox"]["sources"]] == ["archive"]
    assert by_source["from eml"]["folders"] == ["projects"]
    assert mx.messages.count(source="exports") == 1
    body = mx.messages.get(by_source["from mbox"]["message_id"], include_body=1)["body"]
    assert body[0]["content"].startswith("From here on")


def test_unparseable_mail_is_recorded_and_the_batch_goes_on(mx: MailIndex, tmp_path: Path) -> None:
    tree = tmp_path / "eml" / "inbox"
    tree.mkdir(parents=True)
    (tree / "good.eml").write_bytes(mail.message("good"))
    (tree / "empty.eml").write_bytes(b"")
    (tree / "garbage.eml").write_bytes(bytes(range(256)) * 40)
    report = mx.index(tmp_path / "eml", "e")
    assert report.failed >= 1
    assert mx.messages.count(subject="good") == 1
    errors = {q["key"]: q for q in mx.quarantine()}
    assert any("empty" in k for k in errors)
    assert all(q["error"] for q in errors.values())


def test_bad_locations_and_labels(mx: MailIndex, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound):
        mx.add_source("x", tmp_path / "missing")
    (tmp_path / "notmail.bin").write_bytes(b"\x00\x01 not mail at all")
    with pytest.raises(SourceFormatError):
        mx.add_source("x", tmp_path / "notmail.bin")
    root = mail.maildir(tmp_path / "md", {"INBOX": []})
    with pytest.raises(QueryError):
        mx.add_source("bad label!", root)
    mx.add_source("ok", root)
    with pytest.raises(QueryError):
        mx.add_source("ok", root)


def test_read_only_refuses_writes(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("ro")]})
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "p")
    with MailIndex(tmp_path / "idx", read_only=True, pm=plugin_manager(entry_points=False)) as ro:
        assert ro.messages.count() == 1
        with pytest.raises(ReadOnlyIndex):
            ro.sync("p")
        with pytest.raises(ReadOnlyIndex):
            ro.add_source("q", root)
    with pytest.raises(IndexNotFound, match="^no index at .*nothing$"):
        MailIndex(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


def _one_message(mx: MailIndex, tmp_path: Path) -> str:
    mx.index(mail.maildir(tmp_path / "md", {"INBOX": [mail.message("only")]}), "p")
    return str(mx.messages.list()[0]["message_id"])


@pytest.mark.parametrize("read_only", [False, True])
def test_use_after_close_raises_index_closed(tmp_path: Path, read_only: bool) -> None:
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mid = _one_message(mx, tmp_path)
    mx = MailIndex(tmp_path / "idx", read_only=read_only, pm=plugin_manager(entry_points=False))
    account = mx.default_account
    assert account.messages.count() == 1
    mx.close()
    mx.close()  # again: nothing
    uses: list[Callable[[], object]] = [lambda: mx.messages.list(), lambda: mx.messages.get(mid),
                                        account.messages.count, account.messages.list, lambda: mx.sync("p"),
                                        mx.accounts.list]
    for use in uses:
        with pytest.raises(IndexClosed, match="^this MailIndex is closed$"):
            use()


def test_use_from_another_thread_raises_index_thread_error(mx: MailIndex, tmp_path: Path) -> None:
    mid = _one_message(mx, tmp_path)
    account = mx.default_account
    raised: list[BaseException | None] = []

    def elsewhere() -> None:
        for use in (lambda: mx.messages.list(), lambda: mx.messages.source(mid), account.messages.count, mx.close):
            try:
                use()
                raised.append(None)
            except BaseException as exc:  # noqa: BLE001 (what was raised is the finding)
                raised.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert [type(e) for e in raised] == [IndexThreadError] * 4
    assert str(raised[0]) == "this MailIndex was opened in another thread: open one MailIndex per thread"
    assert mx.messages.count() == 1  # the refused close closed nothing: still open in its own thread


@pytest.mark.parametrize("call,param", [
    (lambda mx: mx.messages.list(offset=10**20), "offset"),
    (lambda mx: mx.contacts.list(offset=10**20), "offset"),
    (lambda mx: mx.contacts.list(active_before=10**20), "active_before"),
    (lambda mx: mx.contacts.list(active_after=-(10**20)), "active_after"),
    (lambda mx: mx.accounts.list(offset=10**20), "offset"),
], ids=["messages offset", "contacts offset", "active_before", "active_after", "accounts offset"])
def test_integers_beyond_64_bits_are_query_errors(mx: MailIndex, call: Callable[[MailIndex], object],
                                                  param: str) -> None:
    with pytest.raises(QueryError) as raised:
        call(mx)
    assert raised.value.param == param and "must be at" in raised.value.problem


def test_second_writer_gets_a_clear_error(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("w")]})
    mx.add_source("p", root)
    held = mx.tantivy.writer()
    try:
        with MailIndex(mx.path, pm=plugin_manager(entry_points=False)) as other:
            with pytest.raises(IndexLocked):
                other.sync("p")
            assert other.messages.count() == 0  # readers keep answering
    finally:
        held.close()
    assert mx.sync("p").added == 1


def _colliding_pair() -> tuple[bytes, bytes]:
    """Two messages with the same date whose sort keys would collide (same 20 id bits): a birthday search."""
    seen: dict[str, bytes] = {}
    for n in range(20_000):
        data = mail.message(f"tie {n}", date=1_600_000_000, msgid=f"<tie{n}@test.example>")
        bits = message_id(data)[:5]
        if bits in seen:
            return seen[bits], data
        seen[bits] = data
    raise AssertionError("no collision in 20,000 messages")


@pytest.mark.parametrize("together", [True, False])
def test_colliding_sort_keys_are_moved_apart(tmp_path: Path, together: bool) -> None:
    first, second = _colliding_pair()
    root = mail.maildir(tmp_path / "md", {"INBOX": [first, second] if together else [first]})
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "box")
        if not together:
            mail.maildir(tmp_path / "md", {"INBOX": [second]})
            mx.sync("box")
        keys = [row[0] for row in mx.store.db.execute("SELECT sort_key FROM messages")]
        assert len(keys) == len(set(keys)) == 2
        assert {m["message_id"] for m in mx.messages.list()} == {message_id(first), message_id(second)}
        assert [m["message_id"] for m in mx.messages.list(sort_order="asc")] == \
            [m["message_id"] for m in mx.messages.list()][::-1]


def test_an_offset_or_limit_past_the_index_answers_nothing_rather_than_aborting(tmp_path: Path) -> None:
    """Tantivy sizes its result buffer by offset + limit: 10**12 used to abort the process (a failed
    allocation, SIGABRT); in a child, so that a regression fails this test rather than the whole run."""
    code = (
        "import sys\n"
        "from mailindex import MailIndex\n"
        "from mailindex.plugins import plugin_manager\n"
        "from tests import mail\n"
        "from pathlib import Path\n"
        "root = mail.maildir(Path(sys.argv[1]) / 'md', {'INBOX': [mail.message('a'), mail.message('b')]})\n"
        "mx = MailIndex(Path(sys.argv[1]) / 'idx', pm=plugin_manager(entry_points=False))\n"
        "mx.index(root)\n"
        "print(len(mx.messages.list(offset=10**12)), len(mx.messages.list(offset=2**63 - 1)),\n"
        "      len(mx.messages.list(offset=1)), mx.messages.count())\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "0 0 1 2\n"), done.stderr[-2000:]
