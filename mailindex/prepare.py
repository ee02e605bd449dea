"""The pure stage of a sync: message locations in, rows and documents ready to apply out.

`prepare_window(spec, works)` reads each message (unless its bytes came
along), parses it and builds everything the single writer needs: the record
blob, the Tantivy document as JSON, the message, location, contact and thread
row values. It is a function of picklable values, so any executor can run it:
in-process for small jobs, the local process pool by default.

Each message passes the stages read, parse, encode, document and rows.
Whatever one stage raises for one message (a bug of ours included) becomes
that message's error, naming the stage; the message is still recorded from
what could be read (its hash, size and identity) and the window goes on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from mailindex.index import contacts
from mailindex.errors import SourceError, SourceNotFound
from mailindex.folders import normalize_folder, symbolic_name
from mailindex.index import schema as S
from mailindex.index.store import encode_record, location_columns, to_sql
from mailindex.killpoints import kill_point
from mailindex.identity import message_id_for, sha256_hex
from mailindex.record import Address, Attachment, Record
from mailindex.sources.base import SKIP_NOT_MAIL, Entry, RawMessage, Backend

STAGES = ("read", "parse", "encode", "document", "rows")
# Fault injection for the tests: "STAGE:MARKER" makes every message whose bytes hold MARKER fail at
# STAGE ("die" ends the worker process). Read by the sync in the main process and handed to workers.
FAULT_ENV = "MAILINDEX_INJECT_FAULT"
Fault = tuple[str, bytes] | None


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What a worker needs to open the source itself and to place its messages."""

    type: str
    location: str
    options: Mapping[str, Any]
    source_id: int
    account: str
    now: int  # date_indexed of the messages new in this sync


@dataclass(frozen=True, slots=True)
class Work:
    """One location to (re)read: a new entry, or one whose content or placement changed."""

    entry: Entry
    replaces: int | None = None  # location row id this entry rewrites, if any
    old_message: int | None = None  # message rowid that location belonged to
    unread: str | None = None  # why a batch read (remote source) failed for this one
    gone: bool = False  # the batch read found it gone

    def __reduce__(self) -> tuple[type[Work], tuple[Any, ...]]:
        return Work, (self.entry, self.replaces, self.old_message, self.unread, self.gone)

    def without_data(self) -> Work:
        """This work without the message bytes a scan or batch read put in it."""
        return self if self.entry.data is None else replace(self, entry=replace(self.entry, data=None))


@dataclass(slots=True)
class Prepared:
    """One message ready to apply; `message_id` None means nothing is recorded (vanished or unreadable)."""

    work: Work  # its entry without the bytes (left out of the pickle: the caller has it, and reattaches it)
    message_id: str | None = None
    error: str | None = None
    vanished: bool = False
    sha256: str = ""
    message_row: tuple[Any, ...] = ()  # (message_id, date, email_message_id, gmail_message_id, parse_error,
    #                                     nb_files, nb_signature_images, record blob)
    sort_key: int = 0  # the one wanted: the date, then message id bits
    doc: str = ""  # Tantivy JSON placed at this location alone, with `sort_key`
    roles: dict[str, tuple[int, str]] = field(default_factory=dict)  # contacts' view of the addresses
    thread: tuple[str | None, list[str], str | None] = (None, [], None)  # Message-ID, references, Gmail thread
    location_row: tuple[Any, ...] = ()  # (container, key, folders, locator, content_stamp, flags, sha256, sig, path)

    def __reduce__(self) -> tuple[type[Prepared], tuple[Any, ...]]:
        return Prepared, (None, self.message_id, self.error, self.vanished, self.sha256, self.message_row,
                          self.sort_key, self.doc, self.roles, self.thread, self.location_row)


class _StageFailed(Exception):
    def __init__(self, stage: str, exc: BaseException) -> None:
        from mailindex.parse_headers import valid_text  # as below: loaded with the parser, when mail is read

        super().__init__(f"{stage} failed: {type(exc).__name__}: {valid_text(str(exc))[:200]}")


def fault_from_env() -> Fault:
    """The injected fault named by $MAILINDEX_INJECT_FAULT, if any."""
    spec = os.environ.get(FAULT_ENV)
    if not spec or ":" not in spec:
        return None
    stage, _, marker = spec.partition(":")
    return stage, marker.encode()


def _inject(fault: Fault, stage: str, data: bytes) -> None:
    if fault is not None and fault[0] == stage and fault[1] in data:
        if stage == "die":
            os._exit(70)
        raise RuntimeError(f"injected fault at {stage}")


def entry_sig(e: Entry) -> str:
    """A short digest that changes whenever anything stored about a location would.

    Hashed, not kept as text: the text repeats the path and took ~100 bytes per message.
    """
    import hashlib  # here: a sync with nothing to do never loads it (~2 ms)

    loc = e.locator
    text = "\x1f".join((e.content_stamp, "\x1e".join(e.folders), ",".join(sorted(e.flags)), str(loc.get("path")),
                        str(loc.get("offset")), str(loc.get("length"))))
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


def wanted_sort_key(message_id: str, date: int) -> int:
    """Messages sort by date; ties are broken by bits of the message id (made unique by the writer)."""
    return (date << S.SORT_TIE_BITS) | (int(message_id[:5], 16) & ((1 << S.SORT_TIE_BITS) - 1))


def placement(locations: Iterable[tuple[int, str, str]], accounts: Mapping[int, str], date_indexed: int,
              sort_key: int) -> S.Placement:
    """Folders, symbolic names, sources and accounts of a message from its (source id, folders, flags) rows.

    `accounts` maps each source id to its account."""
    folders: dict[str, None] = {}
    symbolic: dict[str, None] = {}
    sources: dict[str, None] = {}
    in_accounts: dict[str, None] = {}
    flags: dict[str, None] = {}
    for sid, folders_json, flags_json in locations:
        sources[str(sid)] = None
        in_accounts[accounts.get(sid, "")] = None
        for f in json.loads(folders_json):
            folders[normalize_folder(f)] = None
            sym = symbolic_name(f)
            if sym:
                symbolic[sym] = None
        flags.update(dict.fromkeys(json.loads(flags_json)))
    if "flagged" in flags:
        symbolic["\\Flagged"] = None
    return S.Placement(tuple(folders), tuple(symbolic), tuple(sources), tuple(in_accounts), tuple(flags),
                       date_indexed, sort_key)


def valid_record(record: Record) -> Record:
    """The record with every string made valid Unicode (lone surrogates become U+FFFD or what they escape)."""
    from mailindex.parse_headers import valid_text

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return valid_text(value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, (Address, Attachment)):
            return replace(value, **{f.name: fix(getattr(value, f.name)) for f in fields(value)})
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    fixed = replace(record, **{f.name: fix(getattr(record, f.name)) for f in fields(record)})
    fixed.defects.append("invalid Unicode replaced")
    return fixed


def not_mail(data: bytes) -> str:
    """The quarantine reason of bytes that are no message (nothing of them is recorded or indexed)."""
    if not data:
        return f"{SKIP_NOT_MAIL}: empty"
    return (f"{SKIP_NOT_MAIL}: {len(data)} bytes without a header block naming From, Date, Subject, "
            "Message-ID, Received or another mail field")


def _minimal(data: bytes, error: str) -> Record:
    """What is recorded of a message a stage failed on: its identity, hash and size, and the error."""
    try:
        mid = message_id_for(data)
    except Exception:  # noqa: BLE001 - identity must not fail the record; the exact bytes' hash will do
        mid = sha256_hex(data)[:24]
    return Record(message_id=mid, sha256=sha256_hex(data), size=len(data), parse_error=error)


T = TypeVar("T")


def with_valid_text(record: Record, build: Callable[[Record], T]) -> tuple[Record, T]:
    """build(record), or build(valid_record(record)) when a string was not valid Unicode."""
    try:
        return record, build(record)
    except TypeError:  # orjson refuses lone surrogates
        record = valid_record(record)
        return record, build(record)


def _prepared(work: Work, record: Record, spec: SourceSpec, fault: Fault, data: bytes) -> Prepared:
    e = work.entry
    stage = "encode"
    try:
        _inject(fault, stage, data)
        record, blob = with_valid_text(record, encode_record)
        stage = "document"
        _inject(fault, stage, data)
        folders, flags = json.dumps(list(e.folders)), json.dumps(sorted(e.flags))
        key = wanted_sort_key(record.message_id, record.date)
        place = placement([(spec.source_id, folders, flags)], {spec.source_id: spec.account}, spec.now, key)
        record, doc = with_valid_text(record, lambda r: S.document_json(r, place))
        stage = "rows"
        _inject(fault, stage, data)
        locator, path = location_columns(e.locator)
        return Prepared(
            work, record.message_id, record.parse_error, sha256=record.sha256,
            message_row=(record.message_id, record.date, record.email_message_id, record.gmail_message_id,
                         record.parse_error, len(record.files), sum(f.is_signature_image for f in record.files),
                         blob),
            sort_key=key, doc=doc, roles=contacts.roles(record),
            thread=(record.email_message_id, [*record.references, *filter(None, [record.in_reply_to])],
                    record.gmail_thread_id),
            location_row=(to_sql(e.container), to_sql(e.key), folders, locator, e.content_stamp, flags,
                          record.sha256, entry_sig(e), path))
    except Exception as exc:  # noqa: BLE001 - one message never stops the window
        raise _StageFailed(stage, exc) from exc


def prepare_one(work: Work, source: Backend, spec: SourceSpec, fault: Fault = None) -> Prepared:
    """Read, parse and prepare one message; never raises."""
    e = work.entry
    bare = work.without_data()
    try:
        if work.gone:
            raise SourceNotFound(spec.location, "gone")
        if work.unread is not None:
            raise SourceError(spec.location, work.unread)
        data = e.data if e.data is not None else source.read_bytes(e.locator)
        _inject(fault, "read", data)
        if not source.is_message(e.locator, data):
            return Prepared(bare, error=not_mail(data))
    except SourceNotFound:
        return Prepared(bare, vanished=True)
    except (SourceError, OSError) as exc:
        from mailindex.parse_headers import valid_text

        return Prepared(bare, error=f"unreadable: {valid_text(str(exc))}")
    except Exception as exc:  # noqa: BLE001
        return Prepared(bare, error=str(_StageFailed("read", exc)))
    try:
        try:
            _inject(fault, "parse", data)
            _inject(fault, "die", data)
            from mailindex.parse import parse  # here: a sync with nothing new never loads the parser

            record = parse(RawMessage(data, e.envelope_date, e.mtime, e.folders, e.gmail_ids))
        except Exception as exc:  # noqa: BLE001 - parse() promises not to raise; a bug must not stop the batch
            raise _StageFailed("parse", exc) from exc
        return _prepared(bare, record, spec, fault, data)
    except _StageFailed as failed:
        try:
            return _prepared(bare, _minimal(data, str(failed)), spec, None, data)
        except _StageFailed as again:  # even the minimal record failed: quarantined, not indexed
            return Prepared(bare, error=f"{failed}; then {again}")


# -- in a worker process ----------------------------------------------------------
_WORKER: tuple[Backend, SourceSpec, Fault] | None = None


def _exit_with_parent() -> None:
    """End this worker when the sync that started it dies (SIGKILL, the OOM killer): it holds both ends
    of its task queue, so it would wait on it for ever, and keep the fork server alive too."""
    import multiprocessing.connection  # in a worker only
    import threading

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # readable once the parent is gone
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def init_worker(spec: SourceSpec, fault: Fault) -> None:
    """Open the source once per worker process, through the plugins installed there."""
    global _WORKER
    _exit_with_parent()
    from mailindex.plugins import plugin_manager

    source = plugin_manager().hook.mailindex_open_source(location=spec.location, source_type=spec.type,
                                                          options=dict(spec.options))
    _WORKER = (source, spec, fault)


def prepare_window(works: list[Work]) -> list[Prepared]:
    """prepare_one for each location, in a worker set up by `init_worker`. The results travel back
    without their `work` (the caller has it, in the same order)."""
    assert _WORKER is not None, "init_worker was not called in this process"
    source, spec, fault = _WORKER
    kill_point("prepare.worker-window")
    return [prepare_one(w, source, spec, fault) for w in works]
