"""Contacts' bookkeeping: every correspondent of an account, with counts relative to its owner.

Each message leaves one row per address it names (with that address's roles),
and adds its share to each contact's figures in `contacts` of every account
it enters (through a source of that account), so listing contacts is one
indexed query and a sync costs what it adds, not what the contacts already
have. The rows let `refresh` recompute a contact from scratch when the owner
changes or a contact's newest message goes.

What the figures mean (the owner is the account's `email_addresses`):
- `received_count`: messages from the contact;
- `sent_count`: messages to the contact (To, Cc or Bcc) that the owner sent
  or also received: mail exchanged with the owner (all of them when no owner
  is known);
- `sent_from_account_count`: messages the owner sent to the contact;
- `count`: messages in either of the first two, each once;
- `last_received`, `last_sent`: the newest date of each kind;
- `name`: the display name on the contact's newest message that has one.
The owner's own addresses are not contacts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from mailindex.record import Record

FROM, TO, CC, BCC = 1, 2, 4, 8
RECIPIENT = TO | CC | BCC
_ROLE_BITS = {"from": FROM, "to": TO, "cc": CC, "bcc": BCC}

_JSON_LIST = "(SELECT value FROM json_each(?))"
_OWNER_IDS = "(SELECT id FROM address WHERE email IN (SELECT value FROM json_each(:owners)))"
_DIRTY = "(SELECT address FROM contact_dirty WHERE account = :account)"
_IN_ACCOUNT = "(SELECT l.message FROM locations l JOIN sources s ON s.id = l.source_id WHERE s.account = :account)"


Roles = dict[str, tuple[int, str]]


def roles(record: Record) -> Roles:
    """{lowercase email: (role bits, display name)} of every address a message names."""
    roles: dict[str, tuple[int, str]] = {}
    for role, bit in _ROLE_BITS.items():
        for a in record.addresses.get(role, []):
            if a.email:
                bits, name = roles.get(a.email.lower(), (0, ""))
                roles[a.email.lower()] = (bits | bit, name or a.name or "")
    return roles


def _ids(db: sqlite3.Connection, emails: Iterable[str]) -> dict[str, int]:
    return dict(db.execute(f"SELECT email, id FROM address WHERE email IN {_JSON_LIST}",
                           (json.dumps(list(emails)),)))


Named = Sequence[tuple[int, int, Roles]]  # (messages.id, date, roles) per message


def _named(messages: Sequence[tuple[int, Record]]) -> Named:
    return [(rowid, rec.date, roles(rec)) for rowid, rec in messages]


def _deltas(named: Named, owners: Sequence[str]) -> dict[str, list[Any]]:
    """What these messages add to each contact: [count, sent, received, sent_from_account, last_sent,
    last_received] (the module docstring says what each means)."""
    own = {o.lower() for o in owners}
    out: dict[str, list[Any]] = {}
    for _, date, roles in named:
        by_owner = any(bits & FROM for email, (bits, _) in roles.items() if email in own)
        to_owner = any(bits & RECIPIENT for email, (bits, _) in roles.items() if email in own)
        exchanged = not own or by_owner or to_owner
        for email, (bits, _) in roles.items():
            received, sent = bool(bits & FROM), bool(bits & RECIPIENT) and exchanged
            if email in own or not (received or sent):
                continue
            d = out.setdefault(email, [0, 0, 0, 0, None, None])
            d[0] += 1
            d[1] += sent
            d[2] += received
            d[3] += bool(bits & RECIPIENT) and by_owner
            if sent:
                d[4] = max(d[4] or date, date)
            if received:
                d[5] = max(d[5] or date, date)
    return out


def record_messages(db: sqlite3.Connection, named: Named) -> None:
    """Keep the addresses of new message rows, (messages.id, date, roles). Inside the caller's transaction."""
    db.executemany("INSERT INTO address (email, name, name_date) VALUES (?, ?, ?) ON CONFLICT (email) DO UPDATE "
                   "SET name = excluded.name, name_date = excluded.name_date "
                   "WHERE excluded.name != '' AND excluded.name_date >= address.name_date",
                   [(email, name, date) for _, date, roles in named for email, (_, name) in roles.items()])
    ids = _ids(db, {email for _, _, roles in named for email in roles})
    rows = [(ids[email], rowid, bits) for rowid, _, roles in named for email, (bits, _) in roles.items()]
    db.executemany("INSERT OR REPLACE INTO message_address VALUES (?, ?, ?)", rows)


def forget_messages(db: sqlite3.Connection, messages: Sequence[tuple[int, Record]]) -> None:
    """Drop the address rows of deleted message rows (after they left every account)."""
    named = _named(messages)
    ids = _ids(db, {email for _, _, roles in named for email in roles})
    pairs = [(ids[email], rowid) for rowid, _, roles in named for email in roles if email in ids]
    db.executemany("DELETE FROM message_address WHERE address = ? AND message = ?", pairs)


def add_to_account(db: sqlite3.Connection, account: str, named: Named, owners: Sequence[str]) -> None:
    """Messages entered the account (their first location in it): add them to its contacts' figures.

    Inside the caller's transaction, after `record_messages`; `owners` are the account's addresses.
    """
    db.executemany(
        "INSERT INTO contacts VALUES (?1, ?2, (SELECT name FROM address WHERE email = ?2), ?3, ?4, ?5, ?6, ?7, ?8, "
        "MAX(COALESCE(?7, 0), COALESCE(?8, 0))) ON CONFLICT (account, email) DO UPDATE SET name = excluded.name, "
        "count = count + excluded.count, sent_count = sent_count + excluded.sent_count, "
        "received_count = received_count + excluded.received_count, "
        "sent_from_account_count = sent_from_account_count + excluded.sent_from_account_count, "
        "last_sent = MAX(COALESCE(last_sent, excluded.last_sent), COALESCE(excluded.last_sent, last_sent)), "
        "last_received = MAX(COALESCE(last_received, excluded.last_received), "
        "COALESCE(excluded.last_received, last_received)), last_active = MAX(last_active, excluded.last_active)",
        [(account, email, *d) for email, d in _deltas(named, owners).items()])


def remove_from_account(db: sqlite3.Connection, account: str, messages: Sequence[tuple[int, Record]],
                        owners: Sequence[str]) -> None:
    """Messages left the account (their last location in it went): take them out of its contacts' figures.

    A contact whose newest message went is marked for `refresh` to find its new dates.
    """
    deltas = _deltas(_named(messages), owners)
    db.executemany("UPDATE contacts SET count = count - ?, sent_count = sent_count - ?, "
                   "received_count = received_count - ?, sent_from_account_count = sent_from_account_count - ? "
                   "WHERE account = ? AND email = ?", [(*d[:4], account, email) for email, d in deltas.items()])
    db.executemany("INSERT OR IGNORE INTO contact_dirty SELECT ?1, id FROM address WHERE email = ?2 AND EXISTS ("
                   "SELECT 1 FROM contacts WHERE account = ?1 AND email = ?2 AND (last_sent <= ?3 OR "
                   "last_received <= ?4))", [(account, email, d[4], d[5]) for email, d in deltas.items()])
    db.executemany("DELETE FROM contacts WHERE account = ? AND email = ? AND count <= 0",
                   [(account, email) for email in deltas])


def mark_all_dirty(db: sqlite3.Connection, account: str) -> None:
    """The account's owner changed: every one of its contacts' figures must be computed again."""
    db.execute("INSERT OR IGNORE INTO contact_dirty SELECT DISTINCT :account, address FROM message_address "
               f"WHERE message IN {_IN_ACCOUNT}", {"account": account})


def drop_account(db: sqlite3.Connection, account: str) -> None:
    """Forget an account's contact figures (the account is being deleted)."""
    db.execute("DELETE FROM contacts WHERE account = ?", (account,))
    db.execute("DELETE FROM contact_dirty WHERE account = ?", (account,))


def refresh(db: sqlite3.Connection, account: str, owners: Sequence[str]) -> int:
    """Recompute from scratch the figures of the account's contacts marked dirty; returns how many.

    One transaction. Adds and removals keep the figures current by themselves; this is for an owner
    change, and for a contact whose newest message was removed.
    """
    owner_list = json.dumps([o.lower() for o in owners])
    args = {"owners": owner_list, "account": account}
    with db:
        dirty = db.execute("SELECT COUNT(*) FROM contact_dirty WHERE account = ?", (account,)).fetchone()[0]
        if not dirty:
            return 0
        db.execute(f"DELETE FROM contacts WHERE account = :account AND email IN "
                   f"(SELECT email FROM address WHERE id IN {_DIRTY})", args)
        db.execute(f"""
            WITH own AS (
                SELECT message, MAX(role & {FROM} != 0) AS by_owner, MAX(role & {RECIPIENT} != 0) AS to_owner
                FROM message_address WHERE address IN {_OWNER_IDS} GROUP BY message),
            rows AS (
                SELECT a.address, a.role, m.date,
                       CASE WHEN :owners = '[]' THEN 1
                            ELSE COALESCE(o.by_owner, 0) OR COALESCE(o.to_owner, 0) END AS exchanged,
                       COALESCE(o.by_owner, 0) AS by_owner
                FROM message_address a JOIN messages m ON m.id = a.message LEFT JOIN own o ON o.message = a.message
                WHERE a.address IN {_DIRTY} AND a.address NOT IN {_OWNER_IDS} AND a.message IN {_IN_ACCOUNT})
            INSERT INTO contacts
            SELECT :account, ad.email, ad.name,
                   SUM(role & {FROM} != 0 OR (role & {RECIPIENT} != 0 AND exchanged)),
                   SUM(role & {RECIPIENT} != 0 AND exchanged),
                   SUM(role & {FROM} != 0),
                   SUM(role & {RECIPIENT} != 0 AND by_owner),
                   MAX(CASE WHEN role & {RECIPIENT} != 0 AND exchanged THEN date END),
                   MAX(CASE WHEN role & {FROM} != 0 THEN date END),
                   NULL
            FROM rows JOIN address ad ON ad.id = rows.address GROUP BY rows.address""", args)
        db.execute("UPDATE contacts SET last_active = MAX(COALESCE(last_sent, 0), COALESCE(last_received, 0)) "
                   f"WHERE account = :account AND email IN (SELECT email FROM address WHERE id IN {_DIRTY})", args)
        db.execute(f"DELETE FROM contacts WHERE account = :account AND count = 0 AND email IN "
                   f"(SELECT email FROM address WHERE id IN {_DIRTY})", args)
        db.execute("DELETE FROM contact_dirty WHERE account = ?", (account,))
    return int(dirty)
