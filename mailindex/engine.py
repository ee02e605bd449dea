"""MailIndex: an index directory, its sources and syncing; its resources hang off it."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pluggy

from mailindex import contacts
from mailindex.contacts import Contacts
from mailindex.errors import QueryError, ReadOnlyIndex, SourceError, SourceFormatError, SourceNotFound
from mailindex.index.searcher import Searcher
from mailindex.index.store import Store
from mailindex.index.tantivy_index import TantivyIndex, Writer
from mailindex.messages import Messages
from mailindex.plugins import plugin_manager
from mailindex.sources.base import Source
from mailindex.sync import Progress, SourceSync, SyncReport, rebuild_documents
from mailindex.threads import ThreadStore

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_index_dir() -> Path:
    """$MAILINDEX_HOME, else $XDG_DATA_HOME/mailindex, else ~/.local/share/mailindex."""
    if os.environ.get("MAILINDEX_HOME"):
        return Path(os.environ["MAILINDEX_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mailindex"


class MailIndex:
    """A persistent, searchable index of mail sources.

    >>> mx = MailIndex("./idx")                     # opens, or creates on first use
    >>> mx.add_source("personal", "~/Maildir")      # maildir | mbox | eml tree, detected
    >>> mx.sync("personal").added
    >>> mx.messages.list(**{"from": "alice@example.com"}, limit=10)

    `read_only=True` opens an existing index for reading only (the forensics
    default): every write raises ReadOnlyIndex. `owner` lists the mailbox
    owner's addresses, which give the `email` filter its contact meaning.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 pm: pluggy.PluginManager | None = None, owner: list[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_index_dir()
        self.read_only = read_only
        if read_only and not (self.path / "meta.sqlite").exists():
            raise SourceNotFound(str(self.path), "no index here (a read-only index is never created)")
        if not read_only:
            self.path.mkdir(parents=True, exist_ok=True)
        self.pm = pm or plugin_manager()
        self.store = Store(self.path / "meta.sqlite", read_only=read_only)
        self.tantivy = TantivyIndex(self.path / "tantivy", read_only=read_only)
        self.searcher = Searcher(self.tantivy)
        if not read_only:
            contacts.create_tables(self.store.db)
            ThreadStore(self.store.db)  # creates its tables
        if owner is not None:
            self._check_writable()
            owners = json.dumps([o.strip().lower() for o in owner])
            if owners != self.store.meta("owner"):
                self.store.set_meta("owner", owners)
                contacts.mark_all_dirty(self.store.db)  # "sent" and "received" changed meaning
                contacts.refresh(self.store.db, self.owner)
        self.messages = Messages(self)
        self.contacts = Contacts(self)

    def __enter__(self) -> "MailIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the metadata store; the index stays on disk."""
        self.store.close()

    @property
    def owner(self) -> list[str]:
        """The mailbox owner's addresses (lowercase)."""
        return json.loads(self.store.meta("owner") or "[]")

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyIndex(f"{self.path} was opened read-only")

    # -- sources --------------------------------------------------------------
    def open_source(self, location: str | os.PathLike[str], type: str | None = None,
                    options: Mapping[str, Any] | None = None) -> Source:
        """The backend that reads `location` (detected unless `type` is given)."""
        path = Path(location).expanduser()
        if not path.exists():
            raise SourceNotFound(str(path), "no such file or directory")
        known = [t for types in self.pm.hook.mailindex_source_types() for t in types]
        if type is not None and type not in known:
            raise SourceFormatError(str(path), f"unknown source type {type!r}; known: {', '.join(sorted(known))}")
        src = self.pm.hook.mailindex_open_source(location=str(path), source_type=type, options=dict(options or {}))
        if src is None:
            what = f"not a {type} source" if type else f"not mail that any backend reads ({', '.join(sorted(known))})"
            raise SourceFormatError(str(path), what)
        return src

    def add_source(self, label: str, location: str | os.PathLike[str], type: str | None = None,
                   **options: Any) -> dict[str, Any]:
        """Register a source under `label` (letters, digits, . _ -). Does not sync it."""
        self._check_writable()
        if not isinstance(label, str) or not _LABEL.match(label):
            raise QueryError("label", label, "must be 1-64 letters, digits, '.', '_' or '-', starting with a "
                                             "letter or digit")
        if label in self.store.source_labels().values():
            raise QueryError("label", label, "a source with this label already exists")
        src = self.open_source(location, type, options)
        path = str(Path(location).expanduser().resolve())
        self.store.add_source(label, src.type, path, options)
        return self.source(label)

    def sources(self) -> list[dict[str, Any]]:
        """Every source with its type, location and sync state."""
        return [self._source_dict(r) for r in self.store.source_rows()]

    def source(self, label: str) -> dict[str, Any]:
        """One source by label; SourceNotFound if none."""
        for row in self.store.source_rows():
            if row["label"] == label:
                return self._source_dict(row)
        raise SourceNotFound(label, "no source has this label")

    @staticmethod
    def _source_dict(r: Any) -> dict[str, Any]:
        return {"label": r["label"], "type": r["type"], "location": r["location"],
                "options": json.loads(r["options"]), "resource_url": Path(r["location"]).as_uri(),
                "sync": {"last_sync_start": r["last_sync_start"], "last_sync_stop": r["last_sync_stop"],
                         "initial_import_finished": bool(r["initial_import_finished"])}}

    def _source_row(self, label: str) -> Any:
        for row in self.store.source_rows():
            if row["label"] == label:
                return row
        raise SourceNotFound(label, "no source has this label")

    def _source_for_id(self, source_id: int) -> Source | None:
        for row in self.store.source_rows():
            if row["id"] == source_id:
                try:
                    return self.open_source(row["location"], row["type"], json.loads(row["options"]))
                except SourceError:
                    return None
        return None

    # -- syncing --------------------------------------------------------------
    def writer(self) -> Writer:
        """Take the index's single writer (IndexLocked if another process has it) and repair a crash."""
        self._check_writable()
        writer = self.tantivy.writer()
        pending = self.store.intent()
        if pending:
            rows = self.store.message_rows(pending)
            writer.delete([m for m in pending if m not in rows])
            writer.commit()
            rebuild_documents(self.store, writer, [r[0] for r in rows.values()], self._source_for_id)
        return writer

    def sync(self, label: str | None = None, *, workers: int | None = None,
             progress: Progress | None = None) -> SyncReport:
        """Bring the index up to date with one source (or every source when label is None)."""
        self._check_writable()
        labels = [label] if label is not None else [r["label"] for r in self.store.source_rows()]
        writer = self.writer()
        try:
            reports = [self._sync_one(writer, lb, workers, progress) for lb in labels]
        finally:
            writer.close()
            contacts.refresh(self.store.db, self.owner)
            self.store.checkpoint()
        if len(reports) == 1:
            return reports[0]
        total = SyncReport(",".join(labels))
        for r in reports:
            for k in ("added", "updated", "removed", "failed", "unchanged", "seconds"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
            total.errors.extend(r.errors)
        return total

    def _sync_one(self, writer: Writer, label: str, workers: int | None, progress: Progress | None) -> SyncReport:
        row = self._source_row(label)
        options = json.loads(row["options"])
        src = self.open_source(row["location"], row["type"], options)
        started = int(time.time())
        self.store.db.execute("UPDATE sources SET last_sync_start = ? WHERE id = ?", (started, row["id"]))
        report = SourceSync(self.store, writer, row["id"], label, src, row["type"], options, workers,
                            progress, self.owner).run()
        self.store.db.execute(
            "UPDATE sources SET last_sync_stop = ?, initial_import_finished = 1 WHERE id = ?",
            (int(time.time()), row["id"]))
        self.store.db.execute("INSERT INTO sync_log (source_id, started, seconds, report) VALUES (?, ?, ?, ?)",
                              (row["id"], started, report.seconds, json.dumps(report.to_dict())))
        return report

    def index(self, location: str | os.PathLike[str], label: str | None = None, type: str | None = None, *,
              workers: int | None = None, progress: Progress | None = None) -> SyncReport:
        """Add `location` as a source if it is new (label derived from its name), then sync it."""
        resolved = str(Path(location).expanduser().resolve())
        existing = {r["location"]: r["label"] for r in self.store.source_rows()}
        if label is None:
            label = existing.get(resolved)
        if label is None or label not in existing.values():
            label = label or self._free_label(Path(resolved).name)
            self.add_source(label, location, type)
        elif self.source(label)["location"] != resolved:
            raise QueryError("source", label, f"this label already names {self.source(label)['location']}")
        return self.sync(label, workers=workers, progress=progress)

    def _free_label(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:56] or "source"
        taken = set(self.store.source_labels().values())
        label, n = base, 2
        while label in taken:
            label, n = f"{base}-{n}", n + 1
        return label

    def quarantine(self) -> list[dict[str, Any]]:
        """Messages recorded with an error: source, locator, error, and whether they were indexed."""
        labels = self.store.source_labels()
        return [{"source": labels.get(sid), "container": c, "key": k, "locator": json.loads(loc), "error": err,
                 "indexed": bool(ix), "last_seen": seen}
                for sid, c, k, loc, err, ix, seen in self.store.quarantine_rows()]
