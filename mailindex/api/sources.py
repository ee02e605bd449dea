"""The sources of an account: where its mail is, how it is synced, and how that went.

A source is a location a backend reads (a Maildir, an mbox, an .eml tree,
or whatever a plugin adds) under a label unique within its account; "0"
names the account's first source. Every folder is synced by default, trash,
drafts and junk included (a forensic user expects every message found);
`sync_all_folders=0` leaves those out, as Context.IO's connect tokens did and
ours still do. Flags are not kept in the index (`sync_flags`), and
small inline images such as signature logos are left out of `files`
(`raw_file_list`).
"""

from __future__ import annotations

import builtins
import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from mailindex.engine import Engine
from mailindex.errors import QueryError, SourceFormatError, SourceNotFound
from mailindex.locations import canonical, resource_url, url_password
from mailindex.query.filters import flag_param

SOURCE_STATUSES = ("OK", "INVALID_CREDENTIALS", "CONNECTION_IMPOSSIBLE", "NO_ACCESS_TO_ALL_MAIL",
                   "TEMP_DISABLED", "DISABLED")
SETTABLE_STATUSES = ("OK", "TEMP_DISABLED", "DISABLED")  # the others are found by syncing
SYNC_OPTIONS = ("sync_all_folders", "sync_flags", "raw_file_list")
RESCAN_OPTIONS = ("sync_all_folders", "sync_flags")  # they change what a sync keeps
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Sources:
    """The sources resource of one account."""

    def __init__(self, engine: Engine, account_id: str) -> None:
        self._engine, self._account_id = engine, account_id

    def add(self, location: str | os.PathLike[str], *, label: str | None = None, type: str | None = None,
            sync_all_folders: bool | int = 1, sync_flags: bool | int = 0, raw_file_list: bool | int = 0,
            **options: Any) -> dict[str, Any]:
        """Register mail at `location` (its type detected unless given) under `label` (derived from the
        path when None). Checks everything first and creates nothing on bad input; does not sync.

        A location that holds files but no message (a directory of anything else) is SourceFormatError;
        an empty Maildir or directory is accepted, as a place to copy mail to."""
        self._engine.check_writable()
        self._engine.account_row(self._account_id)
        if not isinstance(location, (str, os.PathLike)) or not str(location).strip():
            raise QueryError("location", location, "must be a path")
        flags = {"sync_all_folders": flag_param("sync_all_folders", sync_all_folders),
                 "sync_flags": flag_param("sync_flags", sync_flags),
                 "raw_file_list": flag_param("raw_file_list", raw_file_list)}
        taken = {r["label"] for r in self.rows()}
        if label is None:
            label = _free_label(Path(location).expanduser().name, taken)
        elif not isinstance(label, str) or not _LABEL.match(label) or label == "0":
            raise QueryError("label", label, "must be 1-64 letters, digits, '.', '_' or '-', starting with a "
                                             "letter or digit (and not \"0\", which names the first source)")
        elif label in taken:
            raise QueryError("label", label, "this account already has a source with this label")
        options = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in options.items()}
        for name, value in options.items():  # stored as JSON, and handed to the backend as given
            if value is not None and not isinstance(value, (str, int, float)):
                raise QueryError(name, value, "a backend option must be a string, a number or a boolean")
        password = options.pop("password", None) or url_password(location)
        path = canonical(location)
        if password is not None:  # held in memory for this MailIndex, never written to the index
            self._engine.passwords[path] = password
        src = self._engine.open_source(path, type, options)
        if not src.holds_mail():
            raise SourceFormatError(path, "holds no mail: none of its files is an RFC 822 message (a header "
                                          "block naming From, Date, Subject, Message-ID or Received)")
        with self._engine.store.transaction() as db:
            db.execute("INSERT INTO sources (account, label, type, location, options, created, sync_all_folders, "
                       "sync_flags, raw_file_list) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (self._account_id, label, src.type, path, json.dumps(options), int(self._engine.clock()),
                        flags["sync_all_folders"], flags["sync_flags"], flags["raw_file_list"]))
        self._engine.keep_open(self.row(label), src)
        return self.get(label)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every source of the account, oldest first, with its status, options and sync state."""
        return [source_dict(r) for r in self.rows()]

    def get(self, label: str) -> dict[str, Any]:
        """One source by label ("0": the first); SourceNotFound if the account has none by that label."""
        return source_dict(self.row(label))

    def update(self, label: str, *, status: str | None = None, sync_all_folders: bool | int | None = None,
               sync_flags: bool | int | None = None, raw_file_list: bool | int | None = None) -> dict[str, Any]:
        """Set `status` (OK, TEMP_DISABLED or DISABLED) or options. Changing `sync_all_folders` or
        `sync_flags` makes the next sync compare every message with the source again."""
        self._engine.check_writable()
        row = self.row(label)
        changes: dict[str, Any] = {}
        if status is not None:
            if not isinstance(status, str) or status.upper() not in SETTABLE_STATUSES:
                raise QueryError("status", status, f"must be one of {', '.join(SETTABLE_STATUSES)} (the others "
                                                   "are set by syncing)")
            changes["status"] = status.upper()
        for name, value in (("sync_all_folders", sync_all_folders), ("sync_flags", sync_flags),
                            ("raw_file_list", raw_file_list)):
            if value is not None:
                changes[name] = flag_param(name, value)
        if any(name in changes and changes[name] != row[name] for name in RESCAN_OPTIONS):
            changes["full_rescan"] = 1
        if changes:
            self._engine.store.db.execute(f"UPDATE sources SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                                      [*changes.values(), row["id"]])
        return self.get(row["label"])

    def delete(self, label: str) -> dict[str, bool]:
        """Remove the source and take its messages out of the index (mail on disk is never touched)."""
        self._engine.check_writable()
        self._engine.remove_source(self.row(label))
        return {"success": True}

    def terms(self) -> dict[str, str]:
        """label -> the source's indexed term, for the `source` filter ("0" included)."""
        rows = self.rows()
        out = {r["label"]: str(r["id"]) for r in rows}
        if rows:
            out["0"] = str(rows[0]["id"])
        return out

    def rows(self) -> builtins.list[sqlite3.Row]:
        return self._engine.store.source_rows(self._account_id)

    def row(self, label: str) -> sqlite3.Row:
        if not isinstance(label, str):
            raise QueryError("label", label, "must be a string")
        rows = self.rows()
        if label == "0" and rows:
            return rows[0]
        for row in rows:
            if row["label"] == label:
                return row
        raise SourceNotFound(label, f"account {self._account_id} has no source with this label")


def source_dict(r: sqlite3.Row) -> dict[str, Any]:
    """The source object: Context.IO's fields, plus the location and backend options of local mail."""
    return {"label": r["label"], "type": r["type"], "location": r["location"], "status": r["status"],
            "sync_all_folders": r["sync_all_folders"], "sync_flags": r["sync_flags"],
            "raw_file_list": r["raw_file_list"], "options": json.loads(r["options"]), "created": r["created"],
            "resource_url": resource_url(r["location"]),
            "sync": {"last_sync_start": r["last_sync_start"], "last_sync_stop": r["last_sync_stop"],
                     "last_expunge": r["last_expunge"],
                     "initial_import_finished": bool(r["initial_import_finished"])}}


def _free_label(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:56] or "source"
    label, n = base, 2
    while label in taken or label == "0":
        label, n = f"{base}-{n}", n + 1
    return label
