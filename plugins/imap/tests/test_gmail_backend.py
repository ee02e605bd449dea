"""Gmail behaviour of the IMAP backend, against the loopback server in tests/gmail_server.py.

Dovecot has no X-GM-EXT-1, so Gmail's extensions (labels as folders, X-GM-MSGID,
X-GM-THRID, delete into the Trash) are checked against a small server the
tests own that speaks them; its own tests are in test_gmail_server.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailindex import MailIndex
from mailindex.identity import message_id_for
from tests import mail

pytest.importorskip("mailindex_imap", reason="the IMAP plugin is not installed (make test installs plugins/imap)")
from gmail_server import TRASH, GmailServer  # noqa: E402

USER = "alice@gmail.com"


@pytest.fixture
def gmail() -> Iterator[GmailServer]:
    with GmailServer({USER: "secret"}, quota_bytes=20_000) as server:
        yield server
        assert server.errors == []


def _mx(tmp_path: Path, gm: GmailServer) -> MailIndex:
    mx = MailIndex(tmp_path / "idx")
    mx.add_source("gmail", f"imap://{USER.replace('@', '%40')}@127.0.0.1:{gm.port}", password="secret",
                  tls="none", sync_flags=1)
    return mx


def test_labels_are_folders_and_gmail_ids_and_threads_come_from_the_server(tmp_path: Path,
                                                                           gmail: GmailServer) -> None:
    first, reply, other = (mail.message(s, msgid=f"<{s}@x>") for s in ("start", "follow-up", "alone"))
    msgid = gmail.add_message(USER, first, labels=("INBOX", "Work"), flags=("\\Seen",))
    gmail.add_message(USER, reply, labels=("Work",), thread_id=msgid)  # same thread, no References header
    gmail.add_message(USER, other, labels=("INBOX",))
    mx = _mx(tmp_path, gmail)
    assert mx.sync("gmail").added == 3
    got = mx.messages.get(f"gm-{msgid}")
    assert got["message_id"] == message_id_for(first)
    assert sorted(got["folders"]) == ["INBOX", "Work", "[Gmail]/All Mail"]
    thread = mx.messages.thread(message_id_for(first))
    assert {m["message_id"] for m in thread["messages"]} == {message_id_for(first), message_id_for(reply)}
    assert mx.messages.count(folder="Work") == 2
    mx.close()


def test_delete_moves_to_the_trash_and_labels_follow_folder_changes(tmp_path: Path, gmail: GmailServer) -> None:
    keep, drop = mail.message("keep"), mail.message("drop")
    gmail.add_message(USER, keep, labels=("INBOX",))
    dropped = gmail.add_message(USER, drop, labels=("INBOX", "Work"))
    mx = _mx(tmp_path, gmail)
    mx.sync("gmail")
    assert mx.messages.delete(message_id_for(drop)) == {"success": True}
    on_server = {m.msgid: m for m in gmail.messages(USER)}
    assert on_server[dropped].labels == {TRASH}  # in the Trash, not expunged for good
    assert any(c.startswith("UID COPY") and "Trash" in c for c in gmail.commands)
    assert not any("EXPUNGE" in c for c in gmail.commands)  # on Gmail an expunge only drops a label
    # every folder is synced, the Trash too: the message is listed there alone
    assert [m["folders"] for m in mx.messages.iter() if m["message_id"] == message_id_for(drop)] == [[TRASH]]
    mid = message_id_for(keep)
    assert mx.messages.update_folders(mid, add="Later") == {"success": True}
    assert {"INBOX", "Later"} <= next(m for m in gmail.messages(USER) if m.data == keep).labels
    assert len(gmail.messages(USER)) == 2  # a label is not a copy
    assert "Later" in mx.messages.get(mid)["folders"]
    mx.close()


def test_flags_changed_elsewhere_are_found_without_condstore(tmp_path: Path, gmail: GmailServer) -> None:
    data = mail.message("starred later")
    gmail.add_message(USER, data, labels=("INBOX",))
    mx = _mx(tmp_path, gmail)
    mx.sync("gmail")
    assert mx.messages.count(folder="\\Flagged") == 0
    import imapclient

    c = imapclient.IMAPClient("127.0.0.1", port=gmail.port, ssl=False)
    c.login(USER, "secret")
    c.select_folder("INBOX")
    c.add_flags(c.search(), [b"\\Flagged"])
    c.logout()
    mx.sync("gmail")  # no HIGHESTMODSEQ: the folder is listed again, and the flag is seen
    assert mx.messages.count(folder="\\Flagged") == 1
    mx.close()


def test_a_full_mailbox_answers_with_the_servers_words(tmp_path: Path, gmail: GmailServer) -> None:
    gmail.add_message(USER, mail.message("small"), labels=("INBOX",))
    mx = _mx(tmp_path, gmail)
    mx.sync("gmail")
    answer = mx.messages.append(mail.message("big", body="x" * 30_000), "INBOX")
    assert answer["success"] is False and "OVERQUOTA" in answer["connection_log"]
    assert mx.messages.count() == 1 and len(gmail.messages(USER)) == 1
    gmail.drop_connections()
    mid = mx.messages.list()[0]["message_id"]
    answer = mx.messages.set_flags(mid, seen=1)
    assert answer["success"] is False and "dropped" in answer["connection_log"]
    answer = mx.messages.set_flags(mid, seen=1)  # the next call logs in again
    assert answer["success"] and answer["flags"]["seen"]
    mx.close()
