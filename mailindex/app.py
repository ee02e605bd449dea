"""The facade: `MailIndex` opens an index and hands out its accounts' resources; `Account` bundles one
account's. Front ends (the CLI, a server) stand on this and on `mailindex.api`."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailindex.engine import Engine
from mailindex.errors import AccountNotFound, QueryError
from mailindex.query.filters import account_id_param

# A resource's module is imported when the resource is first used: a command that asks one
# question loads that resource alone.
if TYPE_CHECKING:
    import pluggy

    from mailindex.api.accounts import Accounts
    from mailindex.api.connect_tokens import ConnectTokens
    from mailindex.api.contacts import Contacts
    from mailindex.api.messages import Messages
    from mailindex.api.sources import Sources
    from mailindex.index.store import Store
    from mailindex.index.tantivy_index import TantivyIndex, Writer
    from mailindex.sources.base import Backend
    from mailindex.sync import Progress, SyncReport


class Account:
    """One account of an index: its messages, contacts, sources and connect tokens.

    >>> acct = mx.accounts.create(email="me@example.com")
    >>> a = mx.account(acct["id"])
    >>> a.sources.add("~/Maildir", label="personal"); a.sync()
    >>> a.messages.list(email="alice@example.com")
    """

    def __init__(self, engine: Engine, account_id: str) -> None:
        self._engine, self.id = engine, account_id

    # Each resource is made when first used: a one-question command builds one, not five.
    @functools.cached_property
    def messages(self) -> Messages:
        from mailindex.api.messages import Messages

        return Messages(self._engine, self.id)

    @functools.cached_property
    def contacts(self) -> Contacts:
        from mailindex.api.contacts import Contacts

        return Contacts(self._engine, self.id)

    @functools.cached_property
    def sources(self) -> Sources:
        from mailindex.api.sources import Sources

        return Sources(self._engine, self.id)

    @functools.cached_property
    def connect_tokens(self) -> ConnectTokens:
        from mailindex.api.connect_tokens import ConnectTokens

        return ConnectTokens(self._engine, self.id)

    def __repr__(self) -> str:
        return f"<Account {self.id}>"

    @property
    def owners(self) -> list[str]:
        """The owner's addresses, lowercase."""
        return self._engine.owners(self.id)

    @property
    def suspended(self) -> bool:
        return bool(self._engine.account_row(self.id)["suspended"])

    def info(self) -> dict[str, Any]:
        """The Context.IO account object."""
        from mailindex.api.accounts import account_dicts

        return account_dicts(self._engine, [self._engine.account_row(self.id)])[0]

    def index(self, location: str | os.PathLike[str], label: str | None = None, type: str | None = None, *,
              workers: int | None = None, progress: Progress | None = None, **options: Any) -> SyncReport:
        """Add `location` as a source if it is new (label derived from its name; `options` as for
        `Sources.add`), then sync it. Indexing the same path again syncs it."""
        from mailindex.locations import canonical

        resolved = canonical(location)
        existing = {r["location"]: r["label"] for r in self.sources.rows()}
        if label is None:
            label = existing.get(resolved)
        if label is None or label not in existing.values():
            label = self.sources.add(location, label=label, type=type, **options)["label"]
        elif self.sources.get(label)["location"] != resolved:
            raise QueryError("source", label, f"this label already names {self.sources.get(label)['location']}")
        return self.sync(label, workers=workers, progress=progress)

    def sync(self, label: str | None = None, *, workers: int | None = None,
             progress: Progress | None = None) -> SyncReport:
        """Sync one source of the account (by label, "0" for the first) or all of its enabled sources."""
        rows = [self.sources.row(label)] if label is not None else self.sources.rows()
        return self._engine.sync(rows, workers=workers, progress=progress, named=label is not None)


class MailIndex:
    """A persistent, searchable index of mail, held by accounts that own sources.

    >>> mx = MailIndex("./idx")                     # opens, or creates on first use
    >>> mx.add_source("personal", "~/Maildir")      # into the default account; maildir | mbox | eml tree
    >>> mx.sync("personal").added
    >>> mx.messages.list(**{"from": "alice@example.com"}, limit=10)
    >>> acct = mx.accounts.create(email="bob@example.com")   # more accounts, each with its own sources
    >>> mx.account(acct["id"]).messages.count()

    `mx.messages`, `mx.contacts`, `add_source`, `sources` and `source` are
    those of the default account, which the index makes the first time one
    is needed.

    By default the index is opened for reading and writing, and made if it
    is not there (its directory 0700, its files 0600: they hold addresses,
    hashes and mail metadata; an existing index keeps its modes).
    `read_only=True` is the forensic mode, which the `mailindex` command
    uses for every command that changes nothing: the index must exist
    (IndexNotFound otherwise, and nothing is created), nothing in its
    directory is written, created or touched (no SQLite -wal/-shm, no Tantivy
    lock file, no timestamp), also on a copy or medium the user cannot write,
    and every write raises ReadOnlyIndex before any mail is touched.

    A MailIndex belongs to the thread that opened it: used from another
    thread it raises IndexThreadError (open one MailIndex per thread; they
    may share a directory). After close() every use raises IndexClosed.

    `owner` sets
    the default account's addresses, which give the `email` filter and the
    contacts their meaning. `clock` gives the time in Unix seconds (tests
    inject one). `allow_private_callbacks=True` lets connect-token callbacks
    go to loopback, private and other non-public addresses, which are refused
    otherwise (a token's creator must not make this host call its own network);
    for tests and trusted local setups, and settable only here.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 pm: pluggy.PluginManager | None = None, owner: list[str] | None = None,
                 clock: Callable[[], float] = time.time, allow_private_callbacks: bool = False) -> None:
        self.engine = Engine(path, read_only=read_only, pm=pm, clock=clock,
                             allow_private_callbacks=allow_private_callbacks)
        self._accounts: dict[str, Account] = {}
        if owner is not None:
            self.engine.check_writable()
            self.accounts.update(self.default_account.id, email_addresses=owner)

    def __enter__(self) -> "MailIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close open sources (an IMAP connection), the metadata store and the search index; the index
        stays on disk. Closing again does nothing; any other use afterwards raises IndexClosed."""
        self.engine.close()

    # -- what the engine holds ---------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.engine.path

    @property
    def read_only(self) -> bool:
        return self.engine.read_only

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def tantivy(self) -> TantivyIndex:
        return self.engine.tantivy

    @property
    def pm(self) -> pluggy.PluginManager:
        return self.engine.pm

    @property
    def passwords(self) -> dict[str, str]:
        """location -> password given by the caller for this MailIndex's life; never written anywhere."""
        return self.engine.passwords

    # -- accounts -------------------------------------------------------------
    @functools.cached_property
    def accounts(self) -> Accounts:
        """The accounts resource of the index."""
        from mailindex.api.accounts import Accounts

        return Accounts(self.engine)

    @functools.cached_property
    def connect_tokens(self) -> ConnectTokens:
        """The index-wide connect tokens: redeeming one creates an account."""
        from mailindex.api.connect_tokens import ConnectTokens

        return ConnectTokens(self.engine)

    def account(self, account_id: str) -> Account:
        """One account by id; AccountNotFound if none."""
        account_id = account_id_param(account_id)
        if not self.engine.store.has_account(account_id):
            raise AccountNotFound(account_id)
        return self._bundle(account_id)

    def _bundle(self, account_id: str) -> Account:
        """The Account of an id known to exist, made once."""
        if account_id not in self._accounts:
            self._accounts[account_id] = Account(self.engine, account_id)
        return self._accounts[account_id]

    @property
    def default_account(self) -> Account:
        """The account the index makes for you the first time one is needed (again if it was deleted)."""
        store = self.engine.store
        chosen = store.meta("default_account")
        if not chosen or not store.has_account(chosen):
            if self.engine.read_only:
                raise AccountNotFound("default (this index has no default account; name one)")
            chosen = self.accounts.create()["id"]
            store.set_meta("default_account", chosen)
        return self._bundle(chosen)

    @property
    def messages(self) -> Messages:
        """The default account's messages."""
        return self.default_account.messages

    @property
    def contacts(self) -> Contacts:
        """The default account's contacts."""
        return self.default_account.contacts

    @property
    def owner(self) -> list[str]:
        """The default account's owner addresses (lowercase)."""
        return self.default_account.owners

    # -- sources (of the default account) -----------------------------------------
    def open_source(self, location: str | os.PathLike[str], type: str | None = None,
                    options: dict[str, Any] | None = None) -> Backend:
        """The backend that reads `location` (detected unless `type` is given): a path, or a URL such as
        imap://user@host for a backend plugin."""
        return self.engine.open_source(location, type, options)

    def add_source(self, label: str, location: str | os.PathLike[str], type: str | None = None,
                   **options: Any) -> dict[str, Any]:
        """Register a source of the default account under `label`. Does not sync it.

        Takes the options of `Sources.add` (sync_all_folders, sync_flags, raw_file_list, backend options)."""
        return self.default_account.sources.add(location, label=label, type=type, **options)

    def sources(self) -> list[dict[str, Any]]:
        """Every source of the default account with its type, location, status and sync state."""
        return self.default_account.sources.list()

    def source(self, label: str) -> dict[str, Any]:
        """One source of the default account by label ("0": the first); SourceNotFound if none."""
        return self.default_account.sources.get(label)

    # -- syncing --------------------------------------------------------------
    def writer(self) -> Writer:
        """Take the index's single writer (IndexLocked if another process has it) and repair a crash."""
        return self.engine.writer()

    def sync(self, label: str | None = None, *, workers: int | None = None,
             progress: Progress | None = None) -> SyncReport:
        """Sync one source of the default account, or (label None) every enabled source of every account."""
        if label is not None:
            return self.default_account.sync(label, workers=workers, progress=progress)
        return self.engine.sync(self.engine.store.source_rows(), workers=workers, progress=progress)

    def index(self, location: str | os.PathLike[str], label: str | None = None, type: str | None = None, *,
              workers: int | None = None, progress: Progress | None = None, **options: Any) -> SyncReport:
        """Add `location` to the default account if it is new, then sync it (see `Account.index`)."""
        return self.default_account.index(location, label, type, workers=workers, progress=progress, **options)

    def quarantine(self) -> list[dict[str, Any]]:
        """Messages recorded with an error: account, source, locator, error, and whether they were indexed."""
        return self.engine.quarantine()
