"""The tables of meta.sqlite beyond the store's own (index/store.py), made in one place: contacts'
figures, connect tokens and threads."""

from __future__ import annotations

import sqlite3

from mailindex.index import contacts
from mailindex.index.store import Store
from mailindex.threads import ThreadStore

CONNECT_TOKENS = """
CREATE TABLE IF NOT EXISTS connect_tokens (
    token_hash TEXT PRIMARY KEY,  -- SHA-256 of the token, never the token itself: what lookups use
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


def create_tables(store: Store) -> None:
    """Make every table a writable index needs beside the store's own."""
    store.db.executescript(contacts.DDL)
    _create_connect_tokens(store)
    ThreadStore(store.db)  # creates its tables


def _create_connect_tokens(store: Store) -> None:
    """Make the connect_tokens table, and take the clear tokens out of an index made when it kept them.

    Such an index has a `token` column beside `token_hash`. The column is dropped, then the whole
    file rewritten (VACUUM: no free page, nor the slack of a page, keeps a copy of a token, not even
    of a token purged long ago) and the write-ahead log truncated. Its tokens stay redeemable: they
    are looked up by their hash.
    """
    store.db.executescript(CONNECT_TOKENS)
    if not _keeps_clear_tokens(store.db):
        return
    with store.transaction() as db:
        if _keeps_clear_tokens(db):  # not done meanwhile by another process opening the index
            db.execute("ALTER TABLE connect_tokens DROP COLUMN token")
    store.db.execute("VACUUM")
    store.checkpoint()


def _keeps_clear_tokens(db: sqlite3.Connection) -> bool:
    return "token" in {column[1] for column in db.execute("PRAGMA table_info(connect_tokens)")}
