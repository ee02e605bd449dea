"""Sync one source into the index: scan, diff, prepare, apply in crash-safe batches.

Pass 1 lists containers whose stamp changed and diffs their entries against
the store (no message content is read for unchanged ones); what a listing
leaves out is counted by reason. Pass 2 hands what is new or changed to the
pure stage of `mailindex.prepare` (in worker processes for large jobs) and
applies the prepared rows in batches. Each batch: intent committed to SQLite
-> Tantivy commit -> records, locations and intent cleared in one SQLite
transaction. A message that moved keeps its id, date_indexed and sort key.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mailindex.errors import SourceError, SourceNotFound
from mailindex.folders import synced_folders
from mailindex.index import contacts
from mailindex.index import schema as S
from mailindex.index.store import LocationRow, Store, decode_record, location_columns, to_sql
from mailindex.index.tantivy_index import Writer
from mailindex.killpoints import kill_point
from mailindex.prepare import (Prepared, SourceSpec, Work, entry_sig, fault_from_env, placement, prepare_one,
                               with_valid_text)
from mailindex.sources.base import Backend, Entry, RawMessage
from mailindex.threads import ThreadStore

BATCH = 5000
BATCH_BYTES = 16 * 2**20  # documents held for one Tantivy commit: big messages make smaller batches
PARALLEL_MIN = 2000  # below this, worker start-up costs more than it saves
PARSE_WINDOW = 2500  # messages read from a remote source at a time (one read_many)
CHUNK = 200  # messages per task handed to a worker process
MAX_BUFFERED_BYTES = 64 * 2**20  # message bytes a scan may hand on (mbox); the rest are read again
FOLDER_LEFT_OUT = "folder left out (sync_all_folders=0)"

Progress = Callable[[int, int], None]


@dataclass
class SyncReport:
    """What one sync did. `failed` counts messages this sync recorded with an error, `quarantined` all
    those of the source (`MailIndex.quarantine` lists them); `skipped` counts, by reason, the files and
    messages of the source that are not in the index at all."""

    source: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    failed: int = 0
    unchanged: int = 0
    seconds: float = 0.0
    quarantined: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "added": self.added, "updated": self.updated, "removed": self.removed,
                "failed": self.failed, "unchanged": self.unchanged, "seconds": round(self.seconds, 3),
                "quarantined": self.quarantined, "skipped": dict(sorted(self.skipped.items())), "errors": self.errors[:100]}

    def add_skipped(self, counts: Mapping[str, int]) -> None:
        for reason, n in counts.items():
            if n:
                self.skipped[reason] = self.skipped.get(reason, 0) + n

    def error(self, key: str, error: str) -> None:
        self.failed += 1
        from mailindex.parse_headers import valid_text

        self.errors.append({"key": valid_text(key), "error": error})


# -- the sync -----------------------------------------------------------------
class SourceSync:
    """One sync of one source (a `sources` row). Create, then call run(), or remove_all() to drop it.

    `owners` are its account's addresses (contacts' figures depend on them);
    `open_source` opens any source by id, to re-read the text of a message
    whose document is rebuilt.
    """

    def __init__(self, store: Store, writer: Writer, row: sqlite3.Row, source: Backend | None,
                 open_source: Callable[[int], Backend | None], owners: Sequence[str] = (),
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

    @property
    def _src(self) -> Backend:
        """The source being synced (every pass but remove_all() reads it)."""
        assert self.source is not None, "a SourceSync without a source can only remove_all()"
        return self.source

    # pass 1 ------------------------------------------------------------------
    def _admit(self, e: Entry | None) -> Entry | None:
        """The entry as this source's options keep it: None when all its folders are left out."""
        if e is None:
            return None
        if not all(f.isascii() for f in e.folders):  # a folder named by bytes that are not UTF-8: decoded
            from mailindex.parse_headers import valid_text  # not for every entry of a listing: ASCII is text

            shown = tuple(map(valid_text, e.folders))
            if shown != e.folders:
                e = replace(e, folders=shown)
        if not self.all_folders and e.folders:
            kept = synced_folders(e.folders)
            if not kept:
                return None
            if kept != e.folders:
                e = replace(e, folders=kept)
        return e if self.keep_flags or not e.flags else replace(e, flags=frozenset())

    def _scan(self) -> tuple[list[Work], dict[int, list[int]], list[tuple[int, Entry]],
                             dict[str, tuple[str, dict[str, int]]]]:
        old = {} if self.full_rescan else self.store.containers(self.sid)
        kept: dict[str, tuple[str, dict[str, int]]] = {}  # stamp and skipped counts saved for next time
        work: list[Work] = []
        vanished: dict[int, list[int]] = {}  # message rowid -> location ids gone
        relocated: list[tuple[int, Entry]] = []
        seen: set[str] = set()
        buffered = 0
        for c in self._src.containers():
            seen.add(c.name)
            before = old.get(c.name)
            if c.stable and before is not None and before[0] == c.stamp:
                kept[c.name] = before
                self.report.add_skipped(before[1])
                continue
            known, listed, full = self._listed(c.name)
            left_out = 0
            for e in listed:
                admitted = self._admit(e)
                if admitted is None:
                    left_out += 1
                    continue
                e = admitted
                old_row = known.pop(e.key, None)
                if e.data is not None:
                    buffered += len(e.data)
                    if buffered > MAX_BUFFERED_BYTES:
                        e = replace(e, data=None)
                if old_row is None:
                    work.append(Work(e))
                    continue
                loc_id, message, sig, content_stamp, locator, folders, flags = old_row
                if sig == entry_sig(e):
                    self.report.unchanged += 1
                elif content_stamp != e.content_stamp:
                    work.append(Work(e, loc_id, message))
                elif (json.loads(folders) != list(e.folders)
                      or ("flagged" in e.flags) != ("flagged" in json.loads(flags))):
                    work.append(Work(e, loc_id, message))  # placement changed: the document is rebuilt
                else:
                    relocated.append((loc_id, e))
            for loc_id, message, *_ in known.values():
                vanished.setdefault(message, []).append(loc_id)
            # A fast listing reads no file it already knows, so what the last full one skipped still holds.
            skipped = dict(self._src.skipped(c.name)) if full else dict((before or ("", {}))[1])
            skipped.pop(FOLDER_LEFT_OUT, None)
            if left_out:
                skipped[FOLDER_LEFT_OUT] = left_out
            self.report.add_skipped(skipped)
            if c.stable:
                kept[c.name] = (c.stamp, skipped)
            kill_point("sync.after-listing")
        for name in self.store.location_containers(self.sid) - seen:
            for loc_id, message, *_ in self.store.locations_in(self.sid, name).values():
                vanished.setdefault(message, []).append(loc_id)
        return work, vanished, relocated, kept

    def _listed(self, container: str) -> tuple[dict[str, LocationRow], Iterable[Entry], bool]:
        """Stored rows to compare with, the entries to compare, and whether every entry was listed.

        With a source's listing() fast path only keys whose locator path changed
        (or vanished) are looked at: an unchanged path means an unchanged entry.
        """
        source = self._src
        quick = None if self.full_rescan else source.listing(container)
        if quick is None:
            return self.store.locations_in(self.sid, container), source.entries(container), True
        stored = self.store.paths_in(self.sid, container)
        added = sorted(quick - stored)
        if 2 * len(added) > len(quick):  # mostly new (a first sync): one listing beats a stat per file
            return self.store.locations_in(self.sid, container), source.entries(container), True
        entries = [source.entry(container, path) for path in added]
        if any(e is None for e in entries):
            # Something moved under us (or is not a message): compare everything.
            return self.store.locations_in(self.sid, container), source.entries(container), True
        self.report.unchanged += len(quick) - len(added)
        keys = [e.key for e in entries if e is not None] + self.store.keys_at(self.sid, container, stored - quick)
        return self.store.locations_in(self.sid, container, keys=keys), [e for e in entries if e is not None], False

    # pass 2 ------------------------------------------------------------------
    def _spec(self) -> SourceSpec:
        return SourceSpec(self.source_type, str(self._src.location), self.options, self.sid, self.account,
                          self.now)

    def _windows(self, work: list[Work]) -> Iterator[list[Work]]:
        """The work a window at a time; a remote source's bytes fetched here, one batch per window."""
        source = self._src
        for i in range(0, len(work), PARSE_WINDOW):
            window = work[i : i + PARSE_WINDOW]
            if source.batch_reads:
                got = source.read_many([w.entry.locator for w in window])
                window = [replace(w, entry=replace(w.entry, data=data)) if isinstance(data, bytes)
                          else replace(w, unread=str(data), gone=isinstance(data, SourceNotFound))
                          for w, data in zip(window, got)]
            yield window

    def _prepared(self, work: list[Work]) -> Iterator[Prepared]:
        source, spec, fault = self._src, self._spec(), fault_from_env()
        chunks = (w[i : i + CHUNK] for w in self._windows(work) for i in range(0, len(w), CHUNK))
        if self.workers > 1 and len(work) >= PARALLEL_MIN:
            from mailindex.pool import Pool  # processes only for a large job: a small sync never loads them

            yield from Pool(spec, fault, self.workers).run(chunks)
        else:
            for chunk in chunks:
                for w in chunk:
                    yield prepare_one(w, source, spec, fault)

    def run(self) -> SyncReport:
        """Scan, parse and apply; returns what was done."""
        # The cyclic GC keeps re-walking the many short-lived objects of a large
        # sync (measured: +15% msgs/s without it); collect once per batch instead.
        # Freezing, not collecting, first: a full collection costs an embedding
        # program with a large heap ~30 ms on every sync, however small.
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
        work, vanished, relocated, kept = self._scan()
        total = len(work)
        done = 0
        if self.progress:
            self.progress(0, total)
        batch: list[Prepared] = []
        held = 0
        for prepared in self._prepared(work):
            batch.append(prepared)
            held += len(prepared.doc)
            if len(batch) >= BATCH or held >= BATCH_BYTES:
                self._apply(batch, vanished)
                done += len(batch)
                batch, held = [], 0
                gc.collect()
                if self.progress:
                    self.progress(done, total)
        self._apply(batch, vanished, relocated=relocated)
        self._finish(vanished, kept)
        self.report.quarantined = self.store.quarantined(self.sid)
        if self.progress:
            self.progress(total, total)
        self.report.seconds = time.monotonic() - started
        return self.report

    # applying ----------------------------------------------------------------
    def _apply(self, batch: list[Prepared], vanished: dict[int, list[int]],
               relocated: Sequence[tuple[int, Entry]] = ()) -> None:
        good: list[Prepared] = []
        for p in batch:
            if p.vanished and p.work.replaces is not None:
                vanished.setdefault(p.work.old_message or 0, []).append(p.work.replaces)
            elif p.message_id is not None:
                good.append(p)
            if p.error:
                self.report.error(p.work.entry.key, p.error)
        if not good and not relocated:
            self._quarantine_only(batch)
            return
        first: dict[str, Prepared] = {}
        here: dict[str, list[tuple[int, str, str]]] = {}  # (source, folders, flags) of each copy in this batch
        for p in good:
            first.setdefault(p.message_id, p)  # type: ignore[arg-type]
            here.setdefault(p.message_id, []).append(  # type: ignore[arg-type]
                (self.sid, p.location_row[2], p.location_row[5]))
        existing = self.store.message_rows(list(first))
        # Location rows after this batch, per message known before it: stored ones, minus those this
        # batch rewrites or that vanished, plus the new ones.
        rewritten = {p.work.replaces for p in good if p.work.replaces is not None}
        consumed: list[int] = []
        current: dict[str, list[tuple[int, str, str]]] = {}
        rowid_to_mid = {row[0]: mid for mid, row in existing.items()}
        in_account: set[str] = set()  # messages that already have a location in this source's account
        for rowid, locs in self.store.placement_rows(list(rowid_to_mid)).items():
            mid = rowid_to_mid[rowid]
            if any(self.accounts.get(sid) == self.account for _, sid, _, _ in locs):
                in_account.add(mid)
            gone = set(vanished.pop(rowid, ()))
            consumed.extend(gone)
            current[mid] = [(sid, folders, flags) for loc_id, sid, folders, flags in locs
                            if loc_id not in gone and loc_id not in rewritten]
        fresh = [mid for mid in first if mid not in existing]
        used = self.store.used_sort_keys([first[mid].sort_key for mid in fresh])  # one query, not one per message
        taken: set[int] = set()
        new_rows: dict[str, tuple[int, int]] = {}
        docs: list[str] = []
        for mid, p in first.items():
            if mid in existing:
                _, sort_key, date_indexed = existing[mid]
            else:
                sort_key = p.sort_key
                if sort_key in used or sort_key in taken:
                    sort_key = self.store.free_sort_key(sort_key, taken)
                taken.add(sort_key)
                date_indexed = self.now
                new_rows[mid] = (sort_key, date_indexed)
            if mid in existing or len(here[mid]) > 1 or sort_key != p.sort_key:
                # The worker placed it at this one location, as new: place it where it really is.
                placed = current.get(mid, []) + here[mid]
                docs.append(S.replace_placement(p.doc, placement(placed, self.accounts, date_indexed, sort_key)))
            else:
                docs.append(p.doc)
        # Old messages that lost their only location to a content change are checked at the end.
        for p in good:
            if p.work.old_message is not None and p.work.replaces is not None:
                vanished.setdefault(p.work.old_message, [])
        # Only messages already in the store can have an older document; the rest are
        # covered by the intent if a crash leaves one behind.
        change_tantivy(self.store, self.writer, list(first), existing, docs, BATCH_STEPS)
        try:
            self._record(batch, good, first, new_rows, consumed, in_account, relocated)
        except BaseException:
            repair(self.store, self.writer, self.open_source)  # Tantivy has the batch, SQLite does not
            raise
        kill_point("sync.after-record")
        self.report.added += len(new_rows)
        self.report.updated += len(first) - len(new_rows)

    def _record(self, batch: list[Prepared], good: list[Prepared], first: dict[str, Prepared],
                new_rows: dict[str, tuple[int, int]], consumed: list[int], in_account: set[str],
                relocated: Sequence[tuple[int, Entry]]) -> None:
        """The SQLite half of a batch, in one transaction: records, contacts, threads, locations."""
        with self.store.transaction() as db:
            db.executemany(
                "INSERT INTO messages (message_id, date, email_message_id, gmail_message_id, parse_error, "
                "nb_files, nb_signature_images, record, sort_key, date_indexed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*first[mid].message_row, sk, di) for mid, (sk, di) in new_rows.items()])
            if consumed:
                db.executemany("DELETE FROM locations WHERE id = ?", [(i,) for i in consumed])
            rowids = self.store.message_rowids(list(first))
            contacts.record_messages(db, [(rowids[mid], first[mid].message_row[1], first[mid].roles)
                                          for mid in new_rows])
            contacts.add_to_account(db, self.account, [(rowids[mid], p.message_row[1], p.roles)
                                                       for mid, p in first.items() if mid not in in_account],
                                    self.owners)
            for mid in new_rows:
                email_message_id, refs, gmail_thread = first[mid].thread
                self.threads.add(mid, email_message_id, refs, gmail_thread)
            db.executemany(
                "INSERT INTO locations (source_id, message, container, key, folders, locator, content_stamp, "
                "flags, sha256, sig, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_id, "
                "container, key) DO UPDATE SET message = excluded.message, folders = excluded.folders, "
                "locator = excluded.locator, content_stamp = excluded.content_stamp, flags = excluded.flags, "
                "sha256 = excluded.sha256, sig = excluded.sig, path = excluded.path",
                [(self.sid, rowids[p.message_id], *p.location_row) for p in good],  # type: ignore[index]
            )
            db.executemany(
                "UPDATE locations SET locator = ?, path = ?, flags = ?, sig = ? WHERE id = ?",
                [(*location_columns(e.locator), json.dumps(sorted(e.flags)), entry_sig(e), loc_id)
                 for loc_id, e in relocated],
            )
            self._record_quarantine(db, batch)
            db.execute("DELETE FROM intent")

    def _quarantine_only(self, batch: list[Prepared]) -> None:
        if any(p.error for p in batch):
            with self.store.transaction() as db:
                self._record_quarantine(db, batch)

    def _record_quarantine(self, db: sqlite3.Connection, batch: list[Prepared]) -> None:
        for p in batch:
            e = p.work.entry
            where = (self.sid, to_sql(e.container), to_sql(e.key))
            if p.error:
                db.execute(
                    "INSERT INTO quarantine (source_id, container, key, locator, error, indexed, first_seen, "
                    "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_id, container, key) DO UPDATE "
                    "SET error = excluded.error, indexed = excluded.indexed, last_seen = excluded.last_seen",
                    (*where, json.dumps(dict(e.locator)), p.error, int(p.message_id is not None), self.now, self.now),
                )
            elif p.message_id is not None:
                db.execute("DELETE FROM quarantine WHERE source_id = ? AND container = ? AND key = ?", where)

    def _finish(self, vanished: dict[int, list[int]], kept: dict[str, tuple[str, dict[str, int]]]) -> None:
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
        rebuild_mids = self.store.message_ids(rebuild)
        left = {rowid: decode_record(blob) for rowid, blob in self.store.records_by_rowids(leaving).items()}
        if orphan_mids:
            change_tantivy(self.store, self.writer, orphan_mids, orphan_mids, [], REMOVAL_STEPS)
        with self.store.transaction() as db:
            db.executemany("DELETE FROM locations WHERE id = ?", [(i,) for i in gone_ids])
            contacts.remove_from_account(db, self.account, list(left.items()), self.owners)
            contacts.forget_messages(db, [(rowid, left[rowid]) for rowid in orphans if rowid in left])
            self.threads.remove_many(orphan_mids)
            db.executemany("DELETE FROM messages WHERE id = ?", [(r,) for r in orphans])
            self.store.set_containers(self.sid, kept)
            # Done for the options this sync ran with; changed meanwhile, the next sync must rescan again.
            db.execute("UPDATE sources SET full_rescan = 0 WHERE id = ? AND sync_all_folders = ? AND sync_flags = ?",
                       (self.sid, self.all_folders, self.keep_flags))
            db.execute("DELETE FROM intent")
            # Their documents still name the places just deleted: if the rebuild below never ends, the
            # stamps saved here would hide that from the next sync, so the repair must redo it.
            db.executemany("INSERT INTO intent VALUES (?)", [(m,) for m in rebuild_mids])
        kill_point("sync.after-stamps")
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


# The kill points of each kind of change: after the intent, before Tantivy's commit (None: not a
# step of its own), after it.
Steps = tuple[str, str | None, str]
BATCH_STEPS: Steps = ("sync.after-intent", "sync.before-commit", "sync.after-commit")
REMOVAL_STEPS: Steps = ("sync.removal-after-intent", None, "sync.removal-after-commit")
REBUILD_STEPS: Steps = ("sync.rebuild-after-intent", None, "sync.rebuild-after-commit")


def change_tantivy(store: Store, writer: Writer, named: Sequence[str], delete: Iterable[str], add: Sequence[str],
                   steps: Steps) -> None:
    """The first half of every change to the index: the messages it touches are named in the intent
    (committed to SQLite) before Tantivy deletes and adds documents and commits. The SQLite transaction
    that records the change then clears the intent; after a crash in between, `repair` makes Tantivy
    agree with SQLite again for every message the intent names."""
    with store.transaction() as db:
        db.executemany("INSERT OR IGNORE INTO intent VALUES (?)", [(m,) for m in named])
    kill_point(steps[0])
    writer.delete(delete)
    if add:
        writer.add(add)
    if steps[1] is not None:
        kill_point(steps[1])
    writer.commit()
    kill_point(steps[2])


def repair(store: Store, writer: Writer, open_source: Callable[[int], Backend | None]) -> None:
    """Make Tantivy agree with SQLite again for every message an unfinished batch named in the intent."""
    pending = store.intent()
    if pending:
        rows = store.message_rows(pending)
        writer.delete([m for m in pending if m not in rows])
        writer.commit()
        kill_point("sync.repair-after-delete")
        rebuild_documents(store, writer, [r[0] for r in rows.values()], open_source)


def rebuild_documents(store: Store, writer: Writer, rowids: list[int],
                      open_source: Callable[[int], Backend | None]) -> None:
    """Rewrite the Tantivy documents of these messages from the store and their sources."""
    accounts = store.source_accounts()
    docs: list[str] = []
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
                from mailindex.parse import parse

                fresh = parse(RawMessage(src.read_bytes(locator)))
                if fresh.message_id != mid:
                    continue  # a stale locator (an mbox rewritten since it was synced): another message's bytes
                # ids a server gave beside the bytes (Gmail's) are not in them: keep the recorded ones
                fresh.gmail_message_id = fresh.gmail_message_id or record.gmail_message_id
                fresh.gmail_thread_id = fresh.gmail_thread_id or record.gmail_thread_id
                record = fresh
                break
            except (SourceError, OSError):
                continue
        place = placement([loc[1:] for loc in locs], accounts, date_indexed, store.sort_key(rowid))
        docs.append(with_valid_text(record, lambda r: S.document_json(r, place))[1])
    change_tantivy(store, writer, mids, mids, docs, REBUILD_STEPS)
    with store.transaction() as db:
        db.execute("DELETE FROM intent")
