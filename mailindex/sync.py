"""Sync one source into the index: scan, diff, parse, apply in crash-safe batches.

Pass 1 lists containers whose stamp changed and diffs their entries against
the store (no message content is read for unchanged ones). Pass 2 parses
what is new or changed, in worker processes for large jobs, and applies it
in batches. Each batch: intent committed to SQLite -> Tantivy commit ->
records, locations and intent cleared in one SQLite transaction. A message
that moved keeps its id, date_indexed and sort key.
"""

from __future__ import annotations

import collections
import gc
import hashlib
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mailindex import contacts
from mailindex.errors import SourceError, SourceNotFound
from mailindex.folders import symbolic_name, synced_folders
from mailindex.index import schema as S
from mailindex.index.store import Store, decode_record, encode_record
from mailindex.index.tantivy_index import Writer
from mailindex.parse import parse
from mailindex.query.compiler import normalize_folder
from mailindex.record import Record, message_id_for, sha256_hex
from mailindex.sources.base import Entry, RawMessage, Source
from mailindex.threads import ThreadStore

BATCH = 5000
PARALLEL_MIN = 2000  # below this, worker start-up costs more than it saves
PARSE_WINDOW = 2500  # messages handed to the parser processes at a time (bounds memory)
PARSE_AHEAD = 3  # windows queued beyond the one being consumed: more than a batch
MAX_BUFFERED_BYTES = 256 * 2**20

Progress = Callable[[int, int], None]


@dataclass
class SyncReport:
    """What one sync did. `failed` counts messages recorded with an error."""

    source: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    failed: int = 0
    unchanged: int = 0
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "added": self.added, "updated": self.updated, "removed": self.removed,
                "failed": self.failed, "unchanged": self.unchanged, "seconds": round(self.seconds, 3),
                "errors": self.errors[:100]}


@dataclass
class _Work:
    entry: Entry
    replaces: int | None  # location row id this entry rewrites, if any
    old_message: int | None  # message rowid that location belonged to
    unread: str | None = None  # why a batch read (remote source) failed for this one (kept picklable)
    gone: bool = False  # the batch read found it gone


@dataclass
class _Parsed:
    work: _Work
    record: Record | None
    error: str | None = None
    vanished: bool = False
    blob: bytes = b""  # the encoded record, made in the worker


# -- parsing (runs in worker processes for large jobs) ----------------------
_WORKER_SOURCE: Source | None = None


def _init_worker(source_type: str, location: str, options: dict[str, Any]) -> None:
    global _WORKER_SOURCE
    from mailindex.plugins import plugin_manager

    pm = plugin_manager()
    _WORKER_SOURCE = pm.hook.mailindex_open_source(location=location, source_type=source_type, options=options)


def _parse_work(work: _Work, source: Source | None = None) -> _Parsed:
    src = source or _WORKER_SOURCE
    assert src is not None
    e = work.entry
    try:
        if work.gone:
            raise SourceNotFound(str(src.location), "gone")
        if work.unread is not None:
            raise SourceError(str(src.location), work.unread)
        data = e.data if e.data is not None else src.read_bytes(e.locator)
    except SourceNotFound:
        return _Parsed(replace(work, entry=replace(e, data=None)), None, vanished=True)
    except (SourceError, OSError) as exc:
        return _Parsed(replace(work, entry=replace(e, data=None)), None, error=f"unreadable: {exc}")
    try:
        record = parse(RawMessage(data, e.envelope_date, e.mtime, e.folders, e.gmail_ids))
    except Exception as exc:  # parse() promises not to raise; a bug must not stop the batch
        record = Record(message_id=message_id_for(data), sha256=sha256_hex(data), size=len(data),
                        parse_error=f"parser failure: {type(exc).__name__}: {exc}")
    return _Parsed(replace(work, entry=replace(e, data=None)), record, error=record.parse_error,
                   blob=encode_record(record))


def entry_sig(e: Entry) -> str:
    """A short digest that changes whenever anything stored about a location would.

    Hashed, not kept as text: the text repeats the path and took ~100 bytes per message.
    """
    loc = e.locator
    text = "\x1f".join((e.content_stamp, "\x1e".join(e.folders), ",".join(sorted(e.flags)), str(loc.get("path")),
                        str(loc.get("offset")), str(loc.get("length"))))
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


def placement(locations: Iterable[tuple[int, str, str]], accounts: dict[int, str], date_indexed: int,
              sort_key: int) -> S.Placement:
    """Folders, symbolic names, sources and accounts of a message from its (source id, folders, flags) rows.

    `accounts` maps each source id to its account."""
    folders: dict[str, None] = {}
    symbolic: dict[str, None] = {}
    sources: dict[str, None] = {}
    in_accounts: dict[str, None] = {}
    for sid, folders_json, flags_json in locations:
        sources[str(sid)] = None
        in_accounts[accounts.get(sid, "")] = None
        for f in json.loads(folders_json):
            folders[normalize_folder(f)] = None
            sym = symbolic_name(f)
            if sym:
                symbolic[sym] = None
        if "flagged" in json.loads(flags_json):
            symbolic["\\Flagged"] = None
    return S.Placement(tuple(folders), tuple(symbolic), tuple(sources), tuple(in_accounts), date_indexed, sort_key)


# -- the sync -----------------------------------------------------------------
class SourceSync:
    """One sync of one source (a `sources` row). Create, then call run(), or remove_all() to drop it.

    `owners` are its account's addresses (contacts' figures depend on them);
    `open_source` opens any source by id, to re-read the text of a message
    whose document is rebuilt.
    """

    def __init__(self, store: Store, writer: Writer, row: Mapping[str, Any], source: Source | None,
                 open_source: Callable[[int], Source | None], owners: Sequence[str] = (),
                 workers: int | None = None, progress: Progress | None = None) -> None:
        self.store, self.writer, self.source, self.open_source = store, writer, source, open_source
        self.sid, self.account = row["id"], row["account"]
        self.source_type, self.options = row["type"], json.loads(row["options"])
        self.all_folders, self.keep_flags = bool(row["sync_all_folders"]), bool(row["sync_flags"])
        self.full_rescan = bool(row["full_rescan"])
        self.owners = owners
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.progress = progress
        self.report = SyncReport(row["label"])
        self.accounts = store.source_accounts()
        self.now = int(time.time())
        self.threads = ThreadStore(store.db)

    # pass 1 ------------------------------------------------------------------
    def _admit(self, e: Entry | None) -> Entry | None:
        """The entry as this source's options keep it: None when all its folders are left out."""
        if e is None:
            return None
        if not self.all_folders and e.folders:
            kept = synced_folders(e.folders)
            if not kept:
                return None
            if kept != e.folders:
                e = replace(e, folders=kept)
        return e if self.keep_flags or not e.flags else replace(e, flags=frozenset())

    def _scan(self) -> tuple[list[_Work], dict[int, list[int]], list[tuple[int, Entry]], dict[str, str]]:
        old_stamps = {} if self.full_rescan else self.store.containers(self.sid)
        stamps: dict[str, str] = {}
        work: list[_Work] = []
        vanished: dict[int, list[int]] = {}  # message rowid -> location ids gone
        relocated: list[tuple[int, Entry]] = []
        seen: set[str] = set()
        buffered = 0
        for c in self.source.containers():
            seen.add(c.name)
            if c.stable:
                stamps[c.name] = c.stamp
            if c.stable and old_stamps.get(c.name) == c.stamp:
                continue
            known, listed = self._listed(c.name)
            for e in filter(None, map(self._admit, listed)):
                old = known.pop(e.key, None)
                if e.data is not None:
                    buffered += len(e.data)
                    if buffered > MAX_BUFFERED_BYTES:
                        e = replace(e, data=None)
                if old is None:
                    work.append(_Work(e, None, None))
                    continue
                loc_id, message, sig, content_stamp, locator, folders, flags = old
                if sig == entry_sig(e):
                    self.report.unchanged += 1
                elif content_stamp != e.content_stamp:
                    work.append(_Work(e, loc_id, message))
                elif json.loads(folders) != list(e.folders) or ("flagged" in e.flags) != ("flagged" in json.loads(flags)):
                    work.append(_Work(e, loc_id, message))  # placement changed: the document is rebuilt
                else:
                    relocated.append((loc_id, e))
            for loc_id, message, *_ in known.values():
                vanished.setdefault(message, []).append(loc_id)
        for name in self.store.location_containers(self.sid) - seen:
            for loc_id, message, *_ in self.store.locations_in(self.sid, name).values():
                vanished.setdefault(message, []).append(loc_id)
        return work, vanished, relocated, stamps

    def _listed(self, container: str) -> tuple[dict[str, Any], Iterable[Entry]]:
        """Stored rows to compare with, and the entries to compare.

        With a source's listing() fast path only keys whose locator path changed
        (or vanished) are looked at: an unchanged path means an unchanged entry.
        """
        quick = None if self.full_rescan else self.source.listing(container)
        if quick is None:
            return self.store.locations_in(self.sid, container), self.source.entries(container)
        stored = self.store.paths_in(self.sid, container)
        added = sorted(quick - stored)
        entries = [self.source.entry(container, path) for path in added]
        if any(e is None for e in entries):
            # Something moved under us (or is not a message): compare everything.
            return self.store.locations_in(self.sid, container), self.source.entries(container)
        self.report.unchanged += len(quick) - len(added)
        keys = [e.key for e in entries if e is not None] + self.store.keys_at(self.sid, container, stored - quick)
        return self.store.locations_in(self.sid, container, keys=keys), [e for e in entries if e is not None]

    # pass 2 ------------------------------------------------------------------
    def _windows(self, work: list[_Work]) -> Iterator[list[_Work]]:
        """The work a window at a time; a remote source's bytes fetched here, one batch per window."""
        for i in range(0, len(work), PARSE_WINDOW):
            window = work[i : i + PARSE_WINDOW]
            if self.source.batch_reads:
                got = self.source.read_many([w.entry.locator for w in window])
                window = [replace(w, entry=replace(w.entry, data=data)) if isinstance(data, bytes)
                          else replace(w, unread=str(data), gone=isinstance(data, SourceNotFound))
                          for w, data in zip(window, got)]
            yield window

    def _parsed(self, work: list[_Work]) -> Iterator[_Parsed]:
        windows = self._windows(work)
        if self.workers > 1 and len(work) >= PARALLEL_MIN:
            ctx = multiprocessing.get_context("forkserver")
            with ctx.Pool(self.workers, _init_worker,
                          (self.source_type, str(self.source.location), self.options)) as pool:
                # Keep the workers a batch ahead of what is being applied, never the whole list:
                # their results would pile up in memory whenever applying is the slower side.
                ahead = collections.deque(pool.imap(_parse_work, w, chunksize=32)
                                          for w in itertools.islice(windows, PARSE_AHEAD))
                for window in windows:
                    ahead.append(pool.imap(_parse_work, window, chunksize=32))
                    yield from ahead.popleft()
                while ahead:
                    yield from ahead.popleft()
        else:
            for window in windows:
                for w in window:
                    yield _parse_work(w, self.source)

    def run(self) -> SyncReport:
        """Scan, parse and apply; returns what was done."""
        # The cyclic GC keeps re-walking the many short-lived objects of a large
        # sync (measured: +15% msgs/s without it); collect once per batch instead.
        gc.collect()
        gc.freeze()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if was_enabled:
                gc.enable()
            gc.unfreeze()

    def _run(self) -> SyncReport:
        started = time.monotonic()
        work, vanished, relocated, stamps = self._scan()
        total = len(work)
        done = 0
        if self.progress:
            self.progress(0, total)
        batch: list[_Parsed] = []
        for parsed in self._parsed(work):
            batch.append(parsed)
            if len(batch) >= BATCH:
                self._apply(batch, vanished)
                done += len(batch)
                batch = []
                gc.collect()
                if self.progress:
                    self.progress(done, total)
        self._apply(batch, vanished, relocated=relocated)
        self._finish(vanished, stamps)
        if self.progress:
            self.progress(total, total)
        self.report.seconds = time.monotonic() - started
        return self.report

    # applying ----------------------------------------------------------------
    def _apply(self, batch: list[_Parsed], vanished: dict[int, list[int]],
               relocated: list[tuple[int, Entry]] = ()) -> None:  # type: ignore[assignment]
        good = [p for p in batch if p.record is not None]
        for p in batch:
            if p.vanished and p.work.replaces is not None:
                vanished.setdefault(p.work.old_message or 0, []).append(p.work.replaces)
            elif p.record is None and p.error:
                self.report.failed += 1
                self.report.errors.append({"key": p.work.entry.key, "error": p.error})
        if not good and not relocated:
            self._quarantine_only(batch)
            return
        records = {p.record.message_id: p.record for p in good}  # type: ignore[union-attr]
        blobs = {p.record.message_id: p.blob for p in good}  # type: ignore[union-attr]
        existing = self.store.message_rows(list(records))
        # Location rows after this batch, per message: stored ones, minus those this
        # batch rewrites or that vanished, plus the new ones.
        rewritten = {p.work.replaces for p in good if p.work.replaces is not None}
        consumed: list[int] = []
        current: dict[str, list[tuple[int, str, str]]] = {mid: [] for mid in records}
        rowid_to_mid = {row[0]: mid for mid, row in existing.items()}
        in_account: set[str] = set()  # messages that already have a location in this source's account
        for rowid, locs in self.store.placement_rows(list(rowid_to_mid)).items():
            if any(self.accounts.get(sid) == self.account for _, sid, _, _ in locs):
                in_account.add(rowid_to_mid[rowid])
            gone = set(vanished.pop(rowid, ()))
            consumed.extend(gone)
            for loc_id, sid, folders, flags in locs:
                if loc_id not in gone and loc_id not in rewritten:
                    current[rowid_to_mid[rowid]].append((sid, folders, flags))
        for p in good:
            e = p.work.entry
            current[p.record.message_id].append(  # type: ignore[union-attr]
                (self.sid, json.dumps(list(e.folders)), json.dumps(sorted(e.flags))))
        taken: set[int] = set()
        new_rows: dict[str, tuple[int, int]] = {}
        docs = []
        wanted = {mid: (rec.date << S.SORT_TIE_BITS) | (int(mid[:5], 16) & ((1 << S.SORT_TIE_BITS) - 1))
                  for mid, rec in records.items() if mid not in existing}
        used = self.store.used_sort_keys(list(wanted.values()))  # one query, not one per message
        for mid, rec in records.items():
            if mid in existing:
                _, sort_key, date_indexed = existing[mid]
            else:
                sort_key = wanted[mid]
                if sort_key in used or sort_key in taken:
                    sort_key = self.store.free_sort_key(sort_key, taken)
                taken.add(sort_key)
                date_indexed = self.now
                new_rows[mid] = (sort_key, date_indexed)
            docs.append((mid, S.build_document(rec, placement(current[mid], self.accounts, date_indexed, sort_key))))
        # Old messages that lost their only location to a content change are checked at the end.
        for p in good:
            if p.work.old_message is not None and p.work.replaces is not None:
                vanished.setdefault(p.work.old_message, [])
        with self.store.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO intent VALUES (?)", [(mid,) for mid in records])
        # Only messages already in the store can have an older document; the rest are
        # covered by the intent if a crash leaves one behind.
        self.writer.delete(existing)
        self.writer.add(doc for _, doc in docs)
        self.writer.commit()
        with self.store.transaction() as db:
            db.executemany(
                "INSERT INTO messages (message_id, sort_key, date, date_indexed, email_message_id, "
                "gmail_message_id, parse_error, nb_files, nb_signature_images, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(mid, sk, records[mid].date, di, records[mid].email_message_id, records[mid].gmail_message_id,
                  records[mid].parse_error, len(records[mid].files),
                  sum(f.is_signature_image for f in records[mid].files), blobs[mid])
                 for mid, (sk, di) in new_rows.items()],
            )
            if consumed:
                db.executemany("DELETE FROM locations WHERE id = ?", [(i,) for i in consumed])
            rowids = dict(db.execute(
                f"SELECT message_id, id FROM messages WHERE message_id IN ({','.join('?' * len(records))})",
                list(records)).fetchall()) if records else {}
            contacts.record_messages(db, [(rowids[mid], records[mid]) for mid in new_rows])
            contacts.add_to_account(db, self.account, [(rowids[mid], rec) for mid, rec in records.items()
                                                       if mid not in in_account], self.owners)
            for mid in new_rows:
                rec = records[mid]
                self.threads.add(mid, rec.email_message_id, [*rec.references, *filter(None, [rec.in_reply_to])],
                                 rec.gmail_thread_id)
            db.executemany(
                "INSERT INTO locations (source_id, container, key, message, folders, locator, content_stamp, "
                "flags, sha256, sig, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_id, "
                "container, key) DO UPDATE SET message = excluded.message, folders = excluded.folders, "
                "locator = excluded.locator, content_stamp = excluded.content_stamp, flags = excluded.flags, "
                "sha256 = excluded.sha256, sig = excluded.sig, path = excluded.path",
                [(self.sid, p.work.entry.container, p.work.entry.key, rowids[p.record.message_id],  # type: ignore
                  json.dumps(list(p.work.entry.folders)), json.dumps(dict(p.work.entry.locator)),
                  p.work.entry.content_stamp, json.dumps(sorted(p.work.entry.flags)), p.record.sha256,  # type: ignore
                  entry_sig(p.work.entry), str(p.work.entry.locator.get("path", "")))
                 for p in good],
            )
            db.executemany(
                "UPDATE locations SET locator = ?, flags = ?, sig = ?, path = ? WHERE id = ?",
                [(json.dumps(dict(e.locator)), json.dumps(sorted(e.flags)), entry_sig(e),
                  str(e.locator.get("path", "")), loc_id)
                 for loc_id, e in relocated],
            )
            self._record_quarantine(db, batch)
            db.execute("DELETE FROM intent")
        self.report.added += len(new_rows)
        self.report.updated += len(records) - len(new_rows)
        for p in good:
            if p.error:
                self.report.failed += 1
                self.report.errors.append({"key": p.work.entry.key, "error": p.error})

    def _quarantine_only(self, batch: list[_Parsed]) -> None:
        if any(p.error for p in batch):
            with self.store.transaction() as db:
                self._record_quarantine(db, batch)

    def _record_quarantine(self, db: Any, batch: list[_Parsed]) -> None:
        for p in batch:
            e = p.work.entry
            if p.error:
                db.execute(
                    "INSERT INTO quarantine (source_id, container, key, locator, error, indexed, first_seen, "
                    "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_id, container, key) DO UPDATE "
                    "SET error = excluded.error, indexed = excluded.indexed, last_seen = excluded.last_seen",
                    (self.sid, e.container, e.key, json.dumps(dict(e.locator)), p.error,
                     int(p.record is not None), self.now, self.now),
                )
            elif p.record is not None:
                db.execute("DELETE FROM quarantine WHERE source_id = ? AND container = ? AND key = ?",
                           (self.sid, e.container, e.key))

    def _finish(self, vanished: dict[int, list[int]], stamps: dict[str, str]) -> None:
        """Remove what vanished, rebuild messages that lost one of several places, save stamps."""
        gone_ids = [i for ids in vanished.values() for i in ids]
        affected = list(vanished)
        remaining = {rowid: [loc for loc in locs if loc[0] not in set(vanished[rowid])]
                     for rowid, locs in self.store.placement_rows(affected).items()}
        orphans = [rowid for rowid in affected if not remaining.get(rowid)]
        leaving = [rowid for rowid in affected  # no place left in this source's account
                   if not any(self.accounts.get(loc[1]) == self.account for loc in remaining.get(rowid, []))]
        rebuild = [rowid for rowid in affected if rowid not in orphans]
        orphan_mids = self.store.message_ids(orphans)
        left = {rowid: decode_record(blob) for rowid, blob in self.store.records_by_rowids(leaving).items()}
        if orphan_mids:
            with self.store.transaction() as db:
                db.executemany("INSERT OR IGNORE INTO intent VALUES (?)", [(m,) for m in orphan_mids])
            self.writer.delete(orphan_mids)
            self.writer.commit()
        with self.store.transaction() as db:
            db.executemany("DELETE FROM locations WHERE id = ?", [(i,) for i in gone_ids])
            contacts.remove_from_account(db, self.account, list(left.items()), self.owners)
            contacts.forget_messages(db, [(rowid, left[rowid]) for rowid in orphans if rowid in left])
            self.threads.remove_many(orphan_mids)
            db.executemany("DELETE FROM messages WHERE id = ?", [(r,) for r in orphans])
            self.store.set_containers(self.sid, stamps)
            db.execute("UPDATE sources SET full_rescan = 0 WHERE id = ?", (self.sid,))
            db.execute("DELETE FROM intent")
        self.report.removed += len(orphans)
        if rebuild:
            rebuild_documents(self.store, self.writer, rebuild, self.open_source)
            self.report.updated += len(rebuild)

    def remove_all(self) -> SyncReport:
        """Take every message of this source out of the index, as if it had become empty."""
        started = time.monotonic()
        vanished: dict[int, list[int]] = {}
        for loc_id, message in self.store.db.execute("SELECT id, message FROM locations WHERE source_id = ?",
                                                     (self.sid,)):
            vanished.setdefault(message, []).append(loc_id)
        self._finish(vanished, {})
        self.report.seconds = time.monotonic() - started
        return self.report


def rebuild_documents(store: Store, writer: Writer, rowids: list[int],
                      open_source: Callable[[int], Source | None]) -> None:
    """Rewrite the Tantivy documents of these messages from the store and their sources."""
    accounts = store.source_accounts()
    docs = []
    mids = store.message_ids(rowids)
    placements = store.placement_rows(rowids)
    for rowid, mid in zip(rowids, mids):
        row = store.find_message(mid)
        if row is None:
            continue
        _, _, date_indexed, blob = row
        record = decode_record(blob)
        locs = placements.get(rowid, [])
        for loc_id, sid, _, _ in locs:
            src = open_source(sid)
            locator = store.locator(loc_id)
            if src is None or locator is None:
                continue
            try:
                fresh = parse(RawMessage(src.read_bytes(locator)))
                # ids a server gave beside the bytes (Gmail's) are not in them: keep the recorded ones
                fresh.gmail_message_id = fresh.gmail_message_id or record.gmail_message_id
                fresh.gmail_thread_id = fresh.gmail_thread_id or record.gmail_thread_id
                record = fresh
                break
            except (SourceError, OSError):
                continue
        place = placement([loc[1:] for loc in locs], accounts, date_indexed, store.sort_key(rowid))
        docs.append((mid, S.build_document(record, place)))
    with store.transaction() as db:
        db.executemany("INSERT OR IGNORE INTO intent VALUES (?)", [(m,) for m in mids])
    writer.delete(mids)
    writer.add(doc for _, doc in docs)
    writer.commit()
    with store.transaction() as db:
        db.execute("DELETE FROM intent")
