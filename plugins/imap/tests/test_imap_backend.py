"""The IMAP backend plugin against a real Dovecot on 127.0.0.1: sync, live operations, failures.

Mail is checked two ways: through mailindex, and on the server's own Maildir
(or with a plain IMAP client), so a test cannot pass by agreeing with itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import imapclient
import pytest

from mailindex import MailIndex, SourceError
from mailindex.identity import message_id_for
from tests import mail
from tests.conftest import ROOT
from tests.imap_server import DovecotServer

pytest.importorskip("mailindex_imap", reason="the IMAP plugin is not installed (make test installs plugins/imap)")


def _files(server: DovecotServer, folder: str) -> list[bytes]:
    """Message files of a folder, read from Dovecot's Maildir (the server's ground truth)."""
    base = server.maildir("alice") if folder == "INBOX" else server.maildir("alice") / f".{folder}"
    return [p.read_bytes() for sub in ("cur", "new") if (base / sub).is_dir() for p in sorted((base / sub).iterdir())]


def _load(server: DovecotServer, messages: list[bytes], flags: str = "") -> None:
    """Messages into alice's INBOX, as files owned by the server's mail user (it must write there too)."""
    mail.maildir(server.maildir("alice"), {"INBOX": messages}, flags=flags)
    subprocess.run(["chown", "-R", "dovecot:dovecot", str(server.root / "mail")], check=True)


def _client(server: DovecotServer) -> imapclient.IMAPClient:
    c = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
    c.login("alice", "secret")
    return c


def _mx(tmp_path: Path, server: DovecotServer, **options: object) -> tuple[MailIndex, str]:
    mx = MailIndex(tmp_path / "idx")
    url = f"imap://alice@127.0.0.1:{server.port}"
    mx.add_source("imap", url, password="secret", tls="none", sync_all_folders=1, sync_flags=1, **options)
    return mx, url


def test_sync_lists_folders_and_follows_changes_made_elsewhere(tmp_path: Path, dovecot: DovecotServer) -> None:
    messages = [mail.message(f"m{i}") for i in range(6)]
    _load(dovecot, messages)
    mx, url = _mx(tmp_path, dovecot)
    assert mx.sync("imap").added == 6
    src = mx.engine.open_row(mx.default_account.sources.row("imap"))
    assert {(f.name, f.symbolic_name) for f in src.folders()} >= {("Sent", "\\Sent"), ("Trash", "\\Trash"),
                                                                  ("INBOX", "\\Inbox")}
    assert {m["message_id"] for m in mx.messages.iter()} == {message_id_for(m) for m in messages}
    again = mx.sync("imap")
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    c = _client(dovecot)
    c.select_folder("INBOX")
    uids = sorted(c.search())
    c.add_flags(uids[:2], [b"\\Flagged"])
    c.add_flags(uids[2:3], [b"\\Deleted"])
    c.expunge()
    c.append("Archive", messages[0])
    c.logout()
    report = mx.sync("imap")
    assert report.removed == 1
    assert mx.messages.count(folder="\\Flagged") == 2
    assert mx.messages.get(message_id_for(messages[0]))["folders"] == ["INBOX", "Archive"]
    assert message_id_for(messages[2]) not in {m["message_id"] for m in mx.messages.iter()}
    assert mx.messages.set_flags(message_id_for(messages[1]), seen=1)["success"]  # ours now has INBOX selected
    c = _client(dovecot)  # flags alone, changed by another session
    c.select_folder("INBOX")
    c.remove_flags(c.search(), [b"\\Flagged"])
    c.logout()
    assert mx.sync("imap").unchanged >= 0 and mx.messages.count(folder="\\Flagged") == 0
    mx.close()


def test_live_operations_on_the_server(tmp_path: Path, dovecot: DovecotServer) -> None:
    messages = [mail.message(f"m{i}") for i in range(3)]
    _load(dovecot, messages)
    mx, _ = _mx(tmp_path, dovecot)
    mx.sync("imap")
    first, second, third = (message_id_for(m) for m in messages)
    answer = mx.messages.set_flags(first, seen=1, answered=1)
    assert answer["success"] and answer["flags"]["seen"] and answer["flags"]["answered"]
    assert mx.messages.move(first, "Archive", flag_flagged=1) == {"success": True}
    assert _files(dovecot, "Archive") == [messages[0]] and messages[0] not in _files(dovecot, "INBOX")
    got = mx.messages.get(first, include_flags=1)
    assert got["folders"] == ["Archive"] and got["flags"]["flagged"] and got["flags"]["seen"]
    # another \Deleted message in the folder must survive: UID EXPUNGE removes only ours
    c = _client(dovecot)
    c.select_folder("INBOX")
    other = [u for u, r in c.fetch(c.search(), [b"BODY.PEEK[]"]).items() if r[b"BODY[]"] == messages[2]]
    c.add_flags(other, [b"\\Deleted"])
    c.logout()
    assert mx.messages.delete(second) == {"success": True}
    assert _files(dovecot, "INBOX") == [messages[2]]
    assert mx.messages.append(mail.message("appended"), "Sent", flag_seen=1) == {"success": True}
    assert len(_files(dovecot, "Sent")) == 1
    assert mx.messages.update_folders(third, add="Work/2026") == {"success": True}
    assert sorted(f["name"] for f in mx.messages.folders(third)) == ["INBOX", "Work/2026"]
    mx.close()


def test_moves_between_a_maildir_an_imap_server_and_an_mbox(tmp_path: Path, dovecot: DovecotServer) -> None:
    data = mail.message("travels")
    mail.maildir(tmp_path / "local", {"INBOX": [data]})
    (tmp_path / "box").mkdir()
    mx, _ = _mx(tmp_path, dovecot)
    mx.add_source("local", tmp_path / "local", sync_all_folders=1)
    mx.add_source("box", tmp_path / "box", "mbox", sync_all_folders=1)
    mx.sync()
    mid = message_id_for(data)
    assert mx.messages.move(mid, "INBOX", dst_source="imap") == {"success": True}
    assert _files(dovecot, "INBOX") == [data] and not list((tmp_path / "local" / "cur").iterdir())
    assert mx.messages.get(mid)["sources"][0]["label"] == "imap"
    assert mx.messages.move(mid, "Saved", dst_source="box") == {"success": True}
    assert _files(dovecot, "INBOX") == []
    got = mx.messages.get(mid)
    assert got["folders"] == ["Saved"] and [s["label"] for s in got["sources"]] == ["box"]
    # IMAP serves lines ending in CRLF (RFC 3501): the same message, the same message_id
    assert mx.messages.source(mid).replace(b"\r\n", b"\n").replace(b"Status: O\n", b"") == data
    mx.close()


def test_errors_carry_the_servers_words_and_no_password_is_stored(tmp_path: Path, dovecot: DovecotServer) -> None:
    mx = MailIndex(tmp_path / "idx")
    url = f"imap://alice@127.0.0.1:{dovecot.port}"
    mx.add_source("bad", url, password="wrong", tls="none")
    with pytest.raises(SourceError) as err:
        mx.sync("bad")
    assert "AUTHENTICATIONFAILED" in err.value.connection_log and "LOGIN alice ****" in err.value.connection_log
    assert mx.source("bad")["status"] == "CONNECTION_IMPOSSIBLE"
    mx.add_source("gone", "imap://alice@127.0.0.1:1/", password="secret", tls="none")
    with pytest.raises(SourceError, match="cannot connect"):
        mx.sync("gone")
    with pytest.raises(SourceError, match="loopback"):
        mx.add_source("clear", "imap://alice@imap.example.com/", password="secret", tls="none")
    with pytest.raises(SourceError, match="no password"):
        MailIndex(tmp_path / "idx2").add_source("nopw", url, tls="none", password_env="NO_SUCH_VARIABLE_SET")
        MailIndex(tmp_path / "idx2").sync("nopw")
    mx.close()
    for path in (tmp_path / "idx").rglob("*"):
        if path.is_file():
            assert b"wrong" not in path.read_bytes() and b"secret" not in path.read_bytes(), path


def test_a_dropped_connection_between_copy_and_delete_keeps_the_message(tmp_path: Path,
                                                                        dovecot: DovecotServer) -> None:
    data = mail.message("fragile")
    _load(dovecot, [data])
    mx, _ = _mx(tmp_path, dovecot)
    mx.sync("imap")
    src = mx.engine.open_row(mx.default_account.sources.row("imap"))
    original_delete = type(src).delete

    def kill_then_delete(self: object, locator: dict) -> None:
        os.killpg(dovecot.proc.pid, signal.SIGKILL)  # the whole server dies between copy and delete
        dovecot.proc.wait()
        original_delete(self, locator)  # type: ignore[arg-type]

    type(src).delete = kill_then_delete  # type: ignore[method-assign]
    try:
        answer = mx.messages.move(message_id_for(data), "Archive")
    finally:
        type(src).delete = original_delete  # type: ignore[method-assign]
    assert answer["success"] is False and "dropped" in answer["connection_log"]
    assert _files(dovecot, "INBOX") == [data] and _files(dovecot, "Archive") == [data]
    assert mx.messages.get(message_id_for(data))["folders"] == ["INBOX"]  # the index keeps what it last saw
    mx.close()


CRASH = """
import os, signal, sys
from mailindex import MailIndex
from mailindex_imap.source import ImapSource
ImapSource.delete = lambda self, locator: os.kill(os.getpid(), signal.SIGKILL)
mx = MailIndex(sys.argv[1])
mx.passwords[sys.argv[2]] = "secret"
mx.messages.move(sys.argv[3], "Archive")
"""


def test_a_process_killed_between_copy_and_delete_keeps_the_message(tmp_path: Path, dovecot: DovecotServer) -> None:
    data = mail.message("crashing")
    _load(dovecot, [data])
    mx, url = _mx(tmp_path, dovecot)
    mx.sync("imap")
    mx.close()
    run = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path / "idx"), url, message_id_for(data)],
                         cwd=ROOT, capture_output=True, timeout=60)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert _files(dovecot, "INBOX") == [data] and _files(dovecot, "Archive") == [data]
    mx = MailIndex(tmp_path / "idx")
    mx.passwords[url] = "secret"
    mx.sync("imap")  # the next sync sees both copies: one message, two folders
    assert sorted(mx.messages.get(message_id_for(data))["folders"]) == ["Archive", "INBOX"]
    mx.close()
