"""MailIndex: an index directory, its sources, syncing and the messages API."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pluggy

from mailindex.errors import (IntegrityError, MailindexError, MessageNotFound, QueryError, ReadOnlyIndex,
                              SourceError, SourceFormatError, SourceNotFound)
from mailindex.index.searcher import Searcher
from mailindex.index.store import Store, decode_record
from mailindex.index.tantivy_index import TantivyIndex, Writer
from mailindex.plugins import plugin_manager
from mailindex.query.compiler import compile_filters
from mailindex.query.filters import FILTER_PARAMS, LIST_PARAMS, INCLUDE_PARAMS, Include, parse_params
from mailindex.record import sha256_hex
from mailindex.results import body_parts, flags_dict, header_block, headers_dict, message_dict
from mailindex.sources.base import Source
from mailindex.sync import Progress, SourceSync, SyncReport, rebuild_documents

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
        if owner is not None:
            self._check_writable()
            self.store.set_meta("owner", json.dumps([o.strip().lower() for o in owner]))
        self.messages = Messages(self)

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
                            progress).run()
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


class Messages:
    """The Context.IO messages resource of an index."""

    def __init__(self, mx: MailIndex) -> None:
        self._mx = mx

    def _query(self, params: Mapping[str, Any], allowed: tuple[str, ...] = LIST_PARAMS) -> tuple[Any, Any, Include]:
        filters, page, include = parse_params(params, allowed)
        return compile_filters(filters, self._mx.searcher.schema, self._mx.owner, self._mx.searcher), page, include

    def list(self, **params: Any) -> list[dict[str, Any]]:
        """One page of messages matching Context.IO list filters (limit 1..100, default 100)."""
        query, page, include = self._query(params)
        keys = self._mx.searcher.page(query, page.limit, page.offset, page.sort_order == "desc")
        return self._materialize(keys, include)

    def iter(self, **params: Any) -> Iterator[dict[str, Any]]:
        """Every matching message, in order, with no 100 cap (no limit/offset)."""
        allowed = tuple(p for p in LIST_PARAMS if p not in ("limit", "offset"))
        query, page, include = self._query(params, allowed)
        batch: list[int] = []
        for key in self._mx.searcher.iter_all(query, page.sort_order == "desc"):
            batch.append(key)
            if len(batch) == 500:
                yield from self._materialize(batch, include)
                batch = []
        yield from self._materialize(batch, include)

    def count(self, **params: Any) -> int:
        """Number of matching messages, without fetching them."""
        query, _, _ = self._query(params, FILTER_PARAMS)
        return self._mx.searcher.count(query)

    def get(self, message_id: str, **include: Any) -> dict[str, Any]:
        """One message by message_id, <email_message_id> or gm-<gmail_message_id>."""
        _, _, inc = parse_params(include, INCLUDE_PARAMS)
        if not isinstance(message_id, str) or not message_id.strip():
            raise QueryError("message_id", message_id, "must be a non-empty string")
        row = self._mx.store.find_message(message_id.strip())
        if row is None:
            raise MessageNotFound(message_id)
        rowid, mid, date_indexed, blob = row
        store = self._mx.store
        return self._build(rowid, date_indexed, blob, inc, store.source_labels(),
                           store.placement_rows([rowid]).get(rowid, []))

    def source(self, message_id: str) -> bytes:
        """The original bytes, verified against the SHA-256 recorded at ingest."""
        row = self._mx.store.find_message(message_id.strip())
        if row is None:
            raise MessageNotFound(message_id)
        return self._read(row[0])[0]

    def _materialize(self, keys: list[int], include: Include) -> list[dict[str, Any]]:
        store = self._mx.store
        rows = store.records_by_sort_keys(keys)
        labels = store.source_labels()  # once per page, not once per message
        places = store.placement_rows([rows[k][0] for k in keys if k in rows])
        return [self._build(rows[k][0], rows[k][2], rows[k][3], include, labels, places.get(rows[k][0], []))
                for k in keys if k in rows]

    def _build(self, rowid: int, date_indexed: int, blob: bytes, inc: Include, labels: dict[int, str],
               locations: list[tuple[int, int, str, str]]) -> dict[str, Any]:
        record = decode_record(blob)
        folders: dict[str, None] = {}
        sources: dict[str, dict[str, str]] = {}
        for _, sid, folders_json, _ in locations:
            label = labels.get(sid, "")
            sources.setdefault(label, {"label": label})
            folders.update(dict.fromkeys(orjson.loads(folders_json)))
        out = message_dict(record, date_indexed=date_indexed, folders=list(folders), sources=list(sources.values()))
        if inc.body or inc.headers or inc.source or inc.flags:
            raw, flags = self._read(rowid, want_flags=inc.flags)
            if inc.body:
                out["body"] = body_parts(raw, inc.body_type)
            if inc.headers == "raw":
                out["headers"] = header_block(raw)
            elif inc.headers:
                out["headers"] = headers_dict(raw)
            if inc.source:
                out["source"] = raw.decode("utf-8", errors="surrogateescape")
            if inc.flags:
                out["flags"] = flags_dict(flags)
        return out

    def _read(self, rowid: int, want_flags: bool = False) -> tuple[bytes, frozenset[str]]:
        """Bytes of the first readable location, verified; flags read live."""
        problems = []
        for sid, container, locator_json, flags_json, sha in self._mx.store.locations_of(rowid):
            src = self._mx._source_for_id(sid)
            if src is None:
                problems.append(f"source {sid} cannot be opened")
                continue
            locator = json.loads(locator_json)
            try:
                raw = src.read_bytes(locator)
            except (SourceError, OSError) as exc:
                problems.append(str(exc))
                continue
            if sha256_hex(raw) != sha:
                raise IntegrityError(f"{locator}: the message changed on disk since it was indexed "
                                     f"(SHA-256 {sha256_hex(raw)[:16]}…, recorded {sha[:16]}…); sync again")
            return raw, src.read_flags(locator) if want_flags else frozenset()
        raise MailindexError("cannot read the message from any of its sources: " + "; ".join(problems))
