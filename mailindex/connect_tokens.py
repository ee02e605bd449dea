"""Connect tokens: hand someone a one-time token; redeeming it connects their mail.

Context.IO's connect flow without a browser. `create` answers a token and,
once someone `redeem`s it with a source description, the source is added to
the token's account (or a new account is created for it), its initial sync
runs, the token is marked used, and `source_callback_url` (when given)
receives a POST. Tokens come from `secrets`, are looked up by their SHA-256
and compared in constant time, are good for one redemption, and unused ones
expire and are purged 24 hours after creation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailindex.errors import ConnectTokenNotFound, ConnectTokenUnusable, MailindexError, QueryError
from mailindex.query.filters import email_list, flag_param, name_param, text_param

if TYPE_CHECKING:
    from mailindex.accounts import Account
    from mailindex.engine import MailIndex

TOKEN_LIFETIME = 24 * 3600  # seconds an unused token lives
CALLBACK_TIMEOUT = 10.0  # seconds to deliver source_callback_url
SOURCE_OPTIONS = ("source_sync_all_folders", "source_sync_flags", "source_raw_file_list")

DDL = """
CREATE TABLE IF NOT EXISTS connect_tokens (
    token_hash TEXT PRIMARY KEY,  -- SHA-256 of the token: what lookups use
    token TEXT NOT NULL,  -- listed back to the caller, as Context.IO did
    account TEXT,  -- the account it adds a source to; for a new account, filled when used
    email TEXT,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    callback_url TEXT NOT NULL,
    source_callback_url TEXT,
    source_options TEXT NOT NULL DEFAULT '{}',
    created INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    expires INTEGER  -- NULL once used
);
"""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def http_url(name: str, value: Any) -> str:
    """An absolute http(s) URL with a host, or QueryError naming `name`."""
    url = text_param(name, value)
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number in range)
    except ValueError as exc:
        raise QueryError(name, value, f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise QueryError(name, value, "must be an absolute http:// or https:// URL")
    return url


class ConnectTokens:
    """The connect_tokens resource: of one account (redeeming adds a source to it), or of the whole
    index (redeeming creates an account)."""

    def __init__(self, mx: "MailIndex", account: "Account | None" = None) -> None:
        self._mx, self._account = mx, account

    def create(self, callback_url: str, *, email: str | None = None, first_name: str = "", last_name: str = "",
               source_callback_url: str | None = None, source_sync_all_folders: bool | int = 0,
               source_sync_flags: bool | int = 0, source_raw_file_list: bool | int = 0) -> dict[str, Any]:
        """`{success, token, resource_url, browser_redirect_url}` for a new one-time token."""
        self._mx._check_writable()
        if self._account is not None:
            self._account._row()
        values = {
            "callback_url": http_url("callback_url", callback_url),
            "email": (email_list("email", email) or [None])[0],
            "first_name": name_param("first_name", first_name), "last_name": name_param("last_name", last_name),
            "source_callback_url": None if source_callback_url is None
            else http_url("source_callback_url", source_callback_url),
            "source_options": json.dumps({name[len("source_"):]: flag_param(name, value) for name, value in (
                ("source_sync_all_folders", source_sync_all_folders), ("source_sync_flags", source_sync_flags),
                ("source_raw_file_list", source_raw_file_list))}),
        }
        token = secrets.token_hex(20)
        now = int(self._mx.clock())
        with self._mx.store.transaction() as db:
            self._purge(db, now)
            db.execute(f"INSERT INTO connect_tokens (token_hash, token, account, created, expires, "
                       f"{', '.join(values)}) VALUES (?, ?, ?, ?, ?{', ?' * len(values)})",
                       (_hash(token), token, self._account.id if self._account else None, now,
                        now + TOKEN_LIFETIME, *values.values()))
        return {"success": True, "token": token, "resource_url": self._resource_url(token),
                "browser_redirect_url": f"{self._resource_url(token)}/redeem"}

    def list(self) -> list[dict[str, Any]]:
        """Tokens of this account (made for it, or used to create it), or index-wide every token; oldest first."""
        self._purge_now()
        where, args = ("WHERE account = ?", (self._account.id,)) if self._account else ("", ())
        return [self._dict(r) for r in self._mx.store.rows(f"SELECT * FROM connect_tokens {where} ORDER BY created, token",
                                                   args)]

    def get(self, token: str) -> dict[str, Any]:
        """One token: `{token, email, created, used, expires, callback_url, first_name, last_name, account}`."""
        self._purge_now()
        return self._dict(self._find(token))

    def delete(self, token: str) -> dict[str, bool]:
        """Forget a token (used or not); an unused one can no longer be redeemed."""
        self._mx._check_writable()
        row = self._find(token)
        self._mx.store.db.execute("DELETE FROM connect_tokens WHERE token_hash = ?", (row["token_hash"],))
        return {"success": True}

    def redeem(self, token: str, location: str | Path, *, type: str | None = None, label: str | None = None,
               email: str | None = None, first_name: str | None = None, last_name: str | None = None,
               workers: int | None = None, **options: Any) -> dict[str, Any]:
        """Connect the mail at `location` through `token`: add it as a source (creating the account when the
        token is not for one), run its initial sync, mark the token used, POST `source_callback_url`.

        Everything is checked before anything is created. Answers the used token (its `account`
        filled) with `browser_redirect_url` (the callback URL with `contextio_token`), the sync
        report and, when a source callback was asked for, how its delivery went.
        """
        self._mx._check_writable()
        row = self._find(token)
        now = int(self._mx.clock())
        if row["used"]:
            raise ConnectTokenUnusable("this connect token was used already; create another")
        if row["expires"] is not None and row["expires"] <= now:
            raise ConnectTokenUnusable("this connect token expired unused (tokens live 24 hours); create another")
        source_options = {**json.loads(row["source_options"]), **options}
        creating = row["account"] is None
        if creating:
            created = self._mx.accounts.create(
                email=email or row["email"],
                first_name=first_name if first_name is not None else row["first_name"],
                last_name=last_name if last_name is not None else row["last_name"])
            account = self._mx.account(created["id"])
        else:
            account = self._mx.account(row["account"])
            if account.suspended:
                raise ConnectTokenUnusable(f"account {account.id} is suspended; resume it before connecting "
                                           "a source")
        try:
            source = account.sources.add(location, label=label, type=type, **source_options)
        except Exception:
            if creating:  # nothing half-created
                self._mx.store.db.execute("DELETE FROM accounts WHERE id = ?", (account.id,))
            raise
        with self._mx.store.transaction() as db:
            claimed = db.execute("UPDATE connect_tokens SET used = ?, expires = NULL, account = ? "
                                 "WHERE token_hash = ? AND used = 0", (now, account.id, row["token_hash"])).rowcount
        if not claimed:  # another process redeemed it between our check and now
            account.sources.delete(source["label"])
            if creating:
                self._mx.accounts.delete(account.id)
            raise ConnectTokenUnusable("this connect token was used already; create another")
        try:
            report = account.sync(source["label"], workers=workers)
        except MailindexError:  # a busy index, a source that cannot be read: undo, so the token can be used later
            self._undo(account, source["label"], creating, row)
            raise
        out = self.get(token)
        out["browser_redirect_url"] = _with_query(row["callback_url"], contextio_token=row["token"])
        out["sync"] = report.to_dict()
        if row["source_callback_url"]:
            out["source_callback"] = post_callback(row["source_callback_url"], {
                "account_id": account.id, "source_label": source["label"], "token": row["token"],
                "status": account.sources.get(source["label"])["status"], "initial_import_finished": True,
                "added": report.added, "failed": report.failed})
        return out

    # -- helpers ---------------------------------------------------------------
    def _undo(self, account: "Account", label: str, creating: bool, row: sqlite3.Row) -> None:
        """Put back what a redemption made before its initial sync failed: the source, a new account, the
        token's unused state."""
        source_id = account.sources.row(label)["id"]
        db = self._mx.store.db
        if db.execute("SELECT 1 FROM locations WHERE source_id = ? LIMIT 1", (source_id,)).fetchone():
            account.sources.delete(label)  # some mail was indexed: it leaves the index first
        with self._mx.store.transaction() as db:
            db.execute("DELETE FROM sync_log WHERE source_id = ?", (source_id,))
            db.execute("DELETE FROM sources WHERE id = ?", (source_id,))
            if creating:
                db.execute("DELETE FROM accounts WHERE id = ?", (account.id,))
            db.execute("UPDATE connect_tokens SET used = 0, expires = ?, account = ? WHERE token_hash = ?",
                       (row["expires"], row["account"], row["token_hash"]))

    def _find(self, token: Any) -> sqlite3.Row:
        token = text_param("token", token)
        rows = self._mx.store.rows("SELECT * FROM connect_tokens WHERE token_hash = ?", (_hash(token),))
        row = rows[0] if rows else None
        if row is None or not hmac.compare_digest(row["token"].encode(), token.encode()):
            raise ConnectTokenNotFound(token)
        if self._account is not None and row["account"] != self._account.id:
            raise ConnectTokenNotFound(token)
        return row

    def _purge_now(self) -> None:
        if not self._mx.read_only:
            self._purge(self._mx.store.db, int(self._mx.clock()))

    @staticmethod
    def _purge(db: sqlite3.Connection, now: int) -> None:
        db.execute("DELETE FROM connect_tokens WHERE used = 0 AND expires <= ?", (now,))

    def _resource_url(self, token: str) -> str:
        prefix = f"accounts/{self._account.id}/" if self._account else ""
        return f"mailindex:{prefix}connect_tokens/{token}"

    def _dict(self, r: sqlite3.Row) -> dict[str, Any]:
        account: dict[str, Any] = {}
        if r["used"] and r["account"]:
            try:
                info = self._mx.accounts.get(r["account"])
            except MailindexError:
                info = None  # the account was deleted since
            if info is not None:
                account = {k: info[k] for k in ("id", "created", "suspended", "email_addresses", "first_name",
                                                "last_name", "sources")}
        return {"token": r["token"], "email": r["email"], "created": r["created"], "used": r["used"],
                "expires": False if r["used"] else r["expires"], "callback_url": r["callback_url"],
                "first_name": r["first_name"], "last_name": r["last_name"], "account": account,
                "resource_url": self._resource_url(r["token"])}


def post_callback(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST `payload` as JSON; answers `{url, delivered, status | error}` and never raises."""
    import http.client  # here, not at the top: they cost every CLI command ~20 ms of start-up
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "mailindex"})
    try:
        with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT) as response:  # noqa: S310 (http(s) only)
            return {"url": url, "delivered": True, "status": response.status}
    except urllib.error.HTTPError as exc:
        return {"url": url, "delivered": False, "status": exc.code, "error": str(exc.reason)}
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        return {"url": url, "delivered": False, "error": f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"}


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode([*urllib.parse.parse_qsl(parts.query), *params.items()])
    return urllib.parse.urlunsplit(parts._replace(query=query))
