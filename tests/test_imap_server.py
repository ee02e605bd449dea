"""The Dovecot the IMAP tests run against: it starts on 127.0.0.1 only, speaks what the backend will need,
and keeps nothing after it stops."""

from __future__ import annotations

import imaplib
import os
import re
import socket

import pytest

from tests import mail
from tests.imap_server import SPECIAL_USE, DovecotServer


def _login(server: DovecotServer) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", server.port)
    imap.login("alice", "secret")
    return imap


def test_special_use_append_and_fetch_are_byte_exact(dovecot: DovecotServer) -> None:
    imap = _login(dovecot)
    try:
        caps = set(imap.capability()[1][0].decode().split())  # after login: the full list
        assert {"UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC", "SPECIAL-USE"} <= caps
        typ, listing = imap.list()
        assert typ == "OK"
        uses = {}
        for line in listing:
            m = re.match(rb'\(([^)]*)\) "/" "?([^"]+)"?', line)
            assert m is not None, line
            flags, name = m.group(1).decode().split(), m.group(2).decode()
            uses[name] = [f for f in flags if f in SPECIAL_USE.values()]
        assert {name: use[0] for name, use in uses.items() if use} == SPECIAL_USE
        data = mail.message("exact bytes", body="line one\r\nline two\r\n").replace(b"\r\n", b"\n").replace(
            b"\n", b"\r\n")
        typ, answer = imap.append("Archive", "(\\Seen)", None, data)
        appended = re.search(rb"\[APPENDUID (\d+) (\d+)\]", answer[0])
        assert typ == "OK" and appended is not None
        uid = appended.group(2).decode()
        imap.select("Archive")
        typ, fetched = imap.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
        assert typ == "OK" and fetched[0][1] == data and b"\\Seen" in fetched[0][0]
    finally:
        imap.logout()


def test_wrong_password_is_refused_with_the_servers_words(dovecot: DovecotServer) -> None:
    imap = imaplib.IMAP4("127.0.0.1", dovecot.port)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.login("alice", "wrong")
    imap.shutdown()


def test_listens_on_loopback_only_and_leaves_nothing_behind() -> None:
    from tests.imap_server import why_unavailable

    if why_unavailable():
        pytest.skip(f"IMAP TESTS SKIPPED: {why_unavailable()}")
    server = DovecotServer({"bob": "pw"}).start()
    root, pid = server.root, server.proc.pid  # type: ignore[union-attr]
    try:
        conf = (root / "dovecot.conf").read_text()
        assert "listen = 127.0.0.1" in conf and f"port = {server.port}" in conf
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
            assert s.recv(64).startswith(b"* OK")
    finally:
        server.stop()
    assert not root.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
