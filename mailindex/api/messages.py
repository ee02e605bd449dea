"""The Context.IO messages resource: list, iterate, count and get messages, and their parts."""

from __future__ import annotations

import builtins
import functools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from mailindex.api.sources import Sources
from mailindex.engine import Engine, MessageRow
from mailindex.errors import IntegrityError, MailindexError, SourceError
from mailindex.folders import symbolic_name
from mailindex.identity import sha256_hex
from mailindex.index.store import decode_record, decode_record_fields
from mailindex.locations import resource_url
from mailindex.query.compiler import compile_filters
from mailindex.query.filters import FILTER_PARAMS, INCLUDE_PARAMS, MESSAGE_LIST_PARAMS, Include, parse_params
from mailindex.results import body_parts, flags_dict, header_block, message_dict, person_info, source_text

if TYPE_CHECKING:  # imported where used: listing and counting need neither live operations nor threads
    from tantivy import Query

    from mailindex.api.live import LiveOperations
    from mailindex.threads import ThreadStore

THREAD_PARAMS = ("limit", "offset", *INCLUDE_PARAMS)


class Messages:
    """The Context.IO messages resource of one account: only messages in its sources are seen."""

    def __init__(self, engine: Engine, account_id: str) -> None:
        self._engine, self._account_id = engine, account_id
        self._sources = Sources(engine, account_id)

    def _query(self, params: Mapping[str, Any], allowed: tuple[str, ...] = MESSAGE_LIST_PARAMS
               ) -> tuple[Query, Callable[[Query], Query] | None, Any, Include]:
        """(the query; for a full-text question, the query compiled for a window; the page; the include
        options)."""
        filters, page, include = parse_params(params, allowed)
        owners, terms = self._engine.owners(self._account_id), self._sources.terms()
        searcher = self._engine.searcher

        def compiled(within: Query | None) -> Query:
            return compile_filters(filters, searcher.schema, owners, searcher, account=self._account_id,
                                   sources=terms, within=within)
        query = compiled(None)
        if filters.q is None:
            return query, None, page, include
        return query, compiled if filters.q.has_phrase() else lambda _: query, page, include

    def list(self, **params: Any) -> builtins.list[dict[str, Any]]:
        """One page of messages matching Context.IO list filters (limit 1..100, default 100)."""
        query, narrowed, page, include = self._query(params)
        keys = self._engine.searcher.page(query, page.limit, page.offset, page.sort_order == "desc", narrowed)
        return self._materialize(keys, include)

    def iter(self, **params: Any) -> Iterator[dict[str, Any]]:
        """Every matching message, in order, with no 100 cap (no limit/offset)."""
        allowed = tuple(p for p in MESSAGE_LIST_PARAMS if p not in ("limit", "offset"))
        query, _, page, include = self._query(params, allowed)
        batch: builtins.list[int] = []
        for key in self._engine.searcher.iter_all(query, page.sort_order == "desc"):
            batch.append(key)
            if len(batch) == 500:
                yield from self._materialize(batch, include)
                batch = []
        yield from self._materialize(batch, include)

    def count(self, **params: Any) -> int:
        """Number of matching messages, without fetching them."""
        query, _, _, _ = self._query(params, FILTER_PARAMS)
        return self._engine.searcher.count(query)

    def get(self, message_id: str, **include: Any) -> dict[str, Any]:
        """One message by message_id, <email_message_id> or gm-<gmail_message_id>, with the include options."""
        _, _, inc = parse_params(include, INCLUDE_PARAMS)
        rowid, mid, date_indexed, blob = self._find(message_id)
        return self._page_of([(rowid, mid, date_indexed, blob)], inc)[0]

    def source(self, message_id: str) -> bytes:
        """The original bytes, verified against the SHA-256 recorded at ingest."""
        return self._read(self._find(message_id)[0])[0]

    def body(self, message_id: str, body_type: str | None = None) -> builtins.list[dict[str, str]]:
        """Text parts `[{type, charset, content, body_section}]`, only of `body_type` when given."""
        _, _, inc = parse_params({"include_body": 1, "body_type": body_type}, INCLUDE_PARAMS)
        return body_parts(self.source(message_id), inc.body_type)

    def headers(self, message_id: str, raw: bool = False) -> dict[str, builtins.list[str]] | str:
        """`{name: [values...]}` decoded as the parser decodes them (so they agree with `get`), in original
        order; with `raw`, the header block as in the source."""
        from mailindex.parse_headers import header_fields

        data = self.source(message_id)
        return header_block(data) if raw else header_fields(data)

    def flags(self, message_id: str) -> dict[str, bool]:
        """`{seen, answered, flagged, deleted, draft, nonjunk}`, read from the source now (never cached)."""
        return flags_dict(self._read(self._find(message_id)[0], want_flags=True)[1])

    def folders(self, message_id: str) -> builtins.list[dict[str, str]]:
        """`[{name, symbolic_name?}]`: every folder the message is in, over the account's sources."""
        import orjson

        rowid = self._find(message_id)[0]
        names: dict[str, None] = {}
        mine = self._source_ids()
        for _, sid, folders_json, _ in self._engine.store.placement_rows([rowid]).get(rowid, []):
            if sid in mine:
                names.update(dict.fromkeys(orjson.loads(folders_json)))
        return [{"name": n, **({"symbolic_name": sym} if (sym := symbolic_name(n)) else {})} for n in names]

    def thread(self, message_id: str, **params: Any) -> dict[str, Any]:
        """The message's thread: `{email_message_ids, person_info, messages}`.

        Messages come in conversation order (JWZ: replies under what they answer, siblings by
        date), honouring `limit` (1..100), `offset` and the include options of a message.
        """
        _, page, inc = parse_params(params, THREAD_PARAMS)
        mid = self._find(message_id)[1]
        members = self._threads.members(self._threads.thread_of(mid))  # kept with the message, never missing
        rows = self._engine.store.message_rows(members)
        mine = self._engine.store.in_account([r[0] for r in rows.values()], self._account_id)
        sort_keys = [sk for rowid, sk, _ in rows.values() if rowid in mine]
        by_mid = {row[1]: row for row in self._engine.store.records_by_sort_keys(sort_keys).values()}
        records = {key: decode_record(row[3]) for key, row in by_mid.items()}
        from mailindex.threads import flatten, jwz_tree

        order = flatten(jwz_tree(records.values()))
        everyone = [records[m] for m in order]
        return {
            "email_message_ids": list(dict.fromkeys(r.email_message_id for r in everyone if r.email_message_id)),
            "person_info": person_info(everyone),
            "messages": self._page_of([by_mid[m] for m in order][page.offset:page.offset + page.limit], inc),
        }

    # -- live operations (they change the source; the index follows at once) ------------------
    def set_flags(self, message_id: str, **flags: Any) -> dict[str, Any]:
        """Set (1) or clear (0) `seen`, `answered`, `flagged`, `deleted`, `draft` at the source;
        answers `{success, flags}` with the flags read back."""
        return self._live.set_flags(message_id, **flags)

    def copy(self, message_id: str, dst_folder: str, dst_source: str | None = None, move: bool | int = 0,
             **flags: Any) -> dict[str, Any]:
        """Copy (or with `move=1`, move) the message to `dst_folder` of `dst_source` (default: its own
        source), setting any `flag_*`; answers `{success}`, or `{success: false, connection_log}`."""
        return self._live.copy(message_id, dst_folder, dst_source, move, **flags)

    def move(self, message_id: str, dst_folder: str, dst_source: str | None = None, **flags: Any) -> dict[str, Any]:
        """`copy(..., move=1)`: copy, verify the copy, then delete the original."""
        return self._live.copy(message_id, dst_folder, dst_source, 1, **flags)

    def delete(self, message_id: str) -> dict[str, Any]:
        """Delete the message from the account's sources (Gmail: move it to [Gmail]/Trash)."""
        return self._live.delete(message_id)

    def append(self, message: bytes, dst_folder: str, dst_source: str | None = None,
               **flags: Any) -> dict[str, Any]:
        """Add a raw RFC 822 message to `dst_folder` of `dst_source` (default: the first source)."""
        return self._live.append(message, dst_folder, dst_source, **flags)

    def update_folders(self, message_id: str, add: str | builtins.list[str] | None = None,
                       remove: str | builtins.list[str] | None = None) -> dict[str, Any]:
        """Add the message to folders and/or take it out of folders (within its source)."""
        return self._live.update_folders(message_id, add, remove)

    def set_folders(self, message_id: str, folders: builtins.list[dict[str, str]]) -> dict[str, Any]:
        """Replace the message's folders by `[{"name": ...} | {"symbolic_name": ...}]`."""
        return self._live.set_folders(message_id, folders)

    @functools.cached_property
    def _live(self) -> LiveOperations:
        from mailindex.api.live import LiveOperations

        return LiveOperations(self._engine, self._account_id)

    @functools.cached_property
    def _threads(self) -> ThreadStore:
        from mailindex.threads import ThreadStore

        return ThreadStore(self._engine.store.db)

    def _find(self, message_id: str) -> MessageRow:
        return self._engine.find_message(self._account_id, message_id)

    def _materialize(self, keys: builtins.list[int], include: Include) -> builtins.list[dict[str, Any]]:
        rows = self._engine.store.records_by_sort_keys(keys)
        return self._page_of([rows[k] for k in keys if k in rows], include)

    def _page_of(self, rows: builtins.list[tuple[int, str, int, bytes]], include: Include) -> builtins.list[dict[str, Any]]:
        """Message objects for (rowid, message_id, date_indexed, record) rows, in their order."""
        store = self._engine.store
        mine = {r["id"]: r for r in self._sources.rows()}  # once per page, not once per message
        places = store.placement_rows([r[0] for r in rows])
        sizes = self._thread_sizes([r[1] for r in rows]) if include.thread_size else {}
        out = []
        for rowid, mid, date_indexed, blob in rows:
            m = self._build(rowid, date_indexed, blob, include, mine, places.get(rowid, []))
            if include.thread_size:
                m["thread_size"] = sizes.get(mid, 1)
            out.append(m)
        return out

    def _thread_sizes(self, mids: builtins.list[str]) -> dict[str, int]:
        """{message_id: messages of its thread within this account}."""
        mates = self._threads.mates_of(mids)
        rows = self._engine.store.message_rows(list({m for ms in mates.values() for m in ms}))
        mine = self._engine.store.in_account([r[0] for r in rows.values()], self._account_id)
        return {mid: sum(rows[m][0] in mine for m in ms if m in rows) for mid, ms in mates.items()}

    def _source_ids(self) -> set[int]:
        return {r["id"] for r in self._sources.rows()}

    def _build(self, rowid: int, date_indexed: int, blob: bytes, inc: Include, mine: Mapping[int, sqlite3.Row],
               locations: builtins.list[tuple[int, int, str, str]]) -> dict[str, Any]:
        import orjson  # here, not at the top: a count or a thread size needs no JSON

        folders: dict[str, None] = {}
        sources: dict[str, dict[str, str]] = {}
        raw_file_list = False
        for _, sid, folders_json, _ in locations:
            if sid not in mine:
                continue  # another account's copy
            row = mine[sid]
            sources.setdefault(row["label"], {"label": row["label"], "resource_url": resource_url(row["location"])})
            folders.update(dict.fromkeys(orjson.loads(folders_json)))
            raw_file_list = raw_file_list or bool(row["raw_file_list"])
        out = message_dict(decode_record_fields(blob), date_indexed=date_indexed, folders=list(folders),
                           sources=list(sources.values()), raw_file_list=raw_file_list)
        if inc.body or inc.headers or inc.source or inc.flags:
            raw, flags = self._read(rowid, want_flags=inc.flags)
            if inc.body:
                out["body"] = body_parts(raw, inc.body_type)
            if inc.headers == "raw":
                out["headers"] = header_block(raw)
            elif inc.headers:
                from mailindex.parse_headers import header_fields

                out["headers"] = header_fields(raw)
            if inc.source:
                out["source"] = source_text(raw)
            if inc.flags:
                out["flags"] = flags_dict(flags)
        return out

    def _read(self, rowid: int, want_flags: bool = False) -> tuple[bytes, frozenset[str]]:
        """Bytes of the first readable location, verified; flags read live."""
        problems = []
        mine = self._source_ids()
        for placed in self._engine.store.locations_of(rowid):
            if placed.source_id not in mine:
                continue
            src = self._engine.source_for_id(placed.source_id)
            if src is None:
                problems.append(f"source {placed.source_id} cannot be opened")
                continue
            locator = json.loads(placed.locator)
            try:
                raw = src.read_bytes(locator)
            except (SourceError, OSError) as exc:
                problems.append(str(exc))
                continue
            if sha256_hex(raw) != placed.sha256:
                raise IntegrityError(f"{locator}: the message changed on disk since it was indexed "
                                     f"(SHA-256 {sha256_hex(raw)[:16]}…, recorded {placed.sha256[:16]}…); sync again")
            return raw, src.read_flags(locator) if want_flags else frozenset()
        raise MailindexError("cannot read the message from any of its sources: " + "; ".join(problems))
