"""The Context.IO contacts resource: an account's correspondents, with counts relative to its owner
(what each figure means: mailindex.index.contacts, which keeps them)."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from mailindex.api.messages import Messages
from mailindex.engine import Engine
from mailindex.errors import ContactNotFound, QueryError
from mailindex.query.filters import MAX_LIMIT, int_param, known_params, text_param
from mailindex.results import thumbnail

SORT_BY = ("email", "count", "received_count", "sent_count")
CONTACT_LIST_PARAMS = ("search", "active_before", "active_after", "sort_by", "sort_order", "limit", "offset")


class Contacts:
    """The Context.IO contacts resource of one account."""

    def __init__(self, engine: Engine, account_id: str) -> None:
        self._engine, self._account_id = engine, account_id

    def list(self, **params: Any) -> dict[str, Any]:
        """`{query, matches}`: correspondents filtered by `search`, `active_before`/`active_after`, sorted by
        `sort_by` (email, count, received_count, sent_count) and `sort_order`, paged by `limit` (1..100) and
        `offset`."""
        return list_contacts(self._engine.store.db, self._account_id, params)

    def get(self, email: str) -> dict[str, Any]:
        """One contact's figures; ContactNotFound when no message of the account names the address."""
        address = text_param("email", email).lower()
        row = self._engine.store.db.execute(f"SELECT {_COLUMNS} FROM contacts WHERE account = ? AND email = ?",
                                            (self._account_id, address)).fetchone()
        if row is None:
            raise ContactNotFound(address)
        return _contact(row)

    def messages(self, email: str, **params: Any) -> builtins.list[dict[str, Any]]:
        """The latest messages exchanged with a contact: from it, to it, or to both it and the owner.

        Takes `limit`, `offset` and the include options of a message list."""
        return Messages(self._engine, self._account_id).list(email=email, **params)


_COLUMNS = "email, name, count, sent_count, received_count, sent_from_account_count, last_sent, last_received"


def _contact(r: Sequence[Any]) -> dict[str, Any]:
    return {"email": r[0], "name": r[1], "count": r[2], "sent_count": r[3], "received_count": r[4],
            "sent_from_account_count": r[5], "thumbnail": thumbnail(r[0]), "last_sent": r[6], "last_received": r[7]}


def list_contacts(db: sqlite3.Connection, account: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The Context.IO contacts list of one account: `{query, matches}`."""
    p = known_params(params, CONTACT_LIST_PARAMS)
    search = text_param("search", p["search"]).lower() if "search" in p else None
    sort_by = p.get("sort_by", "count")
    if sort_by not in SORT_BY:
        raise QueryError("sort_by", sort_by, f"must be one of {', '.join(SORT_BY)}")
    sort_order = p.get("sort_order", "asc" if sort_by == "email" else "desc")
    if sort_order not in ("asc", "desc"):
        raise QueryError("sort_order", sort_order, "must be 'asc' or 'desc'")
    limit = int_param("limit", p.get("limit", MAX_LIMIT), 1, MAX_LIMIT)
    offset = int_param("offset", p.get("offset", 0), 0)
    before = int_param("active_before", p["active_before"]) if "active_before" in p else None
    after = int_param("active_after", p["active_after"]) if "active_after" in p else None
    where = ["account = ?"]
    args: builtins.list[Any] = [account]
    if search is not None:
        where.append("(instr(email, ?) > 0 OR instr(lower(name), ?) > 0)")
        args += [search, search]
    if before is not None:
        where.append("last_active < ?")
        args.append(before)
    if after is not None:
        where.append("last_active > ?")
        args.append(after)
    order = f"{sort_by} {sort_order.upper()}" + ("" if sort_by == "email" else f", email {sort_order.upper()}")
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM contacts WHERE {' AND '.join(where)} "
        f"ORDER BY {order} LIMIT ? OFFSET ?",
        [*args, limit, offset]).fetchall()
    query = {"search": search, "active_before": before, "active_after": after, "sort_by": sort_by,
             "sort_order": sort_order, "limit": limit, "offset": offset}
    return {"query": {k: v for k, v in query.items() if v is not None},
            "matches": [_contact(r) for r in rows]}
