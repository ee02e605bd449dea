"""Live operations on one account's messages: flags, copy and move, delete, append, folders.

Each operation takes the index's writer first (so a busy or read-only index
refuses before anything at the source changes), does the work at the source
through the backend's Backend methods, then syncs the sources it touched, so
the index follows at once: a moved message keeps its message_id in its new
folder, a deleted one is gone, flags are current.

Answers follow Context.IO: ``{"success": true}``; when the source refused or
failed, ``{"success": false, "connection_log": "..."}`` with its words. Bad
parameters, unknown messages and unsupported operations raise, as everywhere.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mailindex.api.sources import Sources
from mailindex.engine import Engine
from mailindex.errors import QueryError, SourceError, SourceNotFound, SourceUnavailable, UnsupportedOperation
from mailindex.folders import FLAG_NAMES
from mailindex.index.tantivy_index import Writer
from mailindex.killpoints import kill_point
from mailindex.query.filters import flag_param
from mailindex.results import flags_dict
from mailindex.sources.base import Backend, transfer

FLAG_PARAMS = tuple(f"flag_{name}" for name in FLAG_NAMES)
_FLAG_SYMBOLS = ("\\Flagged", "\\Starred")  # a flag, where the source has no such folder


@dataclass(frozen=True)
class Place:
    """One location of a message: its source row, opened backend, locator and folders."""

    row: sqlite3.Row
    source: Backend
    locator: Mapping[str, Any]
    folders: tuple[str, ...]
    sha256: str  # of the bytes the index recorded at this locator


def flag_changes(params: Mapping[str, Any], prefix: str = "flag_") -> dict[str, bool]:
    """{flag: on} from `flag_seen=1`-style parameters (`seen=1` with prefix ""); unknown names raise."""
    out: dict[str, bool] = {}
    for key, value in params.items():
        name = key[len(prefix):] if key.startswith(prefix) else None
        if name not in FLAG_NAMES:
            raise QueryError(key, value, f"unknown parameter; flags are {', '.join(prefix + n for n in FLAG_NAMES)}")
        if value is not None:
            out[name] = bool(flag_param(key, value))
    return out


def _apply(flags: frozenset[str], changes: Mapping[str, bool]) -> frozenset[str]:
    return frozenset((set(flags) - {f for f, on in changes.items() if not on}) | {f for f, on in changes.items() if on})


def _failure(exc: SourceError) -> dict[str, Any]:
    return {"success": False, "connection_log": exc.connection_log or str(exc)}


def _folder_list(name: str, value: str | Iterable[str] | None) -> list[str]:
    """Folder names from "A,B" or a list; each non-empty."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise QueryError(name, value, "must be folder names (a string, comma-separated, or a list of strings)")
    return [v.strip() for v in items]


class LiveOperations:
    """The write side of one account's messages; reached through `Messages` methods."""

    def __init__(self, engine: Engine, account_id: str) -> None:
        self._engine, self._account_id = engine, account_id
        self._sources = Sources(engine, account_id)

    # -- finding ----------------------------------------------------------------
    def _places(self, message_id: str) -> list[Place]:
        """Every location of the message in this account's sources, sources in order."""
        rowid = self._engine.find_message(self._account_id, message_id)[0]
        order = {r["id"]: (i, r) for i, r in enumerate(self._sources.rows())}
        places = []
        mine = (p for p in self._engine.store.locations_of(rowid) if p.source_id in order)
        for p in sorted(mine, key=lambda p: order[p.source_id][0]):
            row = order[p.source_id][1]
            places.append(Place(row, self._engine.open_row(row), json.loads(p.locator), tuple(json.loads(p.folders)),
                                p.sha256))
        if not places:
            raise SourceError(message_id, "no source of this account holds the message any more: sync again")
        return places

    def _dst_row(self, dst_source: str | None, default: sqlite3.Row) -> sqlite3.Row:
        if dst_source is None:
            return default
        if not isinstance(dst_source, str) or not dst_source:
            raise QueryError("dst_source", dst_source, "must be a source label")
        return self._sources.row(dst_source)

    def _begin(self, rows: Iterable[sqlite3.Row]) -> Writer:
        """Refuse unavailable sources, then take the writer: nothing is done at a source the index cannot follow."""
        for row in rows:
            why = self._engine.unavailable(row)
            if why:
                raise SourceUnavailable(row["label"], why)
        return self._engine.writer()

    def _follow(self, writer: Writer, rows: Iterable[sqlite3.Row], answer: dict[str, Any]) -> dict[str, Any]:
        """Sync the touched sources (destinations first, so a moved message is never briefly unindexed)."""
        kill_point("live.before-follow")
        unique = list({r["id"]: r for r in rows}.values())
        report = self._engine.sync(unique, writer=writer)
        if report.errors:
            answer["index_errors"] = report.errors
        return answer

    # -- flags --------------------------------------------------------------------
    def set_flags(self, message_id: str, **flags: Any) -> dict[str, Any]:
        """Set (1) or clear (0) `seen`, `answered`, `flagged`, `deleted`, `draft` at every copy in the account.

        Answers `{success, flags}` with the flags read back from the source."""
        changes = flag_changes(flags, prefix="")
        places = self._places(message_id)
        writer = self._begin(p.row for p in places)
        try:
            answer = self._set_flags(places, changes)
            return self._follow(writer, [p.row for p in places], answer)
        finally:
            writer.close()

    def _set_flags(self, places: list[Place], changes: Mapping[str, bool]) -> dict[str, Any]:
        able = [p for p in places if type(p.source).set_flags is not Backend.set_flags]
        if not able:
            raise UnsupportedOperation(places[0].row["label"], f"{places[0].row['type']} sources keep no flags")
        try:
            after = [p.source.set_flags(p.locator, changes) if changes else p.locator for p in able]
            return {"success": True, "flags": flags_dict(able[0].source.read_flags(after[0]))}
        except SourceError as exc:
            return _failure(exc)

    # -- copy, move, delete, append ---------------------------------------------
    def copy(self, message_id: str, dst_folder: str, dst_source: str | None = None, move: bool | int = 0,
             **flags: Any) -> dict[str, Any]:
        """Copy the message (or `move=1`: copy, verify, then delete the original) to `dst_folder` of
        `dst_source` (default: its own source), optionally setting `flag_*` on the copy."""
        folder = _folder_list("dst_folder", dst_folder)
        if len(folder) != 1:
            raise QueryError("dst_folder", dst_folder, "must be one folder name")
        moving = bool(flag_param("move", move))
        changes = flag_changes(flags)
        origin = self._places(message_id)[0]
        dst_row = self._dst_row(dst_source, origin.row)
        writer = self._begin([dst_row, origin.row])
        try:
            dst = self._engine.open_row(dst_row)
            try:
                new_flags = _apply(origin.source.read_flags(origin.locator), changes) if changes else None
                transfer(origin.source, origin.locator, origin.sha256, dst, folder[0], new_flags, moving)
                answer: dict[str, Any] = {"success": True}
            except SourceError as exc:
                answer = _failure(exc)
            return self._follow(writer, [dst_row, origin.row], answer)
        finally:
            writer.close()

    def delete(self, message_id: str) -> dict[str, Any]:
        """Delete every copy of the message in the account's sources (an IMAP server expunges only it;
        Gmail moves it to [Gmail]/Trash)."""
        places = self._places(message_id)
        writer = self._begin(p.row for p in places)
        try:
            answer: dict[str, Any] = {"success": True}
            for p in places:
                try:
                    p.source.delete(p.locator)
                except SourceNotFound:
                    continue  # gone already (Gmail: trashing one label's copy took them all)
                except SourceError as exc:
                    answer = _failure(exc)
                    break
            return self._follow(writer, [p.row for p in places], answer)
        finally:
            writer.close()

    def append(self, data: bytes, dst_folder: str, dst_source: str | None = None, **flags: Any) -> dict[str, Any]:
        """Add a raw RFC 822 message to `dst_folder` of `dst_source` (default: the first source) with `flag_*`."""
        if not isinstance(data, (bytes, bytearray)) or not bytes(data).strip():
            raise QueryError("message", type(data).__name__, "must be the message's raw bytes, not empty")
        folder = _folder_list("dst_folder", dst_folder)
        if len(folder) != 1:
            raise QueryError("dst_folder", dst_folder, "must be one folder name")
        changes = flag_changes(flags)
        row = self._sources.row("0" if dst_source is None else dst_source)
        writer = self._begin([row])
        try:
            try:
                self._engine.open_row(row).append(folder[0], bytes(data), _apply(frozenset(), changes))
                answer: dict[str, Any] = {"success": True}
            except SourceError as exc:
                answer = _failure(exc)
            return self._follow(writer, [row], answer)
        finally:
            writer.close()

    # -- folders ----------------------------------------------------------------------
    def update_folders(self, message_id: str, add: str | Iterable[str] | None = None,
                       remove: str | Iterable[str] | None = None) -> dict[str, Any]:
        """Put the message in the `add` folders and take it out of the `remove` ones, within its source."""
        adding, removing = _folder_list("add", add), _folder_list("remove", remove)
        if not adding and not removing:
            raise QueryError("add", None, "give folders to add or to remove")
        return self._change_folders(message_id, "remove", add=adding, remove=removing)

    def set_folders(self, message_id: str, folders: Iterable[Mapping[str, str]]) -> dict[str, Any]:
        """Replace the message's folders in its source by `[{"name": ...} | {"symbolic_name": ...}]`.

        `\\Flagged` (Gmail's `\\Starred`) sets the flagged flag where the source has no such folder."""
        if isinstance(folders, (str, bytes)) or not isinstance(folders, Iterable):
            raise QueryError("folders", folders, "must be a list of {name} or {symbolic_name} objects")
        wanted = list(folders)
        for item in wanted:
            if not isinstance(item, Mapping) or len(item) != 1 or not {"name", "symbolic_name"} & set(item) \
                    or not isinstance(next(iter(item.values())), str):
                raise QueryError("folders", item, "each item must be {\"name\": ...} or {\"symbolic_name\": ...}")
        if not wanted:
            raise QueryError("folders", wanted, "a message must stay in at least one folder; delete it instead")
        return self._change_folders(message_id, "folders", target=wanted)

    def _change_folders(self, message_id: str, param: str, add: Iterable[Any] = (), remove: Iterable[Any] = (),
                        target: Iterable[Any] | None = None) -> dict[str, Any]:
        """Adds (copies) first, then removals (deletes of the copies in those folders), in the message's source."""
        places = self._places(message_id)
        home = places[0]
        mine = [p for p in places if p.row["id"] == home.row["id"]]
        by_symbol = {f.symbolic_name: f.name for f in home.source.folders() if f.symbolic_name}

        def resolve(item: Any) -> str:
            if isinstance(item, Mapping) and "symbolic_name" in item:
                sym = item["symbolic_name"]
                if sym in by_symbol:
                    return by_symbol[sym]
                if sym in _FLAG_SYMBOLS:
                    return "\\Flagged"
                raise QueryError("symbolic_name", sym, f"source {home.row['label']} has no folder with this use")
            return item["name"] if isinstance(item, Mapping) else item

        current = {f for p in mine for f in p.folders}
        flagged = "flagged" in home.source.read_flags(home.locator)
        now = sorted(current) + (["\\Flagged"] if flagged else [])
        if target is None:
            adding, removing = [resolve(f) for f in add], [resolve(f) for f in remove]
        else:
            want = {resolve(item) for item in target}
            adding, removing = [f for f in want if f not in now], [f for f in now if f not in want]
        kept = (current - set(removing)) | {f for f in adding if f != "\\Flagged"}
        if not kept:
            raise QueryError(param, removing, "this would take the message out of its last folder; delete it instead")
        writer = self._begin([home.row])
        try:
            answer: dict[str, Any] = {"success": True}
            try:
                for folder in adding:
                    if folder == "\\Flagged":
                        home.source.set_flags(home.locator, {"flagged": True})
                    elif folder not in current:
                        home.source.copy(home.locator, folder)
                for folder in removing:
                    if folder == "\\Flagged":
                        for p in mine:
                            p.source.set_flags(p.locator, {"flagged": False})
                        continue
                    for p in mine:
                        if folder in p.folders:
                            p.source.delete(p.locator)
            except SourceError as exc:
                answer = _failure(exc)
            return self._follow(writer, [home.row], answer)
        finally:
            writer.close()
