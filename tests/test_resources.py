"""One message and its sub-resources: body, headers, source, flags, folders, thread, from Python and the CLI."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailindex import MailIndex, MessageNotFound
from mailindex.cli import main
from mailindex.plugins import plugin_manager
from tests import mail

ROOT_ID = "<root@test.example>"


def _alternative_with_attachment() -> bytes:
    m = EmailMessage()
    m["From"] = "alice@example.com"
    m["To"] = "me@example.com"
    m["Subject"] = "=?utf-8?q?caf=C3=A9?= menu"
    m["Message-ID"] = ROOT_ID
    m["Date"] = "Mon, 14 Sep 2020 12:26:40 +0000"
    m.set_content("plain café\n")
    m.add_alternative("<p>html café</p>\n", subtype="html")
    m.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf", filename="menu.pdf")
    m.set_boundary("=_outer")
    return bytes(m)


ROOT = _alternative_with_attachment()  # once: the inner boundary is random


def _reply(n: int, parent: str, refs: str) -> bytes:
    return mail.message(f"Re: menu {n}", sender=f"user{n}@example.org", date=1_600_000_000 + n,
                        msgid=f"<r{n}@test.example>", In_Reply_To=parent, References=refs)


@pytest.fixture
def mx(tmp_path: Path) -> MailIndex:
    root = mail.maildir(tmp_path / "md", {
        "INBOX": [ROOT, _reply(1, ROOT_ID, ROOT_ID),
                  # its parent r2 is missing: the ghost still joins it to the thread
                  _reply(3, "<r2@test.example>", f"{ROOT_ID} <r2@test.example>")],
        "Sent": [_reply(4, "<r1@test.example>", f"{ROOT_ID} <r1@test.example>"),
                 mail.message("unrelated", msgid="<other@test.example>")],
    })
    index = MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False), owner=["me@example.com"])
    index.index(root, "box")
    return index


def test_body_parts_are_decoded_and_numbered_like_files(mx: MailIndex) -> None:
    m = mx.messages.get(ROOT_ID, include_body=1)
    assert [(p["type"], p["body_section"], p["content"]) for p in m["body"]] == \
        [("text/plain", "1.1", "plain café\n"), ("text/html", "1.2", "<p>html café</p>\n")]
    assert [(f["file_name"], f["body_section"]) for f in m["files"]] == [("menu.pdf", "2")]
    assert mx.messages.body(ROOT_ID, "text/html") == [m["body"][1]]
    assert m["subject"] == "café menu"


def test_headers_decoded_in_order_and_raw_as_in_the_source(mx: MailIndex) -> None:
    headers = mx.messages.headers(ROOT_ID)
    assert isinstance(headers, dict)
    assert headers["Subject"] == ["café menu"] and list(headers)[:3] == ["From", "To", "Subject"]
    raw = mx.messages.headers(ROOT_ID, raw=True)
    assert isinstance(raw, str) and raw.encode() == ROOT.split(b"\n\n", 1)[0]


def test_source_is_byte_exact_and_every_id_form_finds_it(mx: MailIndex) -> None:
    mid = mx.messages.get(ROOT_ID)["message_id"]
    assert mx.messages.source(mid) == mx.messages.source(ROOT_ID) == ROOT
    with pytest.raises(MessageNotFound):
        mx.messages.get("<nobody@test.example>")


def test_flags_are_read_live_after_another_program_renames_the_file(mx: MailIndex, tmp_path: Path) -> None:
    assert mx.messages.flags(ROOT_ID)["seen"] is False
    (path,) = [p for p in (tmp_path / "md" / "cur").iterdir() if p.read_bytes() == ROOT]
    path.rename(path.with_name(path.name.split(":2,")[0] + ":2,FRS"))  # what a mail client does
    flags = mx.messages.flags(ROOT_ID)
    assert flags == {"seen": True, "answered": True, "flagged": True, "deleted": False, "draft": False,
                     "nonjunk": False}
    mx.sync("box")
    assert mx.messages.get(ROOT_ID, include_flags=1)["flags"]["flagged"] is True


def test_folders_carry_symbolic_names(mx: MailIndex) -> None:
    assert mx.messages.folders("<r4@test.example>") == [{"name": "Sent", "symbolic_name": "\\Sent"}]
    assert mx.messages.folders(ROOT_ID) == [{"name": "INBOX", "symbolic_name": "\\Inbox"}]


def test_thread_gathers_replies_and_ghost_children_in_conversation_order(mx: MailIndex) -> None:
    thread = mx.messages.thread("<r3@test.example>")
    ids = [m["email_message_id"] for m in thread["messages"]]
    assert ids == [ROOT_ID, "<r1@test.example>", "<r4@test.example>", "<r3@test.example>"]
    assert thread["email_message_ids"] == ids
    assert set(thread["person_info"]) >= {"alice@example.com", "user1@example.org", "user3@example.org"}
    assert [m["email_message_id"] for m in mx.messages.thread(ROOT_ID, limit=2, offset=1)["messages"]] == ids[1:3]
    sizes = {m["email_message_id"]: m["thread_size"] for m in mx.messages.list(include_thread_size=1)}
    assert sizes == {**dict.fromkeys(ids, 4), "<other@test.example>": 1}
    assert mx.messages.thread("<other@test.example>")["email_message_ids"] == ["<other@test.example>"]


@pytest.mark.parametrize("command", [["body"], ["headers"], ["headers", "--raw"], ["flags"], ["folders"],
                                     ["thread"], ["show", "--include-thread-size"]])
def test_cli_subresources_print_json(mx: MailIndex, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    mx.close()
    assert main(["--index", str(mx.path), command[0], ROOT_ID, *command[1:], "--json"]) == 0
    value = json.loads(capsys.readouterr().out)
    head = ROOT.split(b"\n\n", 1)[0].decode()  # the raw form is the source's header as it is
    expected = {"body": lambda v: v[0]["body_section"] == "1.1",
                "headers": lambda v: v == head if "--raw" in command else v["Subject"] == ["café menu"],
                "flags": lambda v: v["seen"] is False, "folders": lambda v: v[0]["name"] == "INBOX",
                "thread": lambda v: len(v["messages"]) == 4, "show": lambda v: v["thread_size"] == 4}
    assert expected[command[0]](value)


def test_cli_contacts(mx: MailIndex, capsys: pytest.CaptureFixture[str]) -> None:
    mx.close()
    assert main(["--index", str(mx.path), "contacts", "--sort-by", "email", "--json"]) == 0
    emails = [c["email"] for c in json.loads(capsys.readouterr().out)["matches"]]
    assert emails == sorted(emails) and "alice@example.com" in emails and "me@example.com" not in emails
    assert main(["--index", str(mx.path), "contacts", "alice@example.com", "--json"]) == 0
    alice = json.loads(capsys.readouterr().out)
    assert alice["received_count"] == len(alice["messages"]) == 2
    assert main(["--index", str(mx.path), "contacts", "nobody@example.com"]) == 1
    assert "contact not found" in capsys.readouterr().err


def test_a_bogus_charset_falls_back_instead_of_failing(tmp_path: Path) -> None:
    raw = (b"From: a@example.com\nTo: me@example.com\nSubject: x\nMessage-ID: <bogus@test.example>\n"
           b"Content-Type: text/plain; charset=y\n\ncaf\xe9 cr\xe8me\n")
    root = mail.maildir(tmp_path / "md", {"INBOX": [raw]})
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "box")
        assert mx.messages.body("<bogus@test.example>") == [
            {"type": "text/plain", "charset": "cp1252", "content": "café crème\n", "body_section": "1"}]
