"""The backend interface (`Backend`): list where messages are, read their exact bytes, and (asked) change them.

A source never parses mail. It lists *containers* (a directory or an mbox
file whose listing is all-or-nothing) with a cheap change stamp, and the
*entries* inside a container with a stable key. The engine compares stamps
with what it stored last time, so a sync of an unchanged source costs a few
`stat` calls and reads no message content.

Live operations (set flags, copy, move, delete, append) are the only writes,
made only when a caller asks. Each one leaves the message whole: an append is
durable before it returns, and a move is copy, verify, delete, so a crash at
any point leaves the message in its source or its destination, never neither.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mailindex.errors import ConcurrentChange, SourceError, UnsupportedOperation
from mailindex.folders import symbolic_name
from mailindex.killpoints import kill_point
from mailindex.identity import identity_bytes, sha256_hex


# Why a listing left a file out (`Backend.skipped`): short and stable, the sync stores them.
SKIP_NOT_MAIL = "not RFC 822"  # no header block naming a mail field (sources._fs.looks_like_message)
SKIP_OUTLOOK = "Outlook .msg"  # an OLE2 compound file, or named *.msg
SKIP_EMPTY = "empty"  # zero bytes, and not named as mail
SKIP_UNREADABLE = "unreadable"  # reading it raised an OSError
SKIP_METADATA = "store metadata"  # dotfiles and the known index/state files of mail programs
SKIP_NOT_A_FILE = "not a regular file"  # a socket, a dangling symlink, a directory where only files belong


@dataclass(frozen=True, slots=True)
class Container:
    """A directory or file listed as a whole.

    `stamp` changes whenever anything inside may have changed (mtime and
    size); `stable` is False when the stamp cannot be trusted yet (modified
    within the filesystem clock's granularity), which forces a listing next time.
    """

    name: str
    stamp: str
    stable: bool = True


@dataclass(frozen=True, slots=True)
class Entry:
    """One message location found by a scan, before any parsing.

    `key` is stable for the life of the message in this container (the Maildir
    unique name survives a flag rename; an mbox message is keyed by content).
    `content_stamp` changes only when the bytes may have changed.
    `locator` is JSON-able and enough for `read_bytes` to find the bytes again.
    """

    container: str
    key: str
    folders: tuple[str, ...]
    locator: Mapping[str, Any]
    content_stamp: str = ""
    flags: frozenset[str] = frozenset()
    envelope_date: int | None = None  # mbox From_ line, a date fallback
    mtime: int | None = None  # file mtime, the last date fallback
    data: bytes | None = None  # bytes already read by the scan, if any
    gmail_ids: tuple[str, str] | None = None  # (X-GM-MSGID, X-GM-THRID) a Gmail server gave beside the bytes

    def __reduce__(self) -> tuple[type[Entry], tuple[Any, ...]]:
        # Entries cross to parser processes by the thousand: a tuple pickles ~5x faster than the
        # generic frozen-dataclass state.
        return Entry, (self.container, self.key, self.folders, self.locator, self.content_stamp, self.flags,
                       self.envelope_date, self.mtime, self.data, self.gmail_ids)


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder of a source, with its RFC 6154 special use ("\\Sent"), if any."""

    name: str
    symbolic_name: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, **({"symbolic_name": self.symbolic_name} if self.symbolic_name else {})}


@dataclass(frozen=True, slots=True)
class RawMessage:
    """Exact bytes of one message and what the parser may need besides them."""

    data: bytes
    envelope_date: int | None = None
    mtime: int | None = None
    folders: tuple[str, ...] = field(default=())
    gmail_ids: tuple[str, str] | None = None


class Backend(ABC):
    """A read-only view of one source's mail (a path, a server). Subclasses implement one format; plugins add
    theirs through the `mailindex_open_source` hook."""

    type: ClassVar[str]

    def __init__(self, location: str | os.PathLike[str], **options: Any) -> None:
        self.location = Path(location)
        self.options = options

    @classmethod
    @abstractmethod
    def looks_like(cls, location: Path) -> bool:
        """True if `location` is mail in this format (cheap: names and a few bytes)."""

    @abstractmethod
    def containers(self) -> Iterator[Container]:
        """Every container of the source, with its change stamp."""

    @abstractmethod
    def entries(self, container: str) -> Iterator[Entry]:
        """Every message location in one container."""

    def listing(self, container: str) -> set[str] | None:
        """Optional fast path: the locator paths of a container, from its listing alone.

        Return it only if an entry whose locator path is unchanged is unchanged
        in every other way too (content, flags, folders): a Maildir file name
        carries its flags and its bytes never change. The engine then builds
        entries only for new paths, with `entry`. None (the default) means:
        call `entries`.
        """
        return None

    def entry(self, container: str, path: str) -> Entry | None:
        """The entry at one locator path given by `listing`; None if it is not a message (any more)."""
        raise NotImplementedError(f"{type(self).__name__} has no listing() fast path")

    def skipped(self, container: str) -> Mapping[str, int]:
        """Files of `container` that the last `entries(container)` left out, counted by reason."""
        return {}

    @abstractmethod
    def read_bytes(self, locator: Mapping[str, Any]) -> bytes:
        """The exact bytes of the message at `locator`; SourceError if gone."""

    def read_flags(self, locator: Mapping[str, Any]) -> frozenset[str]:
        """Flags read live from the source (names from folders.FLAG_NAMES)."""
        return frozenset()

    def read_many(self, locators: list[Mapping[str, Any]]) -> list[bytes | SourceError]:
        """The bytes of several messages at once (a remote backend fetches them in one round trip).

        Each item is the bytes, or the SourceError reading that one raised.
        """
        out: list[bytes | SourceError] = []
        for locator in locators:
            try:
                out.append(self.read_bytes(locator))
            except SourceError as exc:
                out.append(exc)
        return out

    batch_reads: ClassVar[bool] = False  # True: the sync reads through read_many, in the main process

    def is_message(self, locator: Mapping[str, Any], data: bytes) -> bool:
        """Whether the bytes read at `locator` are mail at all; the sync quarantines, unindexed, an
        entry that is not. Yes by default: a store that frames its messages (an IMAP server) says so."""
        return True

    def holds_mail(self) -> bool:
        """False when the location holds something but no message: adding it is refused. Yes by
        default (a server's mailbox); file backends look."""
        return True

    # -- live operations (only when a caller asks) ---------------------------------
    def folders(self) -> list[Folder]:
        """Every folder of the source with its special use; by default, those its containers hold."""
        names: dict[str, None] = {}
        for c in self.containers():
            for e in self.entries(c.name):
                names.update(dict.fromkeys(e.folders))
        return [Folder(n, symbolic_name(n)) for n in sorted(names)]

    def set_flags(self, locator: Mapping[str, Any], changes: Mapping[str, bool]) -> Mapping[str, Any]:
        """Set (True) or clear (False) flags named in folders.FLAG_NAMES; return the locator after (it may change)."""
        raise self._unsupported("setting flags")

    def append(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        """Store `data` durably in `folder` (created if missing) with `flags`; return its locator."""
        raise self._unsupported("adding messages")

    def delete(self, locator: Mapping[str, Any]) -> None:
        """Remove the message at `locator` for good (SourceNotFound if it is gone already)."""
        raise self._unsupported("deleting messages")

    def copy(self, locator: Mapping[str, Any], folder: str,
             flags: frozenset[str] | None = None) -> Mapping[str, Any]:
        """Copy a message into `folder` of this source (flags kept unless given); the copy's locator."""
        data = self.read_bytes(locator)
        return self.append(folder, data, self.read_flags(locator) if flags is None else flags)

    def close(self) -> None:
        """Release connections and handles (a no-op for files)."""

    def _unsupported(self, what: str) -> UnsupportedOperation:
        return UnsupportedOperation(str(self.location), f"{self.type} sources do not support {what}")


def transfer(src: Backend, locator: Mapping[str, Any], sha256: str, dst: Backend, folder: str,
             flags: frozenset[str] | None = None, move: bool = False) -> Mapping[str, Any]:
    """Copy a message into `folder` of `dst` (src's own copy when they are one source), verify that
    the copy reads back as the message recorded with SHA-256 `sha256`, and only then, when moving,
    delete the original.

    Bytes at the locator that no longer hash to `sha256` (the file was rewritten behind the index)
    are ConcurrentChange and nothing is written. A failure or crash at any later step leaves the
    message at its source, its destination, or both.
    """
    original = src.read_bytes(locator)
    if sha256_hex(original) != sha256:
        raise ConcurrentChange(str(src.location), "the message's bytes changed since it was indexed: sync again; "
                               "nothing was copied")
    if dst is src and type(src).copy is not Backend.copy:  # the store copies by itself (IMAP UID COPY)
        new = src.copy(locator, folder, flags)
    else:  # the bytes just checked, not a second read that could differ
        new = dst.append(folder, original, src.read_flags(locator) if flags is None else flags)
    kill_point("transfer.after-copy")
    copy = dst.read_bytes(new)
    # A store may rewrite what it keeps beside the message (mbox Status, From-quoting): same identity, same message.
    if sha256_hex(copy) != sha256 and identity_bytes(copy).rstrip(b"\n") != identity_bytes(original).rstrip(b"\n"):
        raise SourceError(str(dst.location), "the copy does not read back as the original; the original is kept")
    kill_point("transfer.after-verify")
    if move:
        src.delete(locator)
        kill_point("transfer.after-delete")
    return new
