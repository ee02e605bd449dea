"""An IMAP account as a mailindex Backend: folders, messages by UID, and live operations.

Containers are the selectable folders; a folder's stamp is its STATUS
(UIDVALIDITY, UIDNEXT, MESSAGES and, where CONDSTORE is offered,
HIGHESTMODSEQ), so a re-sync with nothing changed costs one LIST and one
STATUS per folder. Without CONDSTORE a flag change moves no counter, so
folders are listed again on every sync (UID FETCH 1:* FLAGS).

A folder's listing is one ``UID FETCH 1:* (UID FLAGS)``; each message's
locator path spells folder, UIDVALIDITY, UID and flag letters (and Gmail's
X-GM-MSGID and X-GM-THRID), so the engine's listing fast path finds what is
new or re-flagged without reading a byte. New messages are then fetched
whole (BODY.PEEK[], never setting \\Seen) in batches: the exact bytes give
the same message_id a message has in a Maildir or an mbox, so a message
moved between an IMAP server and local mail keeps its id.

Gmail (X-GM-EXT-1): labels are folders (each label a location of the one
message), X-GM-MSGID / X-GM-THRID become gmail_message_id / gmail_thread_id,
and a delete moves the message to the Trash folder instead of expunging it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mailindex.errors import ConcurrentChange, SourceError, SourceNotFound
from mailindex.folders import DELIMITER, symbolic_name
from mailindex.killpoints import kill_point
from mailindex.sources.base import Container, Entry, Folder, Backend

from mailindex_imap.connection import Connection, Endpoint, fetch_all

_FLAG_OF = {"seen": b"\\Seen", "answered": b"\\Answered", "flagged": b"\\Flagged", "deleted": b"\\Deleted",
            "draft": b"\\Draft"}
_NAME_OF = {v.lower(): k for k, v in _FLAG_OF.items()}
_LETTER = {"seen": "S", "answered": "R", "flagged": "F", "deleted": "T", "draft": "D"}
_FLAG_OF_LETTER = {v: k for k, v in _LETTER.items()}
_SPECIAL_USE = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash", "\\Important")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
_COPYUID = re.compile(rb"\[COPYUID (\d+) [\d:,]+ (\d+)\]", re.IGNORECASE)
_COPYUID_DATA = re.compile(rb"(\d+) [\d:,]+ (\d+)$")  # as imaplib keeps an untagged [COPYUID ...]
FETCH_CHUNK = 500


def _flags(raw: tuple[bytes, ...] | list[bytes]) -> frozenset[str]:
    return frozenset(_NAME_OF[f.lower()] for f in raw if f.lower() in _NAME_OF)


def _letters(flags: frozenset[str]) -> str:
    return "".join(sorted(_LETTER[f] for f in flags))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class ImapSource(Backend):
    """An IMAP mailbox at imaps://user@host (or imap:// with STARTTLS)."""

    type = "imap"
    batch_reads = True

    def __init__(self, location: str, **options: Any) -> None:  # noqa: super().__init__ would make a Path of a URL
        self.location = location  # type: ignore[assignment]
        self.options = options
        self.conn = Connection(Endpoint(location, options))
        self._names: dict[str, str] = {}  # our folder name -> the server's
        self._attrs: dict[str, set[str]] = {}
        self._caps: set[str] | None = None
        self._sep = DELIMITER

    @classmethod
    def looks_like(cls, location: Path | str) -> bool:
        return str(location).startswith(("imap://", "imaps://"))

    def close(self) -> None:
        self.conn.close()

    # -- the server ----------------------------------------------------------------
    def has(self, capability: str) -> bool:
        if self._caps is None:
            caps = self.conn.call("CAPABILITY", lambda c: c.capabilities())
            self._caps = {_text(c).upper() for c in caps}
        return capability.upper() in self._caps

    @property
    def gmail(self) -> bool:
        return self.has("X-GM-EXT-1")

    def _list(self) -> list[str]:
        """Our names of every folder (LIST "" "*"), remembering the server's names and attributes."""
        rows = self.conn.call('LIST "" "*"', lambda c: c.list_folders())
        self._names, self._attrs = {}, {}
        for attrs, delim, name in rows:
            sep = _text(delim) if delim else DELIMITER
            self._sep = sep
            ours = name.replace(sep, DELIMITER) if sep != DELIMITER else name
            self._names[ours] = name
            self._attrs[ours] = {_text(a) for a in attrs}
        return list(self._names)

    def _selectable(self) -> list[str]:
        return [f for f in self._list() if not {"\\Noselect", "\\NonExistent"} & self._attrs[f]]

    def _server(self, folder: str) -> str:
        if folder not in self._names:
            self._list()
        if folder.upper() == "INBOX":
            return "INBOX"
        return self._names.get(folder, folder)

    def _special(self, folder: str) -> str | None:
        found = [a for a in _SPECIAL_USE if a in self._attrs.get(folder, ())]
        return found[0] if found else symbolic_name(folder)

    def folders(self) -> list[Folder]:
        return [Folder(f, self._special(f)) for f in self._selectable()]

    def _select(self, folder: str, uidvalidity: Any, readonly: bool) -> None:
        info = self.conn.select(self._server(folder), readonly)
        if info.get(b"UIDVALIDITY") not in (None, uidvalidity):
            self.conn.selected = None
            raise ConcurrentChange(self.location, f"folder {folder!r} was recreated (UIDVALIDITY changed): sync again")

    # -- listing --------------------------------------------------------------------
    def containers(self) -> Iterator[Container]:
        if self.conn.selected is not None:  # a selected folder's STATUS can lag other sessions' changes
            self.conn.call("NOOP", lambda c: c.noop())
        condstore = self.has("CONDSTORE")
        what = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"] + ([b"HIGHESTMODSEQ"] if condstore else [])
        for folder in self._selectable():
            server = self._names[folder]
            st = self.conn.call(f"STATUS {server}", lambda c: c.folder_status(server, what))
            yield Container(folder, ":".join(str(st.get(k, "")) for k in what), stable=condstore)

    def listing(self, container: str) -> set[str]:
        info = self.conn.select(self._server(container), readonly=True, fresh=True)
        validity = info.get(b"UIDVALIDITY")
        if not info.get(b"EXISTS"):
            return set()
        items = [b"UID", b"FLAGS"] + ([b"X-GM-MSGID", b"X-GM-THRID"] if self.gmail else [])
        rows = self.conn.call(f"UID FETCH 1:* ({' '.join(_text(i) for i in items)}) in {container}",
                              lambda c: fetch_all(c, items))
        return {f"{container}/{validity}/{uid}/{_letters(_flags(r.get(b'FLAGS', ())))}/"
                f"{r.get(b'X-GM-MSGID', '')}/{r.get(b'X-GM-THRID', '')}" for uid, r in rows.items()}

    def entry(self, container: str, path: str) -> Entry | None:
        folder, validity, uid, letters, gm_msgid, gm_thrid = path.rsplit("/", 5)
        return Entry(
            container=container, key=f"{validity}/{uid}", folders=(folder,),
            locator={"path": path, "folder": folder, "uidvalidity": int(validity), "uid": int(uid)},
            flags=frozenset(_FLAG_OF_LETTER[c] for c in letters if c in _FLAG_OF_LETTER),
            gmail_ids=(gm_msgid, gm_thrid) if gm_msgid else None,
        )

    def entries(self, container: str) -> Iterator[Entry]:
        for path in sorted(self.listing(container)):
            entry = self.entry(container, path)
            if entry is not None:
                yield entry

    # -- reading ----------------------------------------------------------------------
    def read_many(self, locators: list[Mapping[str, Any]]) -> list[bytes | SourceError]:
        """Bodies fetched folder by folder, FETCH_CHUNK UIDs per round trip, with BODY.PEEK (no \\Seen)."""
        out: list[bytes | SourceError] = [SourceNotFound(self.location, "not fetched")] * len(locators)
        by_folder: dict[tuple[str, Any], list[int]] = {}
        for i, loc in enumerate(locators):
            by_folder.setdefault((str(loc.get("folder")), loc.get("uidvalidity")), []).append(i)
        for (folder, validity), idx in by_folder.items():
            try:
                self._select(folder, validity, readonly=True)
                for start in range(0, len(idx), FETCH_CHUNK):
                    chunk = idx[start:start + FETCH_CHUNK]
                    uids = [int(locators[i]["uid"]) for i in chunk]
                    got = self.conn.call(f"UID FETCH ({len(uids)} uids) BODY.PEEK[] in {folder}",
                                         lambda c: c.fetch(uids, [b"BODY.PEEK[]"]))
                    for i, uid in zip(chunk, uids):
                        body = got.get(uid, {}).get(b"BODY[]")
                        out[i] = body if isinstance(body, bytes) else SourceNotFound(
                            self.location, f"message {uid} is gone from {folder!r}")
            except SourceError as exc:
                for i in idx:
                    if not isinstance(out[i], bytes):
                        out[i] = exc
        return out

    def read_bytes(self, locator: Mapping[str, Any]) -> bytes:
        got = self.read_many([locator])[0]
        if isinstance(got, SourceError):
            raise got
        return got

    def read_flags(self, locator: Mapping[str, Any]) -> frozenset[str]:
        self._select(str(locator["folder"]), locator.get("uidvalidity"), readonly=True)
        uid = int(locator["uid"])
        got = self.conn.call(f"UID FETCH {uid} FLAGS", lambda c: c.fetch([uid], [b"FLAGS"]))
        if uid not in got:
            raise SourceNotFound(self.location, f"message {uid} is gone from {locator['folder']!r}")
        return _flags(got[uid].get(b"FLAGS", ()))

    # -- live operations ------------------------------------------------------------------
    def _locator(self, folder: str, validity: int, uid: int, flags: frozenset[str]) -> dict[str, Any]:
        return {"path": f"{folder}/{validity}/{uid}/{_letters(flags)}//", "folder": folder,
                "uidvalidity": validity, "uid": uid}

    def set_flags(self, locator: Mapping[str, Any], changes: Mapping[str, bool]) -> Mapping[str, Any]:
        folder, uid = str(locator["folder"]), int(locator["uid"])
        self._select(folder, locator.get("uidvalidity"), readonly=False)
        self.read_flags(locator)  # SourceNotFound if it is gone
        on = [_FLAG_OF[f] for f, v in changes.items() if v]
        off = [_FLAG_OF[f] for f, v in changes.items() if not v]
        if on:
            self.conn.call(f"UID STORE {uid} +FLAGS", lambda c: c.add_flags([uid], on, silent=True))
            kill_point("imap.after-add-flags")
        if off:
            self.conn.call(f"UID STORE {uid} -FLAGS", lambda c: c.remove_flags([uid], off, silent=True))
        return self._locator(folder, int(locator["uidvalidity"]), uid, self.read_flags(locator))

    def _create(self, folder: str) -> str:
        """The server name of `folder`, created (CREATE) if the server does not have it."""
        self._list()
        if folder in self._names or folder.upper() == "INBOX":
            return self._server(folder)
        server = folder.replace(DELIMITER, self._sep)
        self.conn.call(f"CREATE {server}", lambda c: c.create_folder(server))
        self._list()
        return self._server(folder)

    def append(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        server = self._create(folder)
        wanted = [_FLAG_OF[f] for f in sorted(flags) if f in _FLAG_OF]
        answer = self.conn.call(f"APPEND {server} ({len(data)} bytes)", lambda c: c.append(server, data, wanted))
        kill_point("imap.after-append")
        return self._new_locator(folder, server, answer, flags)

    def copy(self, locator: Mapping[str, Any], folder: str,
             flags: frozenset[str] | None = None) -> Mapping[str, Any]:
        src, uid = str(locator["folder"]), int(locator["uid"])
        dst = self._create(folder)
        self._select(src, locator.get("uidvalidity"), readonly=False)
        self.read_flags(locator)
        answer = self.conn.call(f"UID COPY {uid} {dst}", lambda c: c.copy([uid], dst))
        kill_point("imap.after-copy")
        new = self._new_locator(folder, dst, answer, frozenset())
        if flags is not None:
            self._select(folder, new["uidvalidity"], readonly=False)
            nuid = new["uid"]
            self.conn.call(f"UID STORE {nuid} FLAGS", lambda c: c.set_flags([nuid], [_FLAG_OF[f] for f in flags]))
        return self._locator(folder, new["uidvalidity"], new["uid"], self.read_flags(new))

    def _new_locator(self, folder: str, server: str, answer: Any, flags: frozenset[str]) -> dict[str, Any]:
        """The new message's locator from [APPENDUID v u] / [COPYUID v s d]; without UIDPLUS, UIDNEXT - 1."""
        untagged = self.conn.client._imap.untagged_responses.pop("COPYUID", [])
        # imaplib keeps [COPYUID] among untagged responses (popped here, so only this command's is left);
        # APPENDUID is in the tagged answer. The last one found is this command's.
        found = [m for m in [_COPYUID_DATA.match(t) for t in untagged if isinstance(t, bytes)]
                 + ([_COPYUID.search(answer), _APPENDUID.search(answer)] if isinstance(answer, bytes) else []) if m]
        if found:
            return self._locator(folder, int(found[-1][1]), int(found[-1][2]), flags)
        st = self.conn.call(f"STATUS {server} (UIDNEXT UIDVALIDITY)",
                            lambda c: c.folder_status(server, [b"UIDNEXT", b"UIDVALIDITY"]))
        return self._locator(folder, int(st[b"UIDVALIDITY"]), int(st[b"UIDNEXT"]) - 1, flags)

    def delete(self, locator: Mapping[str, Any]) -> None:
        folder, uid = str(locator["folder"]), int(locator["uid"])
        if self.gmail:
            trash = next((f for f in self._selectable() if "\\Trash" in self._attrs[f]), None)
            if trash is not None and trash != folder:
                self.copy(locator, trash)  # on Gmail, into the Trash is out of every label: done
                return
        self._select(folder, locator.get("uidvalidity"), readonly=False)
        self.read_flags(locator)
        self.conn.call(f"UID STORE {uid} +FLAGS (\\Deleted)", lambda c: c.add_flags([uid], [b"\\Deleted"], silent=True))
        kill_point("imap.after-store-deleted")
        if self.has("UIDPLUS"):
            self.conn.call(f"UID EXPUNGE {uid}", lambda c: c.uid_expunge([uid]))
        else:  # as the seed says: plain EXPUNGE removes every \Deleted message of the folder
            self.conn.call("EXPUNGE", lambda c: c.expunge())
        kill_point("imap.after-expunge")
