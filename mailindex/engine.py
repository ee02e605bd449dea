"""MailIndex: an index directory, its accounts and syncing; the resources hang off it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy

from mailindex import connect_tokens, contacts
from mailindex.accounts import Account, Accounts, check_account_id
from mailindex.connect_tokens import ConnectTokens
from mailindex.contacts import Contacts
from mailindex.errors import (AccountNotFound, ConcurrentChange, IndexNotFound, QueryError, ReadOnlyIndex, SourceError,
                              SourceFormatError, SourceNotFound, SourceUnavailable)
from mailindex.index.searcher import Searcher
from mailindex.index.store import Store
from mailindex.index.tantivy_index import TantivyIndex, Writer
from mailindex.locations import is_url
from mailindex.messages import Messages
from mailindex.parse_headers import valid_text
from mailindex.plugins import plugin_manager
from mailindex.sources.base import Source
from mailindex.sync import Progress, SourceSync, SyncReport, repair
from mailindex.threads import ThreadStore


# A sync sets the status it finds, unless someone disabled the source meanwhile (another process may have).
_SYNC_STATUS = "CASE WHEN status IN ('DISABLED', 'TEMP_DISABLED') THEN status ELSE '{}' END"


def default_index_dir() -> Path:
    """$MAILINDEX_HOME, else $XDG_DATA_HOME/mailindex, else ~/.local/share/mailindex."""
    if os.environ.get("MAILINDEX_HOME"):
        return Path(os.environ["MAILINDEX_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mailindex"


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
        self.path = Path(path).expanduser() if path is not None else default_index_dir()
        self.read_only = read_only
        self.clock = clock
        self.allow_private_callbacks = allow_private_callbacks
        if read_only:
            if not (self.path / "meta.sqlite").is_file():
                raise IndexNotFound(str(self.path))
        else:
            try:
                str(self.path).encode("utf-8")
            except UnicodeEncodeError:  # checked before anything is made there
                raise QueryError("path", str(self.path), "is not valid UTF-8: Tantivy writes an index only at a "
                                 "UTF-8 path (read_only=True reads one anywhere)") from None
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._pm = pm
        self.store = Store(self.path / "meta.sqlite", read_only=read_only)
        try:
            self.tantivy = TantivyIndex(self.path / "tantivy", read_only=read_only, file_mode=self.store.file_mode)
        except BaseException:
            self.store.close()  # a failed open leaves nothing open
            raise
        self.searcher = Searcher(self.tantivy)
        if not read_only:
            contacts.create_tables(self.store.db)
            connect_tokens.create_tables(self.store)
            ThreadStore(self.store.db)  # creates its tables
        self._accounts: dict[str, Account] = {}
        self._open_sources: dict[tuple[Any, ...], Source] = {}
        self.passwords: dict[str, str] = {}  # location -> password given by the caller; kept in memory only
        self.accounts = Accounts(self)
        self.connect_tokens = ConnectTokens(self)
        if owner is not None:
            self._check_writable()
            self.accounts.update(self.default_account.id, email_addresses=owner)

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager: made on first use, since loading entry points costs a CLI query ~20 ms."""
        if self._pm is None:
            self._pm = plugin_manager()
        return self._pm

    def __enter__(self) -> "MailIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close open sources (an IMAP connection), the metadata store and the search index; the index
        stays on disk. Closing again does nothing; any other use afterwards raises IndexClosed."""
        if self.store.closed:
            return
        self.store.check()  # IndexThreadError from another thread, before anything is closed
        for src in self._open_sources.values():
            src.close()
        self._open_sources.clear()
        try:
            self.store.close()
        finally:
            self.tantivy.close()

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyIndex(f"{self.path} was opened read-only")

    # -- accounts -------------------------------------------------------------
    def account(self, account_id: str) -> Account:
        """One account by id; AccountNotFound if none."""
        account_id = check_account_id(account_id)
        if account_id not in self._accounts:
            if not self.store.db.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone():
                raise AccountNotFound(account_id)
            self._accounts[account_id] = Account(self, account_id)
        return self._accounts[account_id]

    @property
    def default_account(self) -> Account:
        """The account the index makes for you the first time one is needed (again if it was deleted)."""
        chosen = self.store.meta("default_account")
        if not chosen or not self.store.db.execute("SELECT 1 FROM accounts WHERE id = ?", (chosen,)).fetchone():
            if self.read_only:
                raise AccountNotFound("default (this index has no default account; name one)")
            chosen = self.accounts.create()["id"]
            self.store.set_meta("default_account", chosen)
        return self.account(chosen)

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
                    options: Mapping[str, Any] | None = None) -> Source:
        """The backend that reads `location` (detected unless `type` is given): a path, or a URL such as
        imap://user@host for a backend plugin."""
        if is_url(location):
            where = str(location)
            if where in self.passwords:  # given by the caller, held in memory only
                options = {**(options or {}), "password": self.passwords[where]}
        else:
            where = str(Path(location).expanduser())
            if not Path(where).exists():
                raise SourceNotFound(where, "no such file or directory")
        known = [t for types in self.pm.hook.mailindex_source_types() for t in types]
        if type is not None and type not in known:
            raise SourceFormatError(where, f"unknown source type {type!r}; known: {', '.join(sorted(known))}")
        src = self.pm.hook.mailindex_open_source(location=where, source_type=type, options=dict(options or {}))
        if src is None:
            what = f"not a {type} source" if type else f"not mail that any backend reads ({', '.join(sorted(known))})"
            raise SourceFormatError(where, what)
        return src

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

    def _open_row(self, row: Any) -> Source:
        """The backend of a `sources` row, kept open for this MailIndex's life (one IMAP login, not one per read)."""
        key = (row["id"], row["location"], row["type"], row["options"])
        if key not in self._open_sources:
            self._open_sources[key] = self.open_source(row["location"], row["type"], json.loads(row["options"]))
        return self._open_sources[key]

    def _forget_source(self, source_id: int) -> None:
        for key in [k for k in self._open_sources if k[0] == source_id]:
            self._open_sources.pop(key).close()

    def _source_for_id(self, source_id: int) -> Source | None:
        for row in self.store.source_rows():
            if row["id"] == source_id:
                try:
                    return self._open_row(row)
                except SourceError:
                    return None
        return None

    # -- syncing --------------------------------------------------------------
    def writer(self) -> Writer:
        """Take the index's single writer (IndexLocked if another process has it) and repair a crash."""
        self._check_writable()
        writer = self.tantivy.writer()
        repair(self.store, writer, self._source_for_id)
        return writer

    def sync(self, label: str | None = None, *, workers: int | None = None,
             progress: Progress | None = None) -> SyncReport:
        """Sync one source of the default account, or (label None) every enabled source of every account."""
        if label is not None:
            return self.default_account.sync(label, workers=workers, progress=progress)
        return self._sync(self.store.source_rows(), workers=workers, progress=progress)

    def _sync(self, rows: Sequence[Any], *, workers: int | None = None, progress: Progress | None = None,
              named: bool = False, writer: Writer | None = None) -> SyncReport:
        """Sync these sources rows. A named one that cannot be synced raises; otherwise the problem is
        reported and the others go on. With `writer` (a live operation holds it), that writer is used."""
        self._check_writable()
        runnable = []
        total = SyncReport(",".join(r["label"] for r in rows))
        for row in rows:
            why = self._unavailable(row)
            if why and named:
                raise SourceUnavailable(row["label"], why)
            if why:
                total.errors.append({"key": row["label"], "error": f"not synced: {why}"})
            else:
                runnable.append(row)
        reports = []
        own_writer = writer is None
        writer = writer or self.writer()
        try:
            for row in runnable:
                try:
                    reports.append(self._sync_one(writer, row, workers, progress))
                except SourceError as exc:
                    if named:
                        raise
                    total.errors.append({"key": row["label"], "error": str(exc)})
        finally:
            if own_writer:
                writer.close()
            for account_id in dict.fromkeys(r["account"] for r in runnable):
                contacts.refresh(self.store.db, account_id, self.account(account_id).owners)
            self.store.checkpoint()
        if named and len(reports) == 1:
            return reports[0]
        for r in reports:
            for k in ("added", "updated", "removed", "failed", "unchanged", "seconds", "quarantined"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
            total.add_skipped(r.skipped)
            total.errors.extend(r.errors)
        return total

    def _unavailable(self, row: Any) -> str | None:
        if row["status"] in ("DISABLED", "TEMP_DISABLED"):
            return f"source {row['label']} is {row['status']} (update its status to OK to sync it)"
        if self.account(row["account"]).suspended:
            return f"account {row['account']} is suspended"
        return None

    def _sync_one(self, writer: Writer, row: Any, workers: int | None, progress: Progress | None) -> SyncReport:
        started = int(self.clock())
        self.store.db.execute("UPDATE sources SET last_sync_start = ? WHERE id = ?", (started, row["id"]))
        try:
            src = self._open_row(row)
            report = SourceSync(self.store, writer, row, src, self._source_for_id, self.account(row["account"]).owners,
                                workers, progress).run()
        except ConcurrentChange:
            raise
        except SourceError:  # gone, unreachable, refused: reopened (a new connection) next time
            self.store.db.execute(f"UPDATE sources SET status = {_SYNC_STATUS.format('CONNECTION_IMPOSSIBLE')} "
                                  "WHERE id = ?", (row["id"],))
            self._forget_source(row["id"])
            raise
        stopped = int(self.clock())
        self.store.db.execute(
            f"UPDATE sources SET last_sync_stop = ?, initial_import_finished = 1, "
            f"status = {_SYNC_STATUS.format('OK')}, "
            "last_expunge = CASE WHEN ? THEN ? ELSE last_expunge END WHERE id = ?",
            (stopped, report.removed > 0, stopped, row["id"]))
        self.store.db.execute("INSERT INTO sync_log (source_id, started, seconds, report) VALUES (?, ?, ?, ?)",
                              (row["id"], started, report.seconds, json.dumps(report.to_dict())))
        return report

    def _remove_source(self, row: Any, owners: Sequence[str]) -> SyncReport:
        """Take a source's messages out of the index, then forget the source."""
        writer = self.writer()
        try:
            report = SourceSync(self.store, writer, row, None, self._source_for_id, owners).remove_all()
        finally:
            writer.close()
        with self.store.transaction() as db:
            db.execute("DELETE FROM sync_log WHERE source_id = ?", (row["id"],))
            db.execute("DELETE FROM sources WHERE id = ?", (row["id"],))  # containers, quarantine cascade
        contacts.refresh(self.store.db, row["account"], owners)
        self.store.checkpoint()
        return report

    def index(self, location: str | os.PathLike[str], label: str | None = None, type: str | None = None, *,
              workers: int | None = None, progress: Progress | None = None, **options: Any) -> SyncReport:
        """Add `location` to the default account if it is new, then sync it (see `Account.index`)."""
        return self.default_account.index(location, label, type, workers=workers, progress=progress, **options)

    def quarantine(self) -> list[dict[str, Any]]:
        """Messages recorded with an error: account, source, locator, error, and whether they were indexed."""
        labels = self.store.source_labels()
        accounts = self.store.source_accounts()
        # File names that are not UTF-8 come back as surrogate escapes: shown as text, like a folder name.
        return [{"account": accounts.get(sid), "source": labels.get(sid), "container": valid_text(c),
                 "key": valid_text(k), "locator": {n: valid_text(v) if isinstance(v, str) else v
                                                   for n, v in json.loads(loc).items()},
                 "error": err, "indexed": bool(ix), "last_seen": seen}
                for sid, c, k, loc, err, ix, seen in self.store.quarantine_rows()]
