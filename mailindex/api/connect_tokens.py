"""Connect tokens: hand someone a one-time token; redeeming it connects their mail.

Context.IO's connect flow without a browser. `create` answers a token and,
once someone `redeem`s it with a source description, the source is added to
the token's account (or a new account is created for it), its initial sync
runs, the token is marked used, and `source_callback_url` (when given)
receives a POST. Tokens come from `secrets` and are good for one redemption;
unused ones expire and are purged 24 hours after creation. The index keeps
only a token's SHA-256, so reading an index is not enough to redeem its
tokens: `create` answers the token once, and `list`/`get` name a token by
`token_id`, the first 16 hex digits of that hash, which redeems nothing.
Callback URLs must name public addresses (see mailindex.callbacks) unless the
embedding program opened the index with `allow_private_callbacks=True`.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import secrets
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from mailindex import callbacks
from mailindex.api.accounts import Accounts
from mailindex.api.sources import Sources
from mailindex.engine import Engine
from mailindex.errors import ConnectTokenNotFound, ConnectTokenUnusable, MailindexError
from mailindex.query.filters import email_list, flag_param, name_param, text_param

TOKEN_LIFETIME = 24 * 3600  # seconds an unused token lives
TOKEN_ID_LENGTH = 16  # hex digits of the SHA-256 that name a token in listings: 64 bits, no secret
_TOKEN_ID = re.compile(f"[0-9a-f]{{{TOKEN_ID_LENGTH}}}")
SOURCE_OPTIONS = ("source_sync_all_folders", "source_sync_flags", "source_raw_file_list")

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class ConnectTokens:
    """The connect_tokens resource: of one account (redeeming adds a source to it), or of the whole
    index (redeeming creates an account)."""

    def __init__(self, engine: Engine, account_id: str | None = None) -> None:
        self._engine, self._account_id = engine, account_id
        self._accounts = Accounts(engine)

    def create(self, callback_url: str, *, email: str | None = None, first_name: str = "", last_name: str = "",
               source_callback_url: str | None = None, source_sync_all_folders: bool | int = 0,
               source_sync_flags: bool | int = 0, source_raw_file_list: bool | int = 0) -> dict[str, Any]:
        """`{success, token, resource_url, browser_redirect_url}` for a new one-time token.

        This is the only time the token is shown: the index keeps its hash only. `resource_url` names
        the token by its `token_id`; `browser_redirect_url` carries the token, for the person who
        connects. Both callback URLs must be http(s) URLs of public hosts (QueryError otherwise).
        """
        self._engine.check_writable()
        if self._account_id is not None:
            self._engine.account_row(self._account_id)
        allow_private = self._engine.allow_private_callbacks
        values = {
            "callback_url": callbacks.check_url("callback_url", callback_url, allow_private=allow_private),
            "email": next(iter(email_list("email", email)), None),
            "first_name": name_param("first_name", first_name), "last_name": name_param("last_name", last_name),
            "source_callback_url": None if source_callback_url is None
            else callbacks.check_url("source_callback_url", source_callback_url, allow_private=allow_private),
            "source_options": json.dumps({name[len("source_"):]: flag_param(name, value) for name, value in (
                ("source_sync_all_folders", source_sync_all_folders), ("source_sync_flags", source_sync_flags),
                ("source_raw_file_list", source_raw_file_list))}),
        }
        token = secrets.token_hex(20)
        token_hash = _hash(token)
        now = int(self._engine.clock())
        with self._engine.store.transaction() as db:
            self._purge(db, now)
            db.execute(f"INSERT INTO connect_tokens (token_hash, account, created, expires, "
                       f"{', '.join(values)}) VALUES (?, ?, ?, ?{', ?' * len(values)})",
                       (token_hash, self._account_id, now,
                        now + TOKEN_LIFETIME, *values.values()))
        return {"success": True, "token": token, "resource_url": self._resource_url(token_hash[:TOKEN_ID_LENGTH]),
                "browser_redirect_url": f"{self._resource_url(token)}/redeem"}

    def list(self) -> builtins.list[dict[str, Any]]:
        """Tokens of this account (made for it, or used to create it), or index-wide every token; oldest first.

        Each is named by its `token_id`, not by the token (which the index does not keep)."""
        self._purge_now()
        where, args = ("WHERE account = ?", (self._account_id,)) if self._account_id else ("", ())
        return [self._dict(r) for r in self._engine.store.rows(
            f"SELECT * FROM connect_tokens {where} ORDER BY created, token_hash", args)]

    def get(self, token: str) -> dict[str, Any]:
        """One token, by the token or its `token_id`: `{token_id, email, created, used, expires, callback_url,
        first_name, last_name, account, resource_url}`. The token itself is never answered back."""
        self._purge_now()
        return self._dict(self._find(token, by_id=True))

    def delete(self, token: str) -> dict[str, bool]:
        """Forget a token (used or not), given the token or its `token_id`; an unused one can no longer be
        redeemed."""
        self._engine.check_writable()
        row = self._find(token, by_id=True)
        self._engine.store.db.execute("DELETE FROM connect_tokens WHERE token_hash = ?", (row["token_hash"],))
        return {"success": True}

    def redeem(self, token: str, location: str | Path, *, type: str | None = None, label: str | None = None,
               email: str | None = None, first_name: str | None = None, last_name: str | None = None,
               workers: int | None = None, **options: Any) -> dict[str, Any]:
        """Connect the mail at `location` through `token`: add it as a source (creating the account when the
        token is not for one), run its initial sync, mark the token used, POST `source_callback_url`.

        Everything is checked before anything is created. Answers the used token (its `account`
        filled) with `browser_redirect_url` (the callback URL with `contextio_token`), the sync
        report and, when a source callback was asked for, how its delivery went: the POST is made
        only to a public address, vetted again now (unless the index allows private callbacks), and
        a refused or failed delivery does not undo the connection.
        """
        self._engine.check_writable()
        token = text_param("token", token)  # trimmed, as it is looked up
        row = self._find(token)
        now = int(self._engine.clock())
        if row["used"]:
            raise ConnectTokenUnusable("this connect token was used already; create another")
        if row["expires"] is not None and row["expires"] <= now:
            raise ConnectTokenUnusable("this connect token expired unused (tokens live 24 hours); create another")
        source_options = {**json.loads(row["source_options"]), **options}
        creating = row["account"] is None
        if creating:
            account_id = self._accounts.create(
                email=email or row["email"],
                first_name=first_name if first_name is not None else row["first_name"],
                last_name=last_name if last_name is not None else row["last_name"])["id"]
        else:
            account_id = row["account"]
            if self._engine.account_row(account_id)["suspended"]:
                raise ConnectTokenUnusable(f"account {account_id} is suspended; resume it before connecting "
                                           "a source")
        sources = Sources(self._engine, account_id)
        try:
            source = sources.add(location, label=label, type=type, **source_options)
        except Exception:
            if creating:  # nothing half-created
                self._engine.store.db.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
            raise
        with self._engine.store.transaction() as db:
            claimed = db.execute("UPDATE connect_tokens SET used = ?, expires = NULL, account = ? "
                                 "WHERE token_hash = ? AND used = 0", (now, account_id, row["token_hash"])).rowcount
        if not claimed:  # another process redeemed it between our check and now
            sources.delete(source["label"])
            if creating:
                self._accounts.delete(account_id)
            raise ConnectTokenUnusable("this connect token was used already; create another")
        try:
            report = self._engine.sync([sources.row(source["label"])], workers=workers, named=True)
        except MailindexError:  # a busy index, a source that cannot be read: undo, so the token can be used later
            self._undo(sources, source["label"], creating, row)
            raise
        out = self.get(token)
        out["browser_redirect_url"] = _with_query(row["callback_url"], contextio_token=token)
        out["sync"] = report.to_dict()
        if row["source_callback_url"]:
            out["source_callback"] = callbacks.post(row["source_callback_url"], {
                "account_id": account_id, "source_label": source["label"], "token": token,
                "status": sources.get(source["label"])["status"], "initial_import_finished": True,
                "added": report.added, "failed": report.failed}, allow_private=self._engine.allow_private_callbacks)
        return out

    # -- helpers ---------------------------------------------------------------
    def _undo(self, sources: Sources, label: str, creating: bool, row: sqlite3.Row) -> None:
        """Put back what a redemption made before its initial sync failed: the source, a new account, the
        token's unused state."""
        source = sources.row(label)
        db = self._engine.store.db
        if db.execute("SELECT 1 FROM locations WHERE source_id = ? LIMIT 1", (source["id"],)).fetchone():
            sources.delete(label)  # some mail was indexed: it leaves the index first
        with self._engine.store.transaction() as tx:
            tx.execute("DELETE FROM sync_log WHERE source_id = ?", (source["id"],))
            tx.execute("DELETE FROM sources WHERE id = ?", (source["id"],))
            if creating:
                tx.execute("DELETE FROM accounts WHERE id = ?", (source["account"],))
            tx.execute("UPDATE connect_tokens SET used = 0, expires = ?, account = ? WHERE token_hash = ?",
                       (row["expires"], row["account"], row["token_hash"]))

    def _find(self, token: Any, *, by_id: bool = False) -> sqlite3.Row:
        """The row of `token` (with `by_id`, a token_id also names it), of this account if this is one's."""
        token = text_param("token", token)
        if by_id and _TOKEN_ID.fullmatch(token):
            rows = self._engine.store.rows("SELECT * FROM connect_tokens WHERE substr(token_hash, 1, ?) = ?",
                                       (TOKEN_ID_LENGTH, token))
        else:
            rows = self._engine.store.rows("SELECT * FROM connect_tokens WHERE token_hash = ?", (_hash(token),))
        row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise ConnectTokenNotFound(token)
        if self._account_id is not None and row["account"] != self._account_id:
            raise ConnectTokenNotFound(token)
        return row

    def _purge_now(self) -> None:
        if not self._engine.read_only:
            self._purge(self._engine.store.db, int(self._engine.clock()))

    @staticmethod
    def _purge(db: sqlite3.Connection, now: int) -> None:
        db.execute("DELETE FROM connect_tokens WHERE used = 0 AND expires <= ?", (now,))

    def _resource_url(self, name: str) -> str:
        prefix = f"accounts/{self._account_id}/" if self._account_id else ""
        return f"mailindex:{prefix}connect_tokens/{name}"

    def _dict(self, r: sqlite3.Row) -> dict[str, Any]:
        account: dict[str, Any] = {}
        if r["used"] and r["account"]:
            try:
                info = self._accounts.get(r["account"])
            except MailindexError:
                info = None  # the account was deleted since
            if info is not None:
                account = {k: info[k] for k in ("id", "created", "suspended", "email_addresses", "first_name",
                                                "last_name", "sources")}
        token_id = r["token_hash"][:TOKEN_ID_LENGTH]
        return {"token_id": token_id, "email": r["email"], "created": r["created"], "used": r["used"],
                "expires": False if r["used"] else r["expires"], "callback_url": r["callback_url"],
                "first_name": r["first_name"], "last_name": r["last_name"], "account": account,
                "resource_url": self._resource_url(token_id)}


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode([*urllib.parse.parse_qsl(parts.query), *params.items()])
    return urllib.parse.urlunsplit(parts._replace(query=query))
