"""Accounts and their sources: each account sees exactly its own mail, checked against a reference."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailindex import (AccountNotFound, MailIndex, MessageNotFound, QueryError, ReadOnlyIndex, SourceFormatError,
                       SourceNotFound, SourceUnavailable)
from mailindex.plugins import plugin_manager
from mailindex.sync import FOLDER_LEFT_OUT
from tests import boxes, mail, reference
from tests.budget import examples
from tests.strategies import OWNER, Spec, mailboxes
from tests.test_contacts import expected_contacts

# What a default sync leaves out, by the reference's special-use names.
SKIPPED = {"\\Trash", "\\Drafts", "\\Junk"}
OWNER_B = "bob@example.org"
PLACES = {"a1": ("A", "one"), "a2": ("A", "two"), "b1": ("B", "one")}  # maildir -> (account, source label)


def _open(path: Path) -> MailIndex:
    return MailIndex(path, pm=plugin_manager(entry_points=False))


def _expected(box: list[Spec], placed: dict[int, set[str]], account: str) -> dict[str, list[str]]:
    """Message-ID -> sorted folders, for the messages a sync_all_folders=0 sync of `account`'s sources keeps."""
    out: dict[str, list[str]] = {}
    for spec in box:
        if any(PLACES[p][0] == account for p in placed[spec.n]):
            kept = sorted({f for f in spec.folders if reference.symbolic_name(f) not in SKIPPED})
            if kept:
                out[f"<m{spec.n}@test.example>"] = kept
    return out


def _listing(account: Any, **filters: Any) -> dict[str, list[str]]:
    return {m["email_message_id"]: sorted(m["folders"]) for m in account.messages.iter(**filters)}


def _contacts(account: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k != "thumbnail"}
            for c in account.contacts.list(sort_by="email", limit=100)["matches"]]


@settings(max_examples=examples(0.6))
@given(box=mailboxes(), data=st.data())
def test_each_account_sees_its_own_sources(box: list[Spec], data: st.DataObject) -> None:
    placed = {s.n: data.draw(st.sets(st.sampled_from(sorted(PLACES)), min_size=1), label=f"places of {s.n}")
              for s in box}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with _open(root / "idx") as mx:
            accounts = {"A": mx.account(mx.accounts.update(mx.default_account.id, email_addresses=[OWNER])["id"]),
                        "B": mx.account(mx.accounts.create(email=OWNER_B)["id"])}
            for place, (account, label) in PLACES.items():
                path = boxes.write([s for s in box if place in placed[s.n]], root / place)
                (path / "cur").mkdir(parents=True, exist_ok=True)
                accounts[account].sources.add(path, label=label, sync_all_folders=0)
            report = mx.sync()
            assert (report.failed, report.errors) == (0, [])

            owners = {"A": [OWNER], "B": [OWNER_B]}
            for name, account in accounts.items():
                want = _expected(box, placed, name)
                assert _listing(account) == want
                for place, (owner, label) in PLACES.items():
                    if owner == name:
                        in_source = {f"<m{s.n}@test.example>" for s in box if place in placed[s.n]}
                        assert set(_listing(account, source=label)) == in_source & set(want)
                assert set(_listing(account, source="0")) == set(_listing(account, source="one"))
                in_starred = [i for i, folders in want.items()
                              if any(reference.symbolic_name(f) == "\\Flagged" for f in folders)]
                assert account.messages.count(folder="\\Flagged") == len(in_starred)  # flags are not kept by default
                kept = [s for s in box if f"<m{s.n}@test.example>" in want]
                assert _contacts(account) == sorted(expected_contacts(kept, owners[name]).values(),
                                                    key=lambda c: c["email"])
                assert account.info()["nb_messages"] == len(want)
            only_b = set(_expected(box, placed, "B")) - set(_expected(box, placed, "A"))
            for ident in sorted(only_b)[:3]:
                with pytest.raises(MessageNotFound):
                    accounts["A"].messages.get(ident)

            # Deleting B takes its mail out of the index; A is untouched.
            before = (_listing(accounts["A"]), _contacts(accounts["A"]))
            mx.accounts.delete(accounts["B"].id)
            with pytest.raises(AccountNotFound):
                mx.accounts.get(accounts["B"].id)
            assert (_listing(accounts["A"]), _contacts(accounts["A"])) == before
            assert mx.store.count_messages() == len(before[0])


def test_account_lifecycle_and_list_filters(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("hi"), mail.message("again")]})
    first = mx.accounts.create(email="Ann@Example.com, ann@work.example", first_name="Ann", last_name="Lee")
    assert re.fullmatch("[0-9a-f]{24}", first["id"])  # random, so its form is all there is to check
    assert first["email_addresses"] == ["ann@example.com", "ann@work.example"]
    assert (first["suspended"], first["sources"], first["nb_messages"], first["nb_files"]) == (0, [], 0, 0)
    second = mx.accounts.create(email="bob@example.org")
    mx.account(second["id"]).sources.add(root, label="inbox")
    mx.account(second["id"]).sync()
    got = mx.accounts.get(second["id"])
    assert (got["nb_messages"], [s["label"] for s in got["sources"]]) == (2, ["inbox"])

    assert [a["id"] for a in mx.accounts.list()] == [first["id"], second["id"]]
    assert [a["id"] for a in mx.accounts.list(email="ANN@work.example")] == [first["id"]]
    assert [a["id"] for a in mx.accounts.list(limit=1, offset=1)] == [second["id"]]
    assert [a["id"] for a in mx.accounts.list(status="ok")] == [second["id"]]
    assert [a["id"] for a in mx.accounts.list(status_ok=1)] == [first["id"], second["id"]]
    assert mx.accounts.list(status_ok=0) == []

    updated = mx.accounts.update(first["id"], first_name="Anne", email_addresses=["anne@example.com"])
    assert (updated["first_name"], updated["last_name"], updated["email_addresses"]) == \
        ("Anne", "Lee", ["anne@example.com"])
    assert mx.accounts.suspend(second["id"])["suspended"] > 0
    with pytest.raises(SourceUnavailable, match="suspended"):
        mx.account(second["id"]).sync("inbox")
    assert mx.account(second["id"]).messages.count() == 2  # still searchable
    assert mx.accounts.update(second["id"], suspended=0)["suspended"] == 0
    assert mx.account(second["id"]).sync("inbox").unchanged == 2

    assert mx.accounts.delete(first["id"]) == {"success": True}
    with pytest.raises(AccountNotFound):
        mx.accounts.get(first["id"])
    assert [a["id"] for a in mx.accounts.list()] == [second["id"]]


@pytest.mark.parametrize(("params", "param"), [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"offset": -1}, "offset"), ({"status": "BOGUS"}, "status"),
    ({"status_ok": 2}, "status_ok"), ({"colour": "red"}, "colour"), ({"email": ""}, "email"),
])
def test_account_list_bad_input(mx: MailIndex, params: dict[str, Any], param: str) -> None:
    with pytest.raises(QueryError) as err:
        mx.accounts.list(**params)
    assert err.value.param == param


def test_account_bad_input(mx: MailIndex) -> None:
    with pytest.raises(QueryError) as err:
        mx.accounts.create(email="not an address")
    assert err.value.param == "email"
    with pytest.raises(QueryError) as err:
        mx.accounts.get("xyz")
    assert err.value.param == "id"
    with pytest.raises(AccountNotFound):
        mx.accounts.get("0" * 24)
    with pytest.raises(QueryError) as err:
        mx.accounts.update(mx.default_account.id, suspended=3)
    assert err.value.param == "suspended"
    assert len(mx.accounts.list()) == 1  # only the default account, made by the first call that needed it


def test_sources_bad_input_creates_nothing(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("x")]})
    (tmp_path / "notmail.bin").write_bytes(bytes(range(256)) * 8)
    sources = mx.default_account.sources
    sources.add(root, label="main")
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"location": root, "label": "main"}, QueryError),
        ({"location": root, "label": "0"}, QueryError),
        ({"location": root, "label": "bad label!"}, QueryError),
        ({"location": tmp_path / "missing"}, SourceNotFound),
        ({"location": tmp_path / "notmail.bin"}, SourceFormatError),
        ({"location": root, "sync_flags": 2}, QueryError),
        ({"location": root, "type": "pst"}, SourceFormatError),
    ]
    for kwargs, error in cases:
        with pytest.raises(error):
            sources.add(**kwargs)
    assert [s["label"] for s in sources.list()] == ["main"]
    with pytest.raises(SourceNotFound):
        sources.get("nope")
    with pytest.raises(QueryError) as err:
        sources.update("main", status="INVALID_CREDENTIALS")
    assert err.value.param == "status"


def test_same_label_in_two_accounts(mx: MailIndex, tmp_path: Path) -> None:
    a = mail.maildir(tmp_path / "a", {"INBOX": [mail.message("for a")]})
    b = mail.maildir(tmp_path / "b", {"INBOX": [mail.message("for b"), mail.message("also b")]})
    other = mx.account(mx.accounts.create(email="b@example.org")["id"])
    mx.add_source("inbox", a)
    other.sources.add(b, label="inbox")
    mx.sync()
    assert [m["subject"] for m in mx.messages.iter(source="inbox")] == ["for a"]
    assert sorted(m["subject"] for m in other.messages.iter(source="inbox")) == ["also b", "for b"]


def test_status_follows_the_source_and_disabled_sources_wait(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("x")]})
    mx.add_source("p", root)
    mx.sync("p")
    assert mx.source("p")["status"] == "OK"
    mx.default_account.sources.update("p", status="disabled")
    with pytest.raises(SourceUnavailable, match="DISABLED"):
        mx.sync("p")
    assert mx.sync().errors == [{"key": "p", "error": "not synced: source p is DISABLED "
                                                      "(update its status to OK to sync it)"}]
    mx.default_account.sources.update("p", status="OK")
    shutil.rmtree(root)
    with pytest.raises(SourceNotFound):
        mx.sync("p")
    assert mx.source("p")["status"] == "CONNECTION_IMPOSSIBLE"
    assert [a["id"] for a in mx.accounts.list(status="CONNECTION_IMPOSSIBLE")] == [mx.default_account.id]
    assert [a["id"] for a in mx.accounts.list(status_ok=0)] == [mx.default_account.id]
    assert mx.messages.count() == 1  # what was indexed stays until the source is back or deleted


def test_an_update_made_while_a_sync_runs_is_kept(mx: MailIndex, tmp_path: Path) -> None:
    """Another process disables the source and changes an option mid-sync: when the sync ends it writes
    only its own columns, so the status stays DISABLED and the rescan the option asks for stays due."""
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message(f"m{i}") for i in range(3)]})
    mx.add_source("p", root)
    other = MailIndex(mx.path, pm=plugin_manager(entry_points=False))  # its own SQLite connection

    def meanwhile(done: int, total: int) -> None:
        if done == 0:
            other.default_account.sources.update("p", status="DISABLED", sync_flags=1)

    assert mx.sync("p", progress=meanwhile).added == 3
    row = mx.store.source_rows()[0]
    assert (row["status"], row["sync_flags"], row["full_rescan"]) == ("DISABLED", 1, 1)
    other.close()


def test_sync_state(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("a"), mail.message("b")]})
    mx.add_source("p", root)
    assert mx.source("p")["sync"] == {"last_sync_start": None, "last_sync_stop": None, "last_expunge": None,
                                      "initial_import_finished": False}
    mx.sync("p")
    state = mx.source("0")["sync"]
    assert state["initial_import_finished"] and state["last_sync_stop"] >= state["last_sync_start"] > 0
    assert state["last_expunge"] is None
    sorted((root / "cur").iterdir())[0].unlink()
    before = int(time.time())
    assert mx.sync("p").removed == 1
    assert before <= mx.source("p")["sync"]["last_expunge"] <= time.time()  # the time of this sync


def test_folder_and_flag_options_follow_updates(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("kept")], "Trash": [mail.message("binned")],
                                          "Drafts": [mail.message("draft")]}, flags="FS")
    mx.add_source("p", root, sync_all_folders=0)
    assert mx.sync("p").skipped == {FOLDER_LEFT_OUT: 2}
    assert [m["subject"] for m in mx.messages.iter()] == ["kept"]
    assert mx.messages.count(folder="\\Flagged") == 0
    sources = mx.default_account.sources
    sources.update("p", sync_all_folders=1, sync_flags=1)
    assert (mx.sync("p").added, mx.sync("p").skipped) == (2, {})
    assert sorted(m["subject"] for m in mx.messages.iter()) == ["binned", "draft", "kept"]
    assert mx.messages.count(folder="\\Flagged") == 3
    assert mx.messages.count(folder="\\Trash") == 1
    sources.update("p", sync_all_folders=0, sync_flags=0)
    assert mx.sync("p").removed == 2
    assert [m["subject"] for m in mx.messages.iter()] == ["kept"]
    assert mx.messages.count(folder="\\Flagged") == 0


def _with_signature() -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "alice@example.com", "me@example.com", "signed"
    m["Message-ID"] = "<signed@test.example>"
    m.set_content("see the report")
    m.add_attachment(b"%PDF-1.4 " * 200, maintype="application", subtype="pdf", filename="report.pdf")
    m.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(2000), maintype="image", subtype="png", filename="image001.png",
                     disposition="inline", cid="<logo@test>")
    m.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(40_000), maintype="image", subtype="png", filename="photo.png",
                     disposition="inline")
    return bytes(m)


def test_signature_images_are_left_out_of_files_unless_raw_file_list(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [_with_signature()]})
    mx.add_source("p", root)
    mx.sync("p")
    (m,) = mx.messages.list()
    assert [f["file_name"] for f in m["files"]] == ["report.pdf", "photo.png"]
    assert mx.default_account.info()["nb_files"] == 2
    assert mx.messages.count(file_name="image001.png") == 1  # still found by its name
    mx.default_account.sources.update("p", raw_file_list=1)
    (m,) = mx.messages.list()
    assert [f["file_name"] for f in m["files"]] == ["report.pdf", "image001.png", "photo.png"]
    assert mx.default_account.info()["nb_files"] == 3


def test_deleting_a_source_keeps_mail_another_source_holds(mx: MailIndex, tmp_path: Path) -> None:
    shared = mail.message("shared", body="a unique phrase zebracorn")
    a = mail.maildir(tmp_path / "a", {"INBOX": [shared, mail.message("only a")]})
    b = mail.maildir(tmp_path / "b", {"Work": [shared]})
    mx.add_source("a", a)
    mx.add_source("b", b)
    mx.sync()
    assert mx.messages.count() == 2
    mx.default_account.sources.delete("a")
    assert [(m["subject"], m["folders"], [s["label"] for s in m["sources"]]) for m in mx.messages.iter()] == \
        [("shared", ["Work"], ["b"])]
    assert mx.messages.count(source="a") == 0
    with pytest.raises(SourceNotFound):
        mx.source("a")
    assert a.exists() and len(list((a / "cur").iterdir())) == 2  # mail on disk is never touched


def test_threads_stay_within_the_account(mx: MailIndex, tmp_path: Path) -> None:
    root = mail.message("question", msgid="<q@test>")
    reply = mail.message("Re: question", msgid="<r@test>", In_Reply_To="<q@test>", References="<q@test>")
    mx.add_source("a", mail.maildir(tmp_path / "a", {"INBOX": [root]}))
    other = mx.account(mx.accounts.create(email="b@example.org")["id"])
    other.sources.add(mail.maildir(tmp_path / "b", {"INBOX": [root, reply]}), label="b")
    mx.sync()
    assert [m["subject"] for m in mx.messages.thread("<q@test>")["messages"]] == ["question"]
    assert mx.messages.get("<q@test>", include_thread_size=1)["thread_size"] == 1
    assert [m["subject"] for m in other.messages.thread("<q@test>")["messages"]] == ["question", "Re: question"]
    assert other.messages.get("<q@test>", include_thread_size=1)["thread_size"] == 2


def test_read_only_refuses_account_and_source_writes(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("x")]})
    with _open(tmp_path / "idx") as mx:
        mx.index(root, "p")
        account_id = mx.default_account.id
    with MailIndex(tmp_path / "idx", read_only=True, pm=plugin_manager(entry_points=False)) as ro:
        for write in (lambda: ro.accounts.create(email="x@example.com"),
                      lambda: ro.accounts.update(account_id, first_name="X"),
                      lambda: ro.accounts.delete(account_id),
                      lambda: ro.default_account.sources.add(root, label="q"),
                      lambda: ro.default_account.sources.update("p", status="DISABLED"),
                      lambda: ro.default_account.sources.delete("p")):
            with pytest.raises(ReadOnlyIndex):
                write()
        assert [a["nb_messages"] for a in ro.accounts.list()] == [1]
