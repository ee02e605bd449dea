"""Callback URLs reach public addresses only: refused when a token is made, checked again against the address the
POST connects to, and no redirect is followed. The receivers are real HTTP servers on 127.0.0.1, no mocks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mailindex import MailIndex, QueryError
from mailindex.plugins import plugin_manager
from tests import mail

T0 = 1_700_000_000
CALLBACK = "https://93.184.215.14/connected"  # a public address: accepted without DNS, and never contacted


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request as (method, path, Host header, body)."""

    url: str
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)
    answer: tuple[int, dict[str, str]] = (200, {})  # status and headers every request gets


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Two receivers: `[0]` and `[1]`."""
    made: list[Receiver] = []
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
    for _ in range(2):
        receiver = Receiver("")

        class Handler(BaseHTTPRequestHandler):
            me = receiver

            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.me.requests.append((self.command, self.path, self.headers["Host"],
                                         json.loads(body) if body else None))
                status, headers = self.me.answer
                self.send_response(status)
                for name, value in {**headers, "Content-Length": "0"}.items():
                    self.send_header(name, value)
                self.end_headers()

            do_POST = do_GET = do_HEAD = do_PUT = _record  # noqa: N815 (http.server's naming)

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        receiver.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        made.append(receiver)
        servers.append((httpd, thread))
    try:
        yield made
    finally:
        for httpd, thread in servers:
            httpd.shutdown()
            httpd.server_close()
            thread.join()


def open_index(path: Path, **options: Any) -> MailIndex:
    return MailIndex(path, pm=plugin_manager(entry_points=False), clock=lambda: float(T0), **options)


@pytest.fixture
def mx(tmp_path: Path) -> Iterator[MailIndex]:
    """An index as an embedding program gets it by default: private callbacks refused."""
    with open_index(tmp_path / "idx") as index:
        yield index


def inbox(tmp_path: Path, name: str = "inbox") -> Path:
    return mail.maildir(tmp_path / name, {"INBOX": [mail.message(f"{name} 1", date=T0)]})


# -- refused when the token is made -----------------------------------------------------
HOSTILE = [  # (URL, what its address is)
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://192.168.1.1:8080/hook", "private"),
    ("http://[fd00::1]/", "private"),  # unique-local
    ("http://127.0.0.1/", "loopback"),
    ("http://0x7f000001/", "loopback"),  # hexadecimal
    ("http://2130706433/", "loopback"),  # one decimal number
    ("http://0177.0.0.1/", "loopback"),  # octal
    ("http://127.1/", "loopback"),
    ("http://localhost/", "loopback"),
    ("https://LOCALHOST:8443/x", "loopback"),
    ("http://user:secret@127.0.0.1/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:a9fe:a9fe]/", "link-local"),  # 169.254.169.254, mapped
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[fe80::1]/", "link-local"),
    ("http://[fec0::1]/", "site-local"),
    ("http://0.0.0.0:8080/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://[64:ff9b::a00:1]/", "reserved"),  # NAT64 of 10.0.0.1
    ("http://100.64.0.1/", "not a globally routable"),  # carrier-grade NAT
]


@pytest.mark.parametrize(("url", "what"), HOSTILE)
def test_non_public_callback_urls_are_refused(mx: MailIndex, url: str, what: str) -> None:
    for callback, source_callback, param in ((url, None, "callback_url"), (CALLBACK, url, "source_callback_url")):
        with pytest.raises(QueryError) as err:
            mx.connect_tokens.create(callback, source_callback_url=source_callback)
        assert err.value.param == param
        assert err.value.value == url
        assert f"{what} address" in err.value.problem
        assert "public addresses only" in err.value.problem
    assert mx.connect_tokens.list() == []


@pytest.mark.parametrize("url", [
    "https://93.184.215.14/done", "http://8.8.8.8:8080/hook?x=1",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/hook", "http://[::ffff:8.8.8.8]/hook",
    "https://no-such-host.invalid/hook",  # does not resolve now: vetted when the POST is made
])
def test_public_or_unresolved_callback_urls_are_accepted(mx: MailIndex, url: str) -> None:
    token = mx.connect_tokens.create(url, source_callback_url=url)["token"]
    assert mx.connect_tokens.get(token)["callback_url"] == url
    assert mx.store.db.execute("SELECT source_callback_url FROM connect_tokens").fetchall() == [(url,)]


def test_only_the_embedding_program_allows_private_callbacks(tmp_path: Path, receivers: list[Receiver]) -> None:
    with open_index(tmp_path / "idx") as mx:
        with pytest.raises(TypeError):
            mx.connect_tokens.create(CALLBACK, allow_private_callbacks=True)  # type: ignore[call-arg]
        with pytest.raises(QueryError):
            mx.connect_tokens.create(CALLBACK, source_callback_url=receivers[0].url)
    with open_index(tmp_path / "idx", allow_private_callbacks=True) as trusting:
        token = trusting.connect_tokens.create(CALLBACK, source_callback_url=receivers[0].url + "/hook")["token"]
        redeemed = trusting.connect_tokens.redeem(token, inbox(tmp_path))
    assert (redeemed["source_callback"]["delivered"], redeemed["source_callback"]["status"]) == (True, 200)
    assert [(m, p, b["token"]) for m, p, _host, b in receivers[0].requests] == [("POST", "/hook", token)]


# -- checked again when the POST is made ------------------------------------------------
def test_a_stored_private_callback_is_refused_at_post_time(mx: MailIndex, tmp_path: Path,
                                                           receivers: list[Receiver]) -> None:
    token = mx.connect_tokens.create(CALLBACK, source_callback_url="http://93.184.215.14/hook")["token"]
    hook = receivers[0].url + "/hook"  # what a token made before callbacks were checked could hold
    mx.store.db.execute("UPDATE connect_tokens SET source_callback_url = ?", (hook,))
    redeemed = mx.connect_tokens.redeem(token, inbox(tmp_path))
    assert redeemed["source_callback"] == {
        "url": hook, "delivered": False,
        "error": "not sent: 127.0.0.1 is a loopback address; callbacks go to public addresses only"}
    assert receivers[0].requests == []
    assert (redeemed["used"], redeemed["sync"]["added"]) == (T0, 1)  # the connection itself is made


def test_a_token_made_where_private_callbacks_were_allowed_is_refused_elsewhere(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    hook = receivers[0].url.replace("127.0.0.1", "localhost") + "/hook"
    with open_index(tmp_path / "idx", allow_private_callbacks=True) as trusting:
        refused = trusting.connect_tokens.create(CALLBACK, source_callback_url=hook)["token"]
        delivered = trusting.connect_tokens.create(CALLBACK, source_callback_url=hook)["token"]
    with open_index(tmp_path / "idx") as mx:
        answer = mx.connect_tokens.redeem(refused, inbox(tmp_path, "first"))["source_callback"]
    assert answer["delivered"] is False
    assert answer["error"].startswith("not sent: localhost resolves to ")  # 127.0.0.1, or ::1 first
    assert answer["error"].endswith(", a loopback address; callbacks go to public addresses only")
    assert receivers[0].requests == []
    with open_index(tmp_path / "idx", allow_private_callbacks=True) as trusting:
        answer = trusting.connect_tokens.redeem(delivered, inbox(tmp_path, "second"))["source_callback"]
    assert (answer["delivered"], answer["status"]) == (True, 200)
    ((method, path, host, body),) = receivers[0].requests  # connected to the address, named by the name
    assert (method, path, host, body["token"]) == ("POST", "/hook", hook.split("/")[2], delivered)


# -- no redirects ---------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_reported_not_followed(tmp_path: Path, receivers: list[Receiver], status: int) -> None:
    first, second = receivers
    first.answer = (status, {"Location": second.url + "/elsewhere"})
    with open_index(tmp_path / "idx", allow_private_callbacks=True) as mx:
        token = mx.connect_tokens.create(CALLBACK, source_callback_url=first.url + "/hook")["token"]
        answer = mx.connect_tokens.redeem(token, inbox(tmp_path))["source_callback"]
    assert answer == {"url": first.url + "/hook", "delivered": False, "status": status,
                      "error": f"redirect to {second.url + '/elsewhere'!r} not followed"}
    assert [(m, p) for m, p, _host, _body in first.requests] == [("POST", "/hook")]
    assert second.requests == []
