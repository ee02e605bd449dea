"""SQLite beside the Tantivy index: accounts, sources, message records, locations, quarantine.

SQLite is the source of truth for what is indexed; Tantivy is derived from
it. A batch is written as: intent (SQLite) -> Tantivy commit -> records and
clearing the intent (one SQLite transaction). After a crash the intent names
every message whose Tantivy document may disagree with SQLite, and recovery
rewrites exactly those.

On disk the database is one file at rest: a writer works in WAL mode (readers
keep answering while it writes) and, the last one out, turns the file back to
a rollback journal, so that a read-only open takes only shared locks and
creates no -wal or -shm file (see `Store`).
"""

from __future__ import annotations

import _thread
import functools
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mailindex.errors import IndexClosed, IndexStoreError, IndexThreadError, IndexVersionError
from mailindex.index import tables
from mailindex.index.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from mailindex.record import Record

# zstd with a fixed dictionary (one typical record's JSON): records shrink to ~370
# bytes and decode in ~2 us, against ~550 bytes and ~7 us with zlib, which was a
# third of the time to build a page of results. Changing it needs a SCHEMA_VERSION bump.
_RECORD_SKELETON = (
    b'{"message_id":"0123456789abcdef01234567","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef'
    b'0123456789abcdef","size":4096,"subject":"Re: [PATCH v2 1/3] net: fix the subject of a message",'
    b'"email_message_id":"<20240101000000.12345-1-someone@example.com>","addresses":{"from":[['
    b'"someone@example.com","Some One"]],"to":[["list@vger.kernel.org",null]],"cc":[["other@example.org",'
    b'"Other, Person"],["team@lists.example.net",null]]},"date":1700000000,"date_source":"header",'
    b'"in_reply_to":"<20231231000000.12345-0-someone@example.com>","references":["<20231231000000.12345-0-'
    b'someone@example.com>"],"gmail_message_id":null,"gmail_thread_id":null,"list_unsubscribe":"<mailto:'
    b'list+unsubscribe@vger.kernel.org>","list_help":"<mailto:list+help@vger.kernel.org>","files":[["report.pdf",'
    b'12345,"application/pdf","2",false,"attachment",null,"application/pdf"],["image001.png",2048,"image/png",'
    b'"1.2",true,"inline","<image001.png@01D00000.00000000>","image/png"]],"parse_error":null,"defects":[]}'
)


class _RecordCodec:
    """Records to and from compressed JSON. Made on first use: a question that reads no record (a count)
    loads neither zstd, orjson nor the Record dataclasses."""

    def __init__(self) -> None:
        from dataclasses import fields

        import orjson
        import zstandard

        from mailindex.record import Address, Attachment, Record

        # the searchable text is in the full-text index only
        self.fields = tuple(f.name for f in fields(Record) if f.name not in ("text", "attachment_text"))
        self.file_fields = tuple(f.name for f in fields(Attachment))
        self.record, self.address, self.attachment = Record, Address, Attachment
        self.dumps, self.loads = orjson.dumps, orjson.loads
        data = zstandard.ZstdCompressionDict(_RECORD_SKELETON, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        self.compress = zstandard.ZstdCompressor(level=3, dict_data=data).compress
        self.decompress = zstandard.ZstdDecompressor(dict_data=data).decompress

    def encode(self, record: Record) -> bytes:
        data = {name: getattr(record, name) for name in self.fields}
        data["addresses"] = {role: [[a.email, a.name] for a in addrs] for role, addrs in record.addresses.items()}
        data["files"] = [[getattr(f, n) for n in self.file_fields] for f in record.files]
        return self.compress(self.dumps(data))

    def decode_fields(self, blob: bytes) -> dict[str, Any]:
        return self.loads(self.decompress(blob))

    def decode(self, blob: bytes) -> Record:
        data = self.decode_fields(blob)
        data["addresses"] = {role: [self.address(*a) for a in addrs] for role, addrs in data["addresses"].items()}
        data["files"] = [self.attachment(*f) for f in data["files"]]
        return self.record(**data)


_codec = functools.cache(_RecordCodec)


def to_sql(name: str) -> str | bytes:
    """A name that came from the filesystem as SQLite keeps it: text, or its exact bytes (a BLOB)
    when it is not valid UTF-8 (`os.fsdecode` gives such names lone surrogates)."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape")


def from_sql(value: str | bytes) -> str:
    """The name `to_sql` stored, as the filesystem functions take it."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


# A locator's path is kept once, in the path column (the listing fast path reads it); the JSON holds
# the rest and reads put the path back. A path that is not UTF-8 text (a BLOB there) stays in the JSON.
_LOCATOR = ("CASE WHEN typeof(path) = 'text' AND path <> '' AND json_type(locator, '$.path') IS NULL "
            "THEN json_set(locator, '$.path', path) ELSE locator END")


def location_columns(locator: Mapping[str, Any]) -> tuple[str, str | bytes]:
    """(locator JSON, path) as the locations table stores a backend's locator; reads give back the
    whole locator, path included."""
    path = locator.get("path", "")
    column = to_sql(str(path))
    if isinstance(path, str) and path and isinstance(column, str):
        return json.dumps({k: v for k, v in locator.items() if k != "path"}), column
    return json.dumps(dict(locator)), column


def encode_record(record: Record) -> bytes:
    """Compact, compressed JSON of a Record without its searchable text."""
    return _codec().encode(record)


def decode_record(blob: bytes) -> Record:
    return _codec().decode(blob)


def decode_record_fields(blob: bytes) -> dict[str, Any]:
    """What `decode_record` reads, left as the stored JSON: a Record's fields (without its searchable
    text), with each address an `[email, name]` pair and each file the list of its Attachment fields in
    order. A page of results is built from this: ~2.5x faster than making the Records."""
    return _codec().decode_fields(blob)


LocationRow = tuple[int, int, str, str, str, str, str]  # see Store.locations_in

_WAL = 2  # byte 18 of an SQLite file: 1 for a rollback journal, 2 for a write-ahead log
_SHM_WAITS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # seconds, for a writer's -shm (see _Connection)


class Placed(NamedTuple):
    """One location of a message, as stored (JSON where the column is)."""

    source_id: int
    container: str
    folders: str  # JSON list
    locator: str  # JSON object
    flags: str  # JSON list
    sha256: str  # of the bytes recorded there


class Store:
    """The SQLite half of an index directory; one per MailIndex, used by the thread that opened it.

    A new database file is made 0600 (SQLite gives its -wal, -shm and -journal files the mode of
    the database file); an existing one keeps its mode.

    Read-only opens write nothing: no file is created and no byte or timestamp changes, also on a
    medium or a copy the user cannot write. How the file is opened depends on what is beside it:
    - nothing (the last writer turned the file back to a rollback journal): `mode=ro`, which takes
      only shared locks, so a writer that starts meanwhile is waited for, not read half-way;
    - a -wal and a -shm (a writer is at work, or one stopped without closing): `mode=ro` with
      `readonly_shm=1`, which reads the log through the shared memory without writing to it;
    - a WAL-mode file without -wal (closed by a mailindex that kept the log mode at rest), or with
      an empty -wal and no -shm: `immutable=1`, which takes no lock and reads the file alone (the
      log holds nothing); `mode=ro` would create the -wal and -shm. Run no writer meanwhile.
    - a -wal with content but no -shm: refused (IndexStoreError). Reading those changes needs the
      -shm made, a write; open the index for writing once (on a copy of evidence) to fold them in.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        try:
            if read_only:
                self.db = _connect(_read_only_uri(path), uri=True, isolation_level=None, timeout=30)
                self.db.read_only = True
            else:
                _create_private(path)
                self.db = _connect(str(path), isolation_level=None, timeout=30)
        except (sqlite3.Error, OSError) as exc:
            raise IndexStoreError(f"cannot open the index metadata {path}: {exc}") from exc
        try:
            if not read_only:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.execute("PRAGMA foreign_keys=ON")
                tables.create(self.db)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = self.meta("schema_version")
        except sqlite3.Error as exc:
            self.db.close()
            raise IndexStoreError(f"cannot open the index metadata {path}: {exc}") from exc
        if version != str(SCHEMA_VERSION):
            self.db.close()
            raise IndexVersionError(
                f"{path.parent} was built with index schema {version}; this mailindex reads schema "
                f"{SCHEMA_VERSION}: rebuild it into a new directory"
            )

    @property
    def closed(self) -> bool:
        return self.db.closed

    def check(self) -> None:
        """IndexClosed once closed; IndexThreadError from a thread other than the one that opened it."""
        self.db.check()

    @property
    def file_mode(self) -> int:
        """The permission bits of the database file, which the index's other files follow."""
        return self.path.stat().st_mode & 0o777

    def close(self) -> None:
        """Close the connection (again: nothing). A writer that is the last connection turns the file
        back to a rollback journal, which folds the log in and deletes the -wal and -shm; otherwise
        it empties the log as far as readers allow, and the last writer out does the rest."""
        if self.db.closed:
            return
        self.db.check()
        try:
            if not self.read_only:
                self.db.execute("PRAGMA busy_timeout = 0")  # another connection is open: it does this when it closes
                try:
                    self.db.execute("PRAGMA journal_mode=DELETE")
                except sqlite3.OperationalError:  # that connection is open: the file stays in WAL mode meanwhile
                    self.checkpoint()  # folds in what no reader still uses
        except sqlite3.Error as exc:
            raise IndexStoreError(f"cannot close the index metadata {self.path}: {exc}") from exc
        finally:
            self.db.close()

    # -- transactions -------------------------------------------------------
    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file and truncate it, so the index's size is its size."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def transaction(self) -> "_Transaction":
        return _Transaction(self.db)

    # -- meta ---------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A query's rows, addressable by column name (other queries keep plain tuples: they are faster)."""
        return self.db.rows(sql, args)

    # -- sources ------------------------------------------------------------
    def source_rows(self, account: str | None = None) -> list[sqlite3.Row]:
        """Every source (of one account when given), oldest first."""
        if account is None:
            return self.rows("SELECT * FROM sources ORDER BY id")
        return self.rows("SELECT * FROM sources WHERE account = ? ORDER BY id", (account,))

    def source_labels(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT id, label FROM sources"))

    def source_accounts(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT id, account FROM sources"))

    def containers(self, source_id: int) -> dict[str, tuple[str, dict[str, int]]]:
        """name -> (stamp, files its last listing skipped by reason) of each container of a source."""
        return {from_sql(n): (stamp, json.loads(skipped)) for n, stamp, skipped in self.db.execute(
            "SELECT name, stamp, skipped FROM containers WHERE source_id = ?", (source_id,))}

    def set_containers(self, source_id: int, containers: dict[str, tuple[str, dict[str, int]]]) -> None:
        self.db.execute("DELETE FROM containers WHERE source_id = ?", (source_id,))
        self.db.executemany("INSERT INTO containers VALUES (?, ?, ?, ?)",
                            [(source_id, to_sql(n), stamp, json.dumps(skipped))
                             for n, (stamp, skipped) in containers.items()])

    # -- locations ----------------------------------------------------------
    def locations_in(self, source_id: int, container: str,
                     keys: Iterable[str] | None = None) -> dict[str, LocationRow]:
        """key -> (location id, message rowid, sig, content_stamp, locator, folders, flags) for one container
        (only `keys`, when given)."""
        sql = (f"SELECT key, id, message, sig, content_stamp, {_LOCATOR}, folders, flags FROM locations "
               "WHERE source_id = ? AND container = ?")
        where = (source_id, to_sql(container))
        if keys is None:
            return {from_sql(r[0]): r[1:] for r in self.db.execute(sql, where)}
        out = {}
        for chunk in _chunks([to_sql(k) for k in keys], 900):
            marks = ",".join("?" * len(chunk))
            for r in self.db.execute(f"{sql} AND key IN ({marks})", (*where, *chunk)):
                out[from_sql(r[0])] = r[1:]
        return out

    def paths_in(self, source_id: int, container: str) -> set[str]:
        """Locator paths of every location in one container."""
        paths = {p for (p,) in self.db.execute(
            "SELECT path FROM locations WHERE source_id = ? AND container = ?", (source_id, to_sql(container)))}
        odd = {p for p in paths if type(p) is bytes}  # names that are not UTF-8 (a check per row, not a call)
        return (paths - odd) | {from_sql(p) for p in odd} if odd else paths

    def keys_at(self, source_id: int, container: str, paths: Iterable[str]) -> list[str]:
        """Keys of the locations at these locator paths."""
        out: list[str] = []
        for chunk in _chunks([to_sql(p) for p in paths], 900):
            marks = ",".join("?" * len(chunk))
            out += [from_sql(r[0]) for r in self.db.execute(
                f"SELECT key FROM locations WHERE source_id = ? AND container = ? AND path IN ({marks})",
                (source_id, to_sql(container), *chunk))]
        return out

    def location_containers(self, source_id: int) -> set[str]:
        return {from_sql(r[0]) for r in self.db.execute(
            "SELECT DISTINCT container FROM locations WHERE source_id = ?", (source_id,))}

    def placement_rows(self, message_rowids: Iterable[int]) -> dict[int, list[tuple[int, int, str, str]]]:
        """message rowid -> [(location id, source id, folders json, flags json)] for every location."""
        out: dict[int, list[tuple[int, int, str, str]]] = {}
        for chunk in _chunks(list(message_rowids), 900):
            marks = ",".join("?" * len(chunk))
            for mid, loc, sid, folders, flags in self.db.execute(
                f"SELECT message, id, source_id, folders, flags FROM locations WHERE message IN ({marks})", chunk
            ):
                out.setdefault(mid, []).append((loc, sid, folders, flags))
        return out

    def locator(self, location_id: int) -> dict[str, Any] | None:
        row = self.db.execute(f"SELECT {_LOCATOR} FROM locations WHERE id = ?", (location_id,)).fetchone()
        return json.loads(row[0]) if row else None

    # -- messages -----------------------------------------------------------
    def message_rows(self, message_ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """message_id -> (rowid, sort_key, date_indexed) for those that exist."""
        out: dict[str, tuple[int, int, int]] = {}
        for chunk in _chunks(list(message_ids), 900):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT message_id, id, sort_key, date_indexed FROM messages WHERE message_id IN ({marks})", chunk
            ):
                out[row[0]] = row[1:]
        return out

    def message_rowids(self, message_ids: Sequence[str]) -> dict[str, int]:
        """message_id -> rowid of those that exist."""
        out: dict[str, int] = {}
        for chunk in _chunks(list(message_ids), 900):
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(f"SELECT message_id, id FROM messages WHERE message_id IN ({marks})", chunk))
        return out

    def message_ids(self, rowids: Sequence[int]) -> list[str]:
        """message_id of each rowid that exists, in the order given."""
        found: dict[int, str] = {}
        for chunk in _chunks(list(rowids), 900):
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT id, message_id FROM messages WHERE id IN ({marks})", chunk))
        return [found[r] for r in rowids if r in found]

    def sort_key(self, rowid: int) -> int:
        return int(self.db.execute("SELECT sort_key FROM messages WHERE id = ?", (rowid,)).fetchone()[0])

    def used_sort_keys(self, keys: Sequence[int]) -> set[int]:
        """Those of `keys` that a message already has."""
        out: set[int] = set()
        for chunk in _chunks(list(keys), 900):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT sort_key FROM messages WHERE sort_key IN ({marks})", chunk)
            out.update(r[0] for r in rows)
        return out

    def free_sort_key(self, wanted: int, taken: set[int]) -> int:
        """`wanted`, or the next integer after it that no message uses."""
        key = wanted
        while key in taken or self.db.execute("SELECT 1 FROM messages WHERE sort_key = ?", (key,)).fetchone():
            key += 1
        return key

    def records_by_sort_keys(self, keys: Sequence[int]) -> dict[int, tuple[int, str, int, bytes]]:
        """sort_key -> (rowid, message_id, date_indexed, record blob)."""
        out = {}
        for chunk in _chunks(list(keys), 900):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT sort_key, id, message_id, date_indexed, record FROM messages WHERE sort_key IN ({marks})",
                chunk,
            ):
                out[row[0]] = row[1:]
        return out

    def records_by_rowids(self, rowids: Sequence[int]) -> dict[int, bytes]:
        """messages.id -> record blob."""
        out: dict[int, bytes] = {}
        for chunk in _chunks(list(rowids), 900):
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(f"SELECT id, record FROM messages WHERE id IN ({marks})", chunk).fetchall())
        return out

    def find_message(self, ident: str, account: str | None = None) -> tuple[int, str, int, bytes] | None:
        """(rowid, message_id, date_indexed, record) by message_id, <email_message_id> or gm-<id>;
        only among the messages of `account` when given."""
        if ident.startswith("<") and ident.endswith(">"):
            where, value = "email_message_id = ?", ident
        elif ident.startswith("gm-"):
            where, value = "gmail_message_id = ?", ident[3:]
        else:
            where, value = "message_id = ?", ident.lower()
        args: tuple[str, ...] = (value,)
        if account is not None:
            where += (" AND EXISTS (SELECT 1 FROM locations l JOIN sources s ON s.id = l.source_id "
                      "WHERE l.message = messages.id AND s.account = ?)")
            args += (account,)
        return self.db.execute(
            f"SELECT id, message_id, date_indexed, record FROM messages WHERE {where} ORDER BY id LIMIT 1", args
        ).fetchone()

    def in_account(self, rowids: Sequence[int], account: str) -> set[int]:
        """Those message rowids with a location in one of the account's sources."""
        # Filtered here, not in SQL: given the source, SQLite would walk that source's every location.
        mine = {r[0] for r in self.db.execute("SELECT id FROM sources WHERE account = ?", (account,))}
        out: set[int] = set()
        for chunk in _chunks(list(rowids), 900):
            marks = ",".join("?" * len(chunk))
            out.update(m for m, sid in self.db.execute(
                f"SELECT message, source_id FROM locations WHERE message IN ({marks})", chunk) if sid in mine)
        return out

    def locations_of(self, message_rowid: int) -> list[Placed]:
        """Every location of one message, oldest first."""
        return [Placed(sid, from_sql(c), *rest) for sid, c, *rest in self.db.execute(
            f"SELECT source_id, container, folders, {_LOCATOR}, flags, sha256 FROM locations WHERE message = ? "
            "ORDER BY id", (message_rowid,))]

    def has_account(self, account_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is not None

    def count_messages(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def intent(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT message_id FROM intent")]

    def quarantined(self, source_id: int) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM quarantine WHERE source_id = ?", (source_id,)).fetchone()[0])

    def quarantine_rows(self, source_id: int | None = None) -> list[tuple[Any, ...]]:
        sql = "SELECT source_id, container, key, locator, error, indexed, last_seen FROM quarantine"
        args: tuple[Any, ...] = ()
        if source_id is not None:
            sql, args = sql + " WHERE source_id = ?", (source_id,)
        return [(sid, from_sql(c), from_sql(k), *rest)
                for sid, c, k, *rest in self.db.execute(sql + " ORDER BY id", args)]


def check_use(closed: bool, owner: int) -> None:
    """IndexClosed once closed; IndexThreadError in a thread other than `owner`, the one that opened it."""
    if closed:
        raise IndexClosed("this MailIndex is closed")
    if _thread.get_ident() != owner:
        raise IndexThreadError("this MailIndex was opened in another thread: open one MailIndex per thread")


class _Connection(sqlite3.Connection):
    """A connection that refuses, with errors of ours, use after close and use from another thread
    (where sqlite3 raises ProgrammingError)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = _thread.get_ident()
        self.closed = False
        self.read_only = False

    def check(self) -> None:
        check_use(self.closed, self.owner)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self._retrying(lambda: super(_Connection, self).execute(sql, parameters))

    def rows(self, sql: str, parameters: Any = ()) -> list[sqlite3.Row]:
        """A query's rows, addressable by column name, on a cursor of their own (the connection's other
        queries keep plain tuples: they are faster)."""
        def run() -> sqlite3.Cursor:
            cursor = self.cursor()
            cursor.row_factory = sqlite3.Row
            return cursor.execute(sql, parameters)
        return self._retrying(run).fetchall()

    def _retrying(self, run: Callable[[], sqlite3.Cursor]) -> sqlite3.Cursor:
        self.check()
        for wait in _SHM_WAITS if self.read_only else ():
            try:
                return run()
            except sqlite3.OperationalError as exc:
                # A writer turning the file to WAL mode makes the -wal, then the -shm, which a reader that
                # writes nothing cannot make (SQLITE_CANTOPEN meanwhile): it comes within milliseconds.
                if exc.sqlite_errorname != "SQLITE_CANTOPEN":
                    raise
                time.sleep(wait)
        return run()

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self.check()
        return super().executemany(sql, parameters)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        self.check()
        return super().executescript(script)

    def close(self) -> None:
        self.check()
        super().close()
        self.closed = True


def _connect(database: str, **kwargs: Any) -> _Connection:
    return sqlite3.connect(database, factory=_Connection, **kwargs)


def _create_private(path: Path) -> None:
    """Make an empty database file readable by its owner only, unless one is there (SQLite would
    make it with the umask's mode, 0644 as a rule)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _read_only_uri(path: Path) -> str:
    """The URI that reads `path` writing nothing, by what lies beside it (see Store)."""
    where = "file:" + urllib.parse.quote(os.fsencode(path))  # '?', '#' and '%' are URI syntax
    wal = Path(f"{path}-wal")
    if Path(f"{path}-shm").exists() and wal.exists():
        return where + "?mode=ro&readonly_shm=1"
    if wal.exists() and wal.stat().st_size > 0:
        raise IndexStoreError(
            f"{path.parent} holds changes its last writer did not fold in ({wal.name}, without the "
            f"{path.name}-shm that reading them needs): open it for writing once, on a copy if it is evidence")
    with open(path, "rb") as f:
        header = f.read(20)
    if wal.exists() or (len(header) == 20 and header[18] == _WAL):
        return where + "?immutable=1"
    # readonly_shm: should a writer turn the file to WAL mode meanwhile, its -shm is read, not written.
    return where + "?mode=ro&readonly_shm=1"


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
