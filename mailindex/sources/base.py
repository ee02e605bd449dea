"""The Source interface: list where messages are, and read their exact bytes.

A source never parses mail. It lists *containers* (a directory or an mbox
file whose listing is all-or-nothing) with a cheap change stamp, and the
*entries* inside a container with a stable key. The engine compares stamps
with what it stored last time, so a sync of an unchanged source costs a few
`stat` calls and reads no message content.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

FLAG_NAMES = ("seen", "answered", "flagged", "deleted", "draft")


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


@dataclass(frozen=True, slots=True)
class RawMessage:
    """Exact bytes of one message and what the parser may need besides them."""

    data: bytes
    envelope_date: int | None = None
    mtime: int | None = None
    folders: tuple[str, ...] = field(default=())


class Source(ABC):
    """A read-only view of mail on disk. Subclasses implement one format."""

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

    @abstractmethod
    def read_bytes(self, locator: Mapping[str, Any]) -> bytes:
        """The exact bytes of the message at `locator`; SourceError if gone."""

    def read_flags(self, locator: Mapping[str, Any]) -> frozenset[str]:
        """Flags read live from the source (names from FLAG_NAMES)."""
        return frozenset()
