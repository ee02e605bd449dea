"""The Context.IO accounts resource: who owns the mail. An index holds accounts; an account has an
owner and sources.

An account's `email_addresses` are its owner's: they decide what "sent" and
"received" mean for its contacts and what the `email` filter matches. Its
messages are those found in its sources; a message in two accounts' sources
is stored once and listed in both.
"""

from __future__ import annotations

import builtins
import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from mailindex.api.sources import SOURCE_STATUSES, Sources
from mailindex.engine import Engine
from mailindex.errors import QueryError
from mailindex.index import contacts
from mailindex.query.filters import (MAX_LIMIT, account_id_param, email_list, flag_param, int_param, known_params, name_param,
                                     text_param)

ACCOUNT_LIST_PARAMS = ("email", "status", "status_ok", "limit", "offset")


def new_account_id() -> str:
    """24 lowercase hex characters from a cryptographic random source."""
    return secrets.token_hex(12)


class Accounts:
    """The Context.IO accounts resource of an index."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, email: str | None = None, first_name: str = "", last_name: str = "",
               email_addresses: str | Iterable[str] | None = None) -> dict[str, Any]:
        """A new account, owned by `email` (and any further `email_addresses`); no sources yet."""
        self._engine.check_writable()
        addresses = email_list("email", email) + email_list("email_addresses", email_addresses)
        account_id = new_account_id()
        with self._engine.store.transaction() as db:
            insert_account(db, account_id, int(self._engine.clock()), list(dict.fromkeys(addresses)),
                           name_param("first_name", first_name), name_param("last_name", last_name))
        return self.get(account_id)

    def list(self, **params: Any) -> builtins.list[dict[str, Any]]:
        """Accounts, oldest first, filtered by `email` (an owner address), `status` (some source has it),
        `status_ok` (1: every source OK; 0: some source not OK), paged by `limit` (1..100) and `offset`."""
        p = known_params(params, ACCOUNT_LIST_PARAMS)
        where, args = [], []
        if "email" in p:
            where.append("EXISTS (SELECT 1 FROM json_each(a.email_addresses) WHERE value = ?)")
            args.append(text_param("email", p["email"]).lower())
        if "status" in p:
            status = text_param("status", p["status"]).upper()
            if status not in SOURCE_STATUSES:
                raise QueryError("status", p["status"], f"must be one of {', '.join(SOURCE_STATUSES)}")
            where.append("EXISTS (SELECT 1 FROM sources s WHERE s.account = a.id AND s.status = ?)")
            args.append(status)
        if "status_ok" in p:
            ok = int_param("status_ok", p["status_ok"], 0, 1)
            where.append(("NOT " if ok else "") +
                         "EXISTS (SELECT 1 FROM sources s WHERE s.account = a.id AND s.status != 'OK')")
        limit = int_param("limit", p.get("limit", MAX_LIMIT), 1, MAX_LIMIT)
        offset = int_param("offset", p.get("offset", 0), 0)
        rows = self._engine.store.rows(f"SELECT * FROM accounts a {'WHERE ' + ' AND '.join(where) if where else ''} "
                                   "ORDER BY created, rowid LIMIT ? OFFSET ?", [*args, limit, offset])
        return account_dicts(self._engine, rows)

    def get(self, account_id: str) -> dict[str, Any]:
        """One account object; AccountNotFound if no account has this id."""
        return account_dicts(self._engine, [self._engine.account_row(account_id_param(account_id))])[0]

    def update(self, account_id: str, *, first_name: str | None = None, last_name: str | None = None,
               email_addresses: str | Iterable[str] | None = None, suspended: bool | int | None = None,
               ) -> dict[str, Any]:
        """Change names, the owner's addresses (contacts are recounted), or suspension (1 suspends, 0 resumes)."""
        self._engine.check_writable()
        account_id = account_id_param(account_id)
        row = self._engine.account_row(account_id)
        changes: dict[str, Any] = {}
        if first_name is not None:
            changes["first_name"] = name_param("first_name", first_name)
        if last_name is not None:
            changes["last_name"] = name_param("last_name", last_name)
        if suspended is not None:
            flag = flag_param("suspended", suspended)
            changes["suspended"] = (row["suspended"] or int(self._engine.clock())) if flag else 0
        owners = None
        if email_addresses is not None:
            owners = email_list("email_addresses", email_addresses)
            changes["email_addresses"] = json.dumps(owners)
        if changes:
            with self._engine.store.transaction() as db:
                db.execute(f"UPDATE accounts SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                           [*changes.values(), account_id])
                if owners is not None and owners != json.loads(row["email_addresses"]):
                    contacts.mark_all_dirty(db, account_id)  # "sent" and "received" changed meaning
            if owners is not None:
                contacts.refresh(self._engine.store.db, account_id, owners)
        return self.get(account_id)

    def suspend(self, account_id: str) -> dict[str, Any]:
        """Stop syncing the account's sources (its messages stay searchable); `update(suspended=0)` resumes."""
        return self.update(account_id, suspended=1)

    def delete(self, account_id: str) -> dict[str, bool]:
        """Remove the account, its sources, their messages from the index, its contacts and connect tokens.

        Source mail on disk is never touched."""
        self._engine.check_writable()
        account_id = account_id_param(account_id)
        self._engine.account_row(account_id)
        sources = Sources(self._engine, account_id)
        for row in sources.rows():
            sources.delete(row["label"])
        with self._engine.store.transaction() as db:
            contacts.drop_account(db, account_id)
            db.execute("DELETE FROM connect_tokens WHERE account = ?", (account_id,))
            db.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
            db.execute("DELETE FROM meta WHERE key = 'default_account' AND value = ?", (account_id,))
        return {"success": True}


def insert_account(db: sqlite3.Connection, account_id: str, created: int, email_addresses: Sequence[str],
                   first_name: str = "", last_name: str = "") -> None:
    """Inside the caller's transaction."""
    db.execute("INSERT INTO accounts (id, created, email_addresses, first_name, last_name) VALUES (?, ?, ?, ?, ?)",
               (account_id, created, json.dumps(list(email_addresses)), first_name, last_name))


def account_dicts(engine: Engine, rows: Sequence[sqlite3.Row]) -> builtins.list[dict[str, Any]]:
    """Context.IO account objects for `accounts` rows, with their sources and counts (one query for all)."""
    ids = [r["id"] for r in rows]
    counts = _counts(engine.store.db, ids) if ids else {}
    out = []
    for r in rows:
        nb_messages, nb_files = counts.get(r["id"], (0, 0))
        out.append({
            "id": r["id"], "created": r["created"], "suspended": r["suspended"],
            "email_addresses": json.loads(r["email_addresses"]), "first_name": r["first_name"],
            "last_name": r["last_name"], "password_expired": 0, "sources": Sources(engine, r["id"]).list(),
            "nb_messages": nb_messages, "nb_files": nb_files, "resource_url": f"mailindex:accounts/{r['id']}",
        })
    return out


def _counts(db: sqlite3.Connection, account_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """{account: (messages, files)}; files as the account's `files` lists show them (see raw_file_list)."""
    rows = db.execute(
        """WITH placed AS (
               SELECT s.account, l.message, MAX(s.raw_file_list) AS raw
               FROM locations l JOIN sources s ON s.id = l.source_id
               WHERE s.account IN (SELECT value FROM json_each(?)) GROUP BY s.account, l.message)
           SELECT p.account, COUNT(*), SUM(m.nb_files - CASE WHEN p.raw THEN 0 ELSE m.nb_signature_images END)
           FROM placed p JOIN messages m ON m.id = p.message GROUP BY p.account""",
        (json.dumps(list(account_ids)),))
    return {a: (n, f or 0) for a, n, f in rows}

