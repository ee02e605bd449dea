"""Connect tokens end to end: a real index, real Maildirs, a real HTTP callback server, an injected clock.

The callback server listens on 127.0.0.1, which an index refuses as a callback address unless it is opened with
allow_private_callbacks=True: the tests that deliver to it use the `local_mx` fixture, which does."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mailindex import (Account, ConnectTokenNotFound, ConnectTokenUnusable, IndexLocked, MailIndex, QueryError,
                       ReadOnlyIndex, SourceError, SourceFormatError, SourceNotFound, hookimpl)
from mailindex.api.connect_tokens import TOKEN_ID_LENGTH, TOKEN_LIFETIME
from mailindex.plugins import plugin_manager
from tests import mail

T0 = 1_700_000_000
DAY = 86_400
CALLBACK = "https://app.example/connected?step=2"
PERSON = {"email": "new.person@example.com", "first_name": "Ada", "last_name": "Lovelace"}


class Clock:
    """The index's time, moved by hand."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


@dataclass
class CallbackServer:
    """A local HTTP server that records every POST as (path, JSON body)."""

    url: str
    posts: list[tuple[str, Any]] = field(default_factory=list)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mx(tmp_path: Path, clock: Clock) -> Iterator[MailIndex]:
    index = MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False), clock=clock)
    yield index
    index.close()


@pytest.fixture
def local_mx(tmp_path: Path, clock: Clock) -> Iterator[MailIndex]:
    """An index whose callbacks may reach the tests' server on 127.0.0.1."""
    index = MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False), clock=clock,
                      allow_private_callbacks=True)
    yield index
    index.close()


@pytest.fixture
def server() -> Iterator[CallbackServer]:
    posts: list[tuple[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        """Answers 200; /status/<code> answers that code; /garbage answers bytes that are not HTTP."""

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            posts.append((self.path, json.loads(body)))
            if self.path == "/garbage":
                self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
                return
            self.send_response(int(self.path[len("/status/"):]) if self.path.startswith("/status/") else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield CallbackServer(f"http://127.0.0.1:{httpd.server_address[1]}", posts)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# -- helpers -----------------------------------------------------------------------
def maildir(tmp_path: Path, name: str, n: int) -> Path:
    """A Maildir of `n` messages whose subjects ("<name> <i>") no other box shares."""
    return mail.maildir(tmp_path / name, {"INBOX": [mail.message(f"{name} {i}", date=T0 - i) for i in range(n)]})


def not_mail(tmp_path: Path) -> Path:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 8)
    return path


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_token(resource: Any, **params: Any) -> str:
    return resource.create(params.pop("callback_url", CALLBACK), **params)["token"]


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str:
    """How listings name a token: the first hex digits of its SHA-256."""
    return sha256(token)[:TOKEN_ID_LENGTH]


def files_holding(index: Path, text: str) -> list[str]:
    """Every file under the index directory (SQLite database, WAL, shared memory, Tantivy segments) whose bytes
    contain `text`, as UTF-8 or as UTF-16."""
    needles = [text.encode(), text.encode("utf-16-le"), text.encode("utf-16-be")]
    return sorted(str(f.relative_to(index)) for f in index.rglob("*")
                  if f.is_file() and any(n in f.read_bytes() for n in needles))


def account_ids(mx: MailIndex) -> list[str]:
    return [a["id"] for a in mx.accounts.list()]


def owned_account(mx: MailIndex, tmp_path: Path, name: str, n: int) -> Account:
    """An account with one synced source, labelled `name`, of `n` messages."""
    account = mx.account(mx.accounts.create(email=f"{name}@example.com")["id"])
    assert account.index(maildir(tmp_path, name, n), name).added == n
    return account


def assert_unused(resource: Any, token: str) -> None:
    got = resource.get(token)
    assert (got["used"], got["account"]) == (0, {})
    assert got["expires"] == got["created"] + TOKEN_LIFETIME


# -- 1. lifecycle of an index-wide token ---------------------------------------------
def test_index_token_lifecycle(local_mx: MailIndex, clock: Clock, tmp_path: Path, server: CallbackServer) -> None:
    mx = local_mx
    answer = mx.connect_tokens.create(callback_url=CALLBACK, source_callback_url=server.url + "/src", **PERSON)
    assert set(answer) == {"success", "token", "resource_url", "browser_redirect_url"}
    assert answer["success"] is True
    token = answer["token"]
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    assert answer["resource_url"] == f"mailindex:connect_tokens/{token_id(token)}"
    assert answer["browser_redirect_url"] == f"mailindex:connect_tokens/{token}/redeem"
    assert new_token(mx.connect_tokens) != token

    before = mx.connect_tokens.get(token)
    assert set(before) == {"token_id", "email", "created", "used", "expires", "callback_url", "first_name",
                           "last_name", "account", "resource_url"}
    assert (before["token_id"], before["resource_url"]) == (token_id(token), answer["resource_url"])
    assert token not in json.dumps(before)
    assert (before["used"], before["created"], before["expires"], before["account"]) == (0, T0, T0 + DAY, {})
    assert (before["email"], before["first_name"], before["last_name"]) == tuple(PERSON.values())
    assert before["callback_url"] == CALLBACK
    assert token_id(token) in [t["token_id"] for t in mx.connect_tokens.list()]
    assert token not in json.dumps(mx.connect_tokens.list())

    clock.now = T0 + 600
    root = maildir(tmp_path, "inbox", 3)
    redeemed = mx.connect_tokens.redeem(token, root)

    (info,) = mx.accounts.list()
    assert info["email_addresses"] == [PERSON["email"]]
    assert (info["first_name"], info["last_name"]) == (PERSON["first_name"], PERSON["last_name"])
    account = mx.account(info["id"])
    assert account.messages.count() == 3
    (source,) = account.sources.list()
    assert source["location"] == str(root.resolve())
    assert source["sync"]["initial_import_finished"] is True

    assert redeemed["sync"]["added"] == 3
    redirect = urllib.parse.urlsplit(redeemed["browser_redirect_url"])
    assert redirect._replace(query="").geturl() == "https://app.example/connected"
    assert urllib.parse.parse_qs(redirect.query) == {"step": ["2"], "contextio_token": [token]}
    ((path, body),) = server.posts
    assert (path, body["token"]) == ("/src", token)
    after = mx.connect_tokens.get(token)
    for got in (redeemed, after):
        assert (got["used"], got["expires"]) == (T0 + 600, False)
        assert got["account"]["id"] == info["id"]
        assert got["account"]["email_addresses"] == [PERSON["email"]]
        assert [s["label"] for s in got["account"]["sources"]] == [source["label"]]

    with pytest.raises(ConnectTokenUnusable):
        mx.connect_tokens.redeem(token, maildir(tmp_path, "again", 1))
    assert account_ids(mx) == [info["id"]]
    assert mx.connect_tokens.get(token)["used"] == T0 + 600


# -- 2. the source callback ----------------------------------------------------------
def test_source_callback_gets_one_post(local_mx: MailIndex, tmp_path: Path, server: CallbackServer) -> None:
    mx = local_mx
    token = new_token(mx.connect_tokens, source_callback_url=server.url + "/hooks/source")
    redeemed = mx.connect_tokens.redeem(token, maildir(tmp_path, "inbox", 2), label="mine")
    ((path, body),) = server.posts
    assert path == "/hooks/source"
    assert (body["account_id"], body["source_label"]) == (redeemed["account"]["id"], "mine")
    assert body["added"] == 2
    assert (redeemed["source_callback"]["delivered"], redeemed["source_callback"]["status"]) == (True, 200)


def test_unreachable_source_callback_does_not_fail_redeem(local_mx: MailIndex, tmp_path: Path) -> None:
    mx = local_mx
    token = new_token(mx.connect_tokens, source_callback_url=f"http://127.0.0.1:{closed_port()}/cb")
    redeemed = mx.connect_tokens.redeem(token, maildir(tmp_path, "inbox", 2), label="mine")
    assert redeemed["source_callback"]["delivered"] is False
    account = mx.account(redeemed["account"]["id"])
    assert account.sources.get("mine")["sync"]["initial_import_finished"] is True
    assert account.messages.count() == 2


def test_callback_error_status_is_reported(local_mx: MailIndex, tmp_path: Path, server: CallbackServer) -> None:
    mx = local_mx
    token = new_token(mx.connect_tokens, source_callback_url=server.url + "/status/500")
    redeemed = mx.connect_tokens.redeem(token, maildir(tmp_path, "inbox", 1))
    assert len(server.posts) == 1
    assert (redeemed["source_callback"]["delivered"], redeemed["source_callback"]["status"]) == (False, 500)
    assert mx.connect_tokens.get(token)["used"] == T0


def test_garbage_callback_answer_does_not_fail_redeem(local_mx: MailIndex, tmp_path: Path,
                                                      server: CallbackServer) -> None:
    mx = local_mx
    token = new_token(mx.connect_tokens, source_callback_url=server.url + "/garbage")
    redeemed = mx.connect_tokens.redeem(token, maildir(tmp_path, "inbox", 1))
    assert redeemed["source_callback"]["delivered"] is False
    assert len(server.posts) == 1


def test_no_source_callback_without_url(mx: MailIndex, tmp_path: Path) -> None:
    redeemed = mx.connect_tokens.redeem(new_token(mx.connect_tokens), maildir(tmp_path, "inbox", 1))
    assert "source_callback" not in redeemed
    assert redeemed["sync"]["added"] == 1


def test_source_options_of_the_token_reach_the_source(mx: MailIndex, tmp_path: Path) -> None:
    token = new_token(mx.connect_tokens, source_sync_flags=1, source_raw_file_list=True)
    redeemed = mx.connect_tokens.redeem(token, maildir(tmp_path, "inbox", 1), label="mine")
    source = mx.account(redeemed["account"]["id"]).sources.get("mine")
    assert (source["sync_flags"], source["raw_file_list"], source["sync_all_folders"]) == (1, 1, 0)


# -- 3. expiry -----------------------------------------------------------------------
def test_tokens_expire_after_24_hours(mx: MailIndex, clock: Clock, tmp_path: Path) -> None:
    early, late = new_token(mx.connect_tokens), new_token(mx.connect_tokens)
    clock.now = T0 + DAY - 1
    account_id = mx.connect_tokens.redeem(early, maildir(tmp_path, "inbox", 1))["account"]["id"]

    clock.now = T0 + DAY
    with pytest.raises(ConnectTokenUnusable):
        mx.connect_tokens.redeem(late, maildir(tmp_path, "late", 1))
    assert account_ids(mx) == [account_id]
    with pytest.raises(ConnectTokenNotFound):
        mx.connect_tokens.get(late)
    assert [t["token_id"] for t in mx.connect_tokens.list()] == [token_id(early)]

    clock.now = T0 + 10 * DAY  # a used token is never purged
    kept = mx.connect_tokens.get(early)
    assert (kept["used"], kept["expires"], kept["account"]["id"]) == (T0 + DAY - 1, False, account_id)


def test_expired_tokens_are_purged_when_listing(mx: MailIndex, clock: Clock) -> None:
    old = new_token(mx.connect_tokens)
    clock.now = T0 + DAY // 2
    young = new_token(mx.connect_tokens)
    clock.now = T0 + DAY
    assert [t["token_id"] for t in mx.connect_tokens.list()] == [token_id(young)]
    assert mx.store.db.execute("SELECT COUNT(*) FROM connect_tokens WHERE token_hash = ?",
                               (sha256(old),)).fetchone() == (0,)


# -- 4. account tokens ---------------------------------------------------------------
def test_account_token_adds_a_second_source(mx: MailIndex, tmp_path: Path) -> None:
    account = owned_account(mx, tmp_path, "home", 2)
    answer = account.connect_tokens.create(CALLBACK)
    assert answer["resource_url"] == f"mailindex:accounts/{account.id}/connect_tokens/{token_id(answer['token'])}"
    assert_unused(account.connect_tokens, answer["token"])

    redeemed = account.connect_tokens.redeem(answer["token"], maildir(tmp_path, "work", 3), label="work")
    assert account_ids(mx) == [account.id]
    assert redeemed["account"]["id"] == account.id
    assert [s["label"] for s in account.sources.list()] == ["home", "work"]
    assert account.messages.count() == 5
    assert account.messages.count(source="work") == 3
    assert account.messages.count(source="home") == 2
    assert {m["subject"] for m in account.messages.iter(source="work")} == {"work 0", "work 1", "work 2"}


def test_account_tokens_belong_to_their_account(mx: MailIndex, tmp_path: Path) -> None:
    mine, other = owned_account(mx, tmp_path, "mine", 1), owned_account(mx, tmp_path, "other", 1)
    token = new_token(mine.connect_tokens)
    index_wide = new_token(mx.connect_tokens)
    with pytest.raises(ConnectTokenNotFound):
        other.connect_tokens.get(token)
    with pytest.raises(ConnectTokenNotFound):
        other.connect_tokens.redeem(token, maildir(tmp_path, "stolen", 1))
    with pytest.raises(ConnectTokenNotFound):
        other.connect_tokens.delete(token)
    with pytest.raises(ConnectTokenNotFound):
        other.connect_tokens.get(token_id(token))
    assert [t["token_id"] for t in mine.connect_tokens.list()] == [token_id(token)]
    assert other.connect_tokens.list() == []
    assert {t["token_id"] for t in mx.connect_tokens.list()} == {token_id(token), token_id(index_wide)}
    assert_unused(mine.connect_tokens, token)


def test_suspended_account_refuses_redemption(mx: MailIndex, tmp_path: Path) -> None:
    account = owned_account(mx, tmp_path, "home", 1)
    token = new_token(account.connect_tokens)
    mx.accounts.suspend(account.id)
    with pytest.raises(ConnectTokenUnusable):
        account.connect_tokens.redeem(token, maildir(tmp_path, "work", 1), label="work")
    assert [s["label"] for s in account.sources.list()] == ["home"]
    assert_unused(account.connect_tokens, token)


# -- 5. bad input --------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "ftp://x/y", "not a url", "", 42,
    "http://[::1/x", "http://127.0.0.1:abc/x",
])
def test_bad_callback_url(mx: MailIndex, url: Any) -> None:
    with pytest.raises(QueryError) as err:
        mx.connect_tokens.create(url)
    assert err.value.param == "callback_url"
    assert mx.connect_tokens.list() == []


@pytest.mark.parametrize(("params", "param"), [
    ({"source_callback_url": "file:///etc/passwd"}, "source_callback_url"),
    ({"email": "nobody"}, "email"),
])
def test_bad_create_parameters(mx: MailIndex, params: dict[str, str], param: str) -> None:
    with pytest.raises(QueryError) as err:
        mx.connect_tokens.create(CALLBACK, **params)
    assert err.value.param == param
    assert mx.connect_tokens.list() == []


@pytest.mark.parametrize(("location", "error"), [
    (lambda tmp_path: tmp_path / "missing", SourceNotFound),
    (not_mail, SourceFormatError),
])
def test_bad_location_creates_nothing(mx: MailIndex, tmp_path: Path, location: Any, error: type[Exception]) -> None:
    token = new_token(mx.connect_tokens, **PERSON)
    with pytest.raises(error):
        mx.connect_tokens.redeem(token, location(tmp_path))
    assert account_ids(mx) == []
    assert mx.store.db.execute("SELECT COUNT(*) FROM sources").fetchone() == (0,)
    assert_unused(mx.connect_tokens, token)
    redeemed = mx.connect_tokens.redeem(token, maildir(tmp_path, "inbox", 2))
    assert account_ids(mx) == [redeemed["account"]["id"]]
    assert redeemed["sync"]["added"] == 2


def test_location_of_wrong_type_creates_nothing(mx: MailIndex) -> None:
    token = new_token(mx.connect_tokens, **PERSON)
    with pytest.raises(QueryError) as err:
        mx.connect_tokens.redeem(token, None)  # type: ignore[arg-type]
    assert err.value.param == "location"
    assert account_ids(mx) == []
    assert_unused(mx.connect_tokens, token)


def test_busy_index_leaves_the_token_redeemable(mx: MailIndex, tmp_path: Path) -> None:
    token = new_token(mx.connect_tokens, **PERSON)
    root = maildir(tmp_path, "inbox", 2)
    with MailIndex(mx.path, pm=plugin_manager(entry_points=False)) as other:
        held = other.tantivy.writer()
        try:
            with pytest.raises(IndexLocked):
                mx.connect_tokens.redeem(token, root)
        finally:
            held.close()
    assert_unused(mx.connect_tokens, token)
    assert mx.connect_tokens.redeem(token, root)["sync"]["added"] == 2


class _Unlistable:
    """A backend that opens its location but cannot list it: the initial sync fails after the source exists."""

    @hookimpl
    def mailindex_source_types(self) -> list[str]:
        return ["unlistable"]

    @hookimpl
    def mailindex_open_source(self, location: str, source_type: str | None, options: Any) -> Any:
        if source_type != "unlistable":
            return None
        from mailindex.sources.maildir import MaildirSource

        class Failing(MaildirSource):
            type = "unlistable"

            def containers(self) -> Any:
                raise SourceError(location, "permission denied while listing")

        return Failing(location)


def test_failed_initial_sync_creates_nothing(tmp_path: Path, clock: Clock) -> None:
    pm = plugin_manager(entry_points=False)
    pm.register(_Unlistable(), name="unlistable")
    root = maildir(tmp_path, "inbox", 2)
    with MailIndex(tmp_path / "idx", pm=pm, clock=clock) as mx:
        token = new_token(mx.connect_tokens, **PERSON)
        with pytest.raises(SourceError, match="permission denied"):
            mx.connect_tokens.redeem(token, root, type="unlistable")
        assert account_ids(mx) == []
        assert mx.store.db.execute("SELECT COUNT(*) FROM sources").fetchone() == (0,)
        assert_unused(mx.connect_tokens, token)
        assert mx.connect_tokens.redeem(token, root)["sync"]["added"] == 2


def test_taken_label_leaves_the_token_unused(mx: MailIndex, tmp_path: Path) -> None:
    account = owned_account(mx, tmp_path, "home", 1)
    token = new_token(account.connect_tokens)
    with pytest.raises(QueryError) as err:
        account.connect_tokens.redeem(token, maildir(tmp_path, "work", 1), label="home")
    assert err.value.param == "label"
    assert_unused(account.connect_tokens, token)
    assert [s["label"] for s in account.sources.list()] == ["home"]


def test_unknown_token_is_not_echoed(mx: MailIndex, tmp_path: Path) -> None:
    unknown = "0123456789abcdef" * 2 + "01234567"
    for attempt in (lambda: mx.connect_tokens.get(unknown), lambda: mx.connect_tokens.delete(unknown),
                    lambda: mx.connect_tokens.redeem(unknown, maildir(tmp_path, "inbox", 1))):
        with pytest.raises(ConnectTokenNotFound) as err:
            attempt()
        assert unknown not in str(err.value)
        assert unknown[:8] in str(err.value)
    assert account_ids(mx) == []


def test_deleted_token_is_gone(mx: MailIndex, tmp_path: Path) -> None:
    token = new_token(mx.connect_tokens)
    assert mx.connect_tokens.delete(token) == {"success": True}
    with pytest.raises(ConnectTokenNotFound):
        mx.connect_tokens.get(token)
    with pytest.raises(ConnectTokenNotFound):
        mx.connect_tokens.redeem(token, maildir(tmp_path, "inbox", 1))
    assert mx.connect_tokens.list() == []
    assert account_ids(mx) == []


# -- 6. read-only ----------------------------------------------------------------------
def test_read_only_index_reads_tokens_but_changes_nothing(tmp_path: Path, clock: Clock) -> None:
    pm = plugin_manager(entry_points=False)
    with MailIndex(tmp_path / "idx", pm=pm, clock=clock) as mx:
        unused = new_token(mx.connect_tokens)
        used = new_token(mx.connect_tokens)
        account_id = mx.connect_tokens.redeem(used, maildir(tmp_path, "inbox", 1))["account"]["id"]
    with MailIndex(tmp_path / "idx", read_only=True, pm=pm, clock=clock) as ro:
        for write in (lambda: ro.connect_tokens.create(CALLBACK), lambda: ro.connect_tokens.delete(unused),
                      lambda: ro.connect_tokens.redeem(unused, tmp_path / "inbox"),
                      lambda: ro.account(account_id).connect_tokens.create(CALLBACK)):
            with pytest.raises(ReadOnlyIndex):
                write()
        assert_unused(ro.connect_tokens, unused)
        assert ro.connect_tokens.get(used)["account"]["id"] == account_id
        assert [t["token_id"] for t in ro.connect_tokens.list()] == sorted([token_id(unused), token_id(used)])
        assert [t["token_id"] for t in ro.account(account_id).connect_tokens.list()] == [token_id(used)]


# -- 7. storage: hashes only -------------------------------------------------------------
# The table as mailindex made it before it kept hashes only: the token itself beside its hash.
OLD_DDL = """
CREATE TABLE connect_tokens (
    token_hash TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    account TEXT,
    email TEXT,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    callback_url TEXT NOT NULL,
    source_callback_url TEXT,
    source_options TEXT NOT NULL DEFAULT '{}',
    created INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    expires INTEGER
);
"""


def columns(db: sqlite3.Connection) -> list[str]:
    return [c[1] for c in db.execute("PRAGMA table_info(connect_tokens)")]


def test_the_index_keeps_no_token(local_mx: MailIndex, tmp_path: Path, server: CallbackServer) -> None:
    mx, index = local_mx, local_mx.path
    account = owned_account(mx, tmp_path, "home", 1)
    unused = new_token(mx.connect_tokens, **PERSON)
    for_account = new_token(account.connect_tokens)
    used = new_token(mx.connect_tokens, source_callback_url=server.url + "/src")
    assert mx.connect_tokens.redeem(used, maildir(tmp_path, "inbox", 2))["source_callback"]["delivered"] is True
    deleted = new_token(mx.connect_tokens)
    mx.connect_tokens.delete(deleted)

    assert "token" not in columns(mx.store.db)
    assert sorted(r[0] for r in mx.store.db.execute("SELECT token_hash FROM connect_tokens")) == \
        sorted(map(sha256, (unused, for_account, used)))
    assert {"meta.sqlite", "meta.sqlite-wal", "meta.sqlite-shm", "tantivy"} <= {f.name for f in index.iterdir()}
    assert files_holding(index, sha256(unused)) != []  # the scan does see what the index stores
    for token in (unused, for_account, used, deleted):
        assert files_holding(index, token) == []
    mx.close()
    for token in (unused, for_account, used, deleted):
        assert files_holding(index, token) == []


def test_an_old_index_loses_its_clear_tokens(tmp_path: Path, clock: Clock) -> None:
    index, pm = tmp_path / "idx", plugin_manager(entry_points=False)
    MailIndex(index, pm=pm, clock=clock).close()
    kept, purged = "5f3a" * 10, "c0de" * 10  # 40 hex digits, as tokens were
    with closing(sqlite3.connect(index / "meta.sqlite")) as db:
        db.execute("PRAGMA secure_delete=OFF")  # as SQLite builds without it left deleted rows' bytes behind
        db.executescript("DROP TABLE connect_tokens;" + OLD_DDL)
        for token in (kept, purged):
            db.execute("INSERT INTO connect_tokens (token_hash, token, callback_url, created, expires) "
                       "VALUES (?, ?, ?, ?, ?)", (sha256(token), token, CALLBACK, T0, T0 + DAY))
        db.commit()
        db.execute("DELETE FROM connect_tokens WHERE token = ?", (purged,))
        db.commit()
    assert files_holding(index, kept) == files_holding(index, purged) == ["meta.sqlite"]

    with MailIndex(index, read_only=True, pm=pm, clock=clock) as ro:  # reads it, cannot rewrite it
        assert ro.connect_tokens.get(kept)["token_id"] == token_id(kept)
    assert files_holding(index, kept) == ["meta.sqlite"]

    with MailIndex(index, pm=pm, clock=clock) as mx:
        assert "token" not in columns(mx.store.db)
        assert (files_holding(index, kept), files_holding(index, purged)) == ([], [])
        assert [t["token_id"] for t in mx.connect_tokens.list()] == [token_id(kept)]
        redeemed = mx.connect_tokens.redeem(kept, maildir(tmp_path, "inbox", 2), email=PERSON["email"])
        assert (redeemed["used"], redeemed["sync"]["added"]) == (T0, 2)
        assert redeemed["account"]["email_addresses"] == [PERSON["email"]]
        with pytest.raises(ConnectTokenUnusable):
            mx.connect_tokens.redeem(kept, maildir(tmp_path, "again", 1))
    assert (files_holding(index, kept), files_holding(index, purged)) == ([], [])


def test_a_token_id_names_a_token_but_cannot_redeem_it(mx: MailIndex, tmp_path: Path) -> None:
    token = new_token(mx.connect_tokens, **PERSON)
    assert mx.connect_tokens.get(token_id(token)) == mx.connect_tokens.get(token)
    with pytest.raises(ConnectTokenNotFound):
        mx.connect_tokens.redeem(token_id(token), maildir(tmp_path, "inbox", 1))
    with pytest.raises(ConnectTokenNotFound):
        mx.connect_tokens.get(sha256(token))  # nor does the whole hash name it
    assert account_ids(mx) == []
    assert_unused(mx.connect_tokens, token)
    assert mx.connect_tokens.delete(token_id(token)) == {"success": True}
    with pytest.raises(ConnectTokenNotFound):
        mx.connect_tokens.get(token)
