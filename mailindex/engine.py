"""The engine: one index directory's store, Tantivy index, searcher and backends, and syncing.

Everything the Context.IO resources (`mailindex.api`) do goes through an
`Engine`'s public methods; the engine knows no resource. It reads what a sync
needs of an account (its owners, whether it is suspended) from the store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailindex.config import default_index_dir
from mailindex.errors import (AccountNotFound, ConcurrentChange, IndexNotFound, MessageNotFound, QueryError,
                              ReadOnlyIndex, SourceError, SourceFormatError, SourceNotFound, SourceUnavailable)
from mailindex.index.searcher import Searcher
from mailindex.index.store import Store
from mailindex.index.tantivy_index import TantivyIndex, Writer
from mailindex.locations import is_url
from mailindex.query.filters import text_param

if TYPE_CHECKING:  # a read command uses none of these: they are imported where a write needs them
    import pluggy

    from mailindex.sources.base import Backend
    from mailindex.sync import Progress, SyncReport

# A sync sets the status it finds, unless someone disabled the source meanwhile (another process may have).
_SYNC_STATUS = "CASE WHEN status IN ('DISABLED', 'TEMP_DISABLED') THEN status ELSE '{}' END"

MessageRow = tuple[int, str, int, bytes]  # (messages.id, message_id, date_indexed, record blob)


class Engine:
    """An open index directory: its store (SQLite), Tantivy index and searcher, its backends, and the
    sync of its sources. See `mailindex.MailIndex` for the modes (`read_only`) and the thread rule."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 pm: pluggy.PluginManager | None = None, clock: Callable[[], float] = time.time,
                 allow_private_callbacks: bool = False) -> None:
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
        self._builtin_pm: pluggy.PluginManager | None = None
        self.store = Store(self.path / "meta.sqlite", read_only=read_only)
        try:
            self.tantivy = TantivyIndex(self.path / "tantivy", read_only=read_only, file_mode=self.store.file_mode)
        except BaseException:
            self.store.close()  # a failed open leaves nothing open
            raise
        self.searcher = Searcher(self.tantivy)
        self._open_sources: dict[tuple[Any, ...], Backend] = {}
        self.passwords: dict[str, str] = {}  # location -> password given by the caller; kept in memory only

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager: made on first use, since loading entry points costs a CLI query ~20 ms."""
        if self._pm is None:
            from mailindex.plugins import plugin_manager

            self._pm = plugin_manager()
        return self._pm

    def _manager_for(self, type: str | None) -> pluggy.PluginManager:
        """The plugin manager that opens a source of `type`. A built-in type is opened by the built-in
        backend without loading installed plugins (their entry points cost a process ~25 ms), unless
        the caller gave a manager of its own."""
        from mailindex.plugins import BUILTINS, plugin_manager

        if self._pm is None and type in BUILTINS:
            if self._builtin_pm is None:
                self._builtin_pm = plugin_manager(entry_points=False)
            return self._builtin_pm
        return self.pm

    def close(self) -> None:
        """Close open sources, the store and the search index. Closing again does nothing."""
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

    def check_writable(self) -> None:
        """ReadOnlyIndex if the index was opened read-only."""
        if self.read_only:
            raise ReadOnlyIndex(f"{self.path} was opened read-only")

    # -- accounts, as a sync needs them -------------------------------------------------
    def account_row(self, account_id: str) -> sqlite3.Row:
        """The `accounts` row; AccountNotFound if none."""
        rows = self.store.rows("SELECT * FROM accounts WHERE id = ?", (account_id,))
        if not rows:
            raise AccountNotFound(account_id)
        return rows[0]

    def owners(self, account_id: str) -> list[str]:
        """The account's owner addresses, lowercase."""
        return list(json.loads(self.account_row(account_id)["email_addresses"]))

    def find_message(self, account_id: str, message_id: str) -> MessageRow:
        """A message of the account by message_id, <email_message_id> or gm-<gmail id>; MessageNotFound."""
        message_id = text_param("message_id", message_id)
        row = self.store.find_message(message_id, account_id)
        if row is None:
            raise MessageNotFound(message_id)
        return row

    # -- backends -----------------------------------------------------------------------
    def open_source(self, location: str | os.PathLike[str], type: str | None = None,
                    options: Mapping[str, Any] | None = None) -> Backend:
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
        pm = self._manager_for(type)
        known = [t for types in pm.hook.mailindex_source_types() for t in types]
        if type is not None and type not in known:
            raise SourceFormatError(where, f"unknown source type {type!r}; known: {', '.join(sorted(known))}")
        src: Backend | None = pm.hook.mailindex_open_source(location=where, source_type=type,
                                                           options=dict(options or {}))
        if src is None:
            what = f"not a {type} source" if type else f"not mail that any backend reads ({', '.join(sorted(known))})"
            raise SourceFormatError(where, what)
        return src

    def open_row(self, row: sqlite3.Row) -> Backend:
        """The backend of a `sources` row, kept open for the engine's life (one IMAP login, not one per read)."""
        key = (row["id"], row["location"], row["type"], row["options"])  # as keep_open's
        if key not in self._open_sources:
            self._open_sources[key] = self.open_source(row["location"], row["type"], json.loads(row["options"]))
        return self._open_sources[key]

    def keep_open(self, row: sqlite3.Row, source: Backend) -> None:
        """Hold `source`, just opened for a new `sources` row, as that row's backend (not opened twice)."""
        self._open_sources.setdefault((row["id"], row["location"], row["type"], row["options"]), source)

    def source_for_id(self, source_id: int) -> Backend | None:
        """The backend of a source by id; None if there is none or it cannot be opened."""
        for row in self.store.source_rows():
            if row["id"] == source_id:
                try:
                    return self.open_row(row)
                except SourceError:
                    return None
        return None

    def _forget_source(self, source_id: int) -> None:
        for key in [k for k in self._open_sources if k[0] == source_id]:
            self._open_sources.pop(key).close()

    # -- syncing --------------------------------------------------------------------------
    def writer(self) -> Writer:
        """Take the index's single writer (IndexLocked if another process has it) and repair a crash."""
        from mailindex.sync import repair

        self.check_writable()
        writer = self.tantivy.writer()
        repair(self.store, writer, self.source_for_id)
        return writer

    def unavailable(self, row: sqlite3.Row) -> str | None:
        """Why a source may not be synced or changed now (disabled, its account suspended), or None."""
        if row["status"] in ("DISABLED", "TEMP_DISABLED"):
            return f"source {row['label']} is {row['status']} (update its status to OK to sync it)"
        if self.account_row(row["account"])["suspended"]:
            return f"account {row['account']} is suspended"
        return None

    def sync(self, rows: Sequence[sqlite3.Row], *, workers: int | None = None, progress: Progress | None = None,
             named: bool = False, writer: Writer | None = None) -> SyncReport:
        """Sync these `sources` rows. A named one that cannot be synced raises; otherwise the problem is
        reported and the others go on. With `writer` (a live operation holds it), that writer is used."""
        from mailindex.index import contacts
        from mailindex.sync import SyncReport

        self.check_writable()
        runnable = []
        total = SyncReport(",".join(r["label"] for r in rows))
        for row in rows:
            why = self.unavailable(row)
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
                contacts.refresh(self.store.db, account_id, self.owners(account_id))
            self.store.checkpoint()
        if named and len(reports) == 1:
            return reports[0]
        for r in reports:
            for k in ("added", "updated", "removed", "failed", "unchanged", "seconds", "quarantined"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
            total.add_skipped(r.skipped)
            total.errors.extend(r.errors)
        return total

    def _sync_one(self, writer: Writer, row: sqlite3.Row, workers: int | None,
                  progress: Progress | None) -> SyncReport:
        from mailindex.sync import SourceSync

        started = int(self.clock())
        self.store.db.execute("UPDATE sources SET last_sync_start = ? WHERE id = ?", (started, row["id"]))
        try:
            src = self.open_row(row)
            report = SourceSync(self.store, writer, row, src, self.source_for_id, self.owners(row["account"]),
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

    def remove_source(self, row: sqlite3.Row) -> SyncReport:
        """Take a source's messages out of the index, then forget the source (mail on disk is never touched)."""
        from mailindex.index import contacts
        from mailindex.sync import SourceSync

        owners = self.owners(row["account"])
        writer = self.writer()
        try:
            report = SourceSync(self.store, writer, row, None, self.source_for_id, owners).remove_all()
        finally:
            writer.close()
        with self.store.transaction() as db:
            db.execute("DELETE FROM sync_log WHERE source_id = ?", (row["id"],))
            db.execute("DELETE FROM sources WHERE id = ?", (row["id"],))  # containers, quarantine cascade
        self._forget_source(row["id"])
        contacts.refresh(self.store.db, row["account"], owners)
        self.store.checkpoint()
        return report

    def quarantine(self) -> list[dict[str, Any]]:
        """Messages recorded with an error: account, source, locator, error, and whether they were indexed."""
        from mailindex.parse_headers import valid_text

        labels = self.store.source_labels()
        accounts = self.store.source_accounts()
        # File names that are not UTF-8 come back as surrogate escapes: shown as text, like a folder name.
        return [{"account": accounts.get(sid), "source": labels.get(sid), "container": valid_text(c),
                 "key": valid_text(k), "locator": {n: valid_text(v) if isinstance(v, str) else v
                                                   for n, v in json.loads(loc).items()},
                 "error": err, "indexed": bool(ix), "last_seen": seen}
                for sid, c, k, loc, err, ix, seen in self.store.quarantine_rows()]
