"""Every table of meta.sqlite, in one place: the store's (accounts, sources, messages, locations,
quarantine, the sync intent and log), contacts' figures, connect tokens and threads.

`create` makes them all when a store is opened for writing, and takes the clear tokens out of an
index made when connect_tokens kept them.
"""

from __future__ import annotations

import sqlite3

STORE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,  -- 24 hex
    created INTEGER NOT NULL,
    suspended INTEGER NOT NULL DEFAULT 0,
    email_addresses TEXT NOT NULL DEFAULT '[]',  -- the owner's addresses, lowercase, JSON
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts(id),
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    location TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',  -- the backend's own options
    status TEXT NOT NULL DEFAULT 'OK',
    sync_all_folders INTEGER NOT NULL DEFAULT 0,
    sync_flags INTEGER NOT NULL DEFAULT 0,
    raw_file_list INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    last_sync_start INTEGER,
    last_sync_stop INTEGER,
    last_expunge INTEGER,
    initial_import_finished INTEGER NOT NULL DEFAULT 0,
    full_rescan INTEGER NOT NULL DEFAULT 0,  -- an option changed: compare every entry, trust no stamp
    UNIQUE (account, label)
);
CREATE TABLE IF NOT EXISTS containers (
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    stamp TEXT NOT NULL,
    skipped TEXT NOT NULL DEFAULT '{}',  -- files its last listing left out, by reason (JSON)
    PRIMARY KEY (source_id, name)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    sort_key INTEGER NOT NULL UNIQUE,
    date INTEGER NOT NULL,
    date_indexed INTEGER NOT NULL,
    email_message_id TEXT,
    gmail_message_id TEXT,
    parse_error TEXT,
    nb_files INTEGER NOT NULL DEFAULT 0,
    nb_signature_images INTEGER NOT NULL DEFAULT 0,  -- of nb_files: listed only with raw_file_list
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_email_message_id ON messages(email_message_id);
CREATE INDEX IF NOT EXISTS messages_gmail_message_id ON messages(gmail_message_id);
CREATE TABLE IF NOT EXISTS locations (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    container TEXT NOT NULL,
    key TEXT NOT NULL,
    message INTEGER NOT NULL REFERENCES messages(id),
    folders TEXT NOT NULL,
    locator TEXT NOT NULL,  -- the backend's locator as JSON, without its path (see store.location_columns)
    content_stamp TEXT NOT NULL,
    flags TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    sig TEXT NOT NULL,
    path TEXT NOT NULL,  -- the locator's path
    UNIQUE (source_id, container, key)
);
CREATE INDEX IF NOT EXISTS locations_message ON locations(message);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    container TEXT NOT NULL,
    key TEXT NOT NULL,
    locator TEXT NOT NULL,
    error TEXT NOT NULL,
    indexed INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    UNIQUE (source_id, container, key)
);
CREATE TABLE IF NOT EXISTS intent (message_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS sync_log (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL,
    started INTEGER NOT NULL,
    seconds REAL NOT NULL,
    report TEXT NOT NULL
);
"""

CONTACTS = """
CREATE TABLE IF NOT EXISTS address (
    id        INTEGER PRIMARY KEY,
    email     TEXT NOT NULL UNIQUE,
    name      TEXT NOT NULL DEFAULT '',  -- from the newest message that gave one
    name_date INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS message_address (
    address INTEGER NOT NULL,  -- address.id
    message INTEGER NOT NULL,  -- messages.id
    role    INTEGER NOT NULL,  -- FROM | TO | CC | BCC bits
    PRIMARY KEY (address, message)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contacts (
    account TEXT NOT NULL,  -- figures are per account: they depend on its owner and its messages
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    sent_count INTEGER NOT NULL,
    received_count INTEGER NOT NULL,
    sent_from_account_count INTEGER NOT NULL,
    last_sent INTEGER,
    last_received INTEGER,
    last_active INTEGER,
    PRIMARY KEY (account, email)
);
CREATE INDEX IF NOT EXISTS contacts_by_count ON contacts (account, count);
CREATE INDEX IF NOT EXISTS contacts_by_sent ON contacts (account, sent_count);
CREATE INDEX IF NOT EXISTS contacts_by_received ON contacts (account, received_count);
CREATE INDEX IF NOT EXISTS contacts_by_active ON contacts (account, last_active);
CREATE TABLE IF NOT EXISTS contact_dirty (account TEXT NOT NULL, address INTEGER NOT NULL,
                                          PRIMARY KEY (account, address)) WITHOUT ROWID;
"""

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

# Threads are numbered inside SQLite (small integers keep the indexes that
# every add touches small); their public ids are the names in thread_info.
THREADS = (
    """CREATE TABLE IF NOT EXISTS thread_info (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,  -- the public thread id
        size INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS thread_message (
        key    TEXT NOT NULL UNIQUE,
        thread INTEGER NOT NULL,
        nodes  TEXT NOT NULL  -- JSON list of the thread_node ids it links: its Message-ID, then its references
    )""",
    "CREATE INDEX IF NOT EXISTS thread_message_by_thread ON thread_message (thread)",
    # Numbered, so each message lists the Message-IDs it links as small integers: a thread's ids
    # are written once here, not once per message that names them.
    """CREATE TABLE IF NOT EXISTS thread_node (
        id     INTEGER PRIMARY KEY,
        node   TEXT NOT NULL UNIQUE,  -- a Message-ID, of a message we have or only of one referenced (a ghost)
        thread INTEGER NOT NULL
    )""",
)


def create(db: sqlite3.Connection) -> None:
    """Make every table (none is changed if it exists). Not inside a transaction: VACUUM may run."""
    db.executescript(STORE + CONTACTS + CONNECT_TOKENS)
    create_threads(db)
    _drop_clear_tokens(db)


def create_threads(db: sqlite3.Connection) -> None:
    """The thread tables; one execute per statement, since executescript would commit a caller's transaction."""
    for statement in THREADS:
        db.execute(statement)


def _drop_clear_tokens(db: sqlite3.Connection) -> None:
    """An index made when connect_tokens kept the token beside its hash loses the `token` column, then
    the whole file is rewritten (VACUUM: no free page, nor the slack of a page, keeps a copy of a token,
    not even of one purged long ago) and the write-ahead log truncated. Its tokens stay redeemable:
    they are looked up by their hash."""
    if not _keeps_clear_tokens(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if _keeps_clear_tokens(db):  # not done meanwhile by another process opening the index
            db.execute("ALTER TABLE connect_tokens DROP COLUMN token")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _keeps_clear_tokens(db: sqlite3.Connection) -> bool:
    return "token" in {column[1] for column in db.execute("PRAGMA table_info(connect_tokens)")}
