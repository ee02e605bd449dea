"""Directories of one-message-per-file (and a single message file), read-only.

Covers the original Enron layout (``maildir/<user>/<folder>/<n>.``, no
cur/new), MH folders (numeric names; ``.mh_sequences`` and other dotfiles
skipped) and ``*.eml`` exports. Every directory is a container and a folder:
its path relative to the source root ("badeer-r/sent_items"), the root itself
being "INBOX". A file is a message when its first line looks like a header (``Name:
value``) or a ``From `` line, or when its name says mail (``*.eml``, MH and
Enron numbers): then even an empty or broken file is listed and recorded
with its parse error rather than silently dropped.

An entry's key is the file's relative path; its content stamp is
``size:mtime_ns`` because, unlike a Maildir, nothing promises these files
are never rewritten in place.

Live operations: a copy is a new ``<unique>.eml`` file (written beside, then
linked into place), a delete an unlink. Such files keep no flags, so setting
flags is refused and flags asked on a copy are not kept.
"""

from __future__ import annotations

import re

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mailindex.errors import SourceError
from mailindex.folders import symbolic_name
from mailindex.hookspecs import hookimpl
from mailindex.sources import _fs
from mailindex.sources.base import Container, Entry, Folder, Source
from mailindex.sources.maildir import MaildirSource
from mailindex.sources.mbox import MboxSource

ROOT = "."  # container name of the source's top directory


_MAIL_NAME = re.compile(r"(?i)^(\d+\.?|.*\.(eml|mime|rfc822|mbx|msg822))$")


def _is_message_file(path: Path, name: str) -> bool:
    """Mail by its head, or by a name that says mail (*.eml, MH and Enron numbers).

    A file named as mail is listed even when empty or broken, and an unreadable
    file is kept too: either is recorded with its error instead of silently
    dropped. A README or a photo in an export folder is not mail and is left out.
    """
    if _fs.is_ignored_file(name):
        return False
    if _MAIL_NAME.match(name):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(_fs.SNIFF_BYTES)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return False
    except OSError:
        return True
    return _fs.looks_like_message_head(head)


class EmlSource(Source):
    """A tree of one-message-per-file directories, or one message file."""

    type = "eml"

    @classmethod
    def looks_like(cls, location: Path) -> bool:
        """Not a Maildir nor mbox, and a message file at or (shallowly) under `location`."""
        location = Path(location)
        if location.is_file():
            return (not MboxSource.looks_like(location)
                    and _fs.looks_like_message_head(_fs.read_head_plain(location)))
        if not location.is_dir() or MaildirSource.looks_like(location) or MboxSource.looks_like(location):
            return False
        return any(_fs.looks_like_message_head(_fs.read_head_plain(p)) for p in _fs.sample_files(location))

    @property
    def root(self) -> Path:
        """The directory locator paths are relative to (a single file's parent)."""
        return self.location if self.location.is_dir() else self.location.parent

    def containers(self) -> Iterator[Container]:
        _fs.require_exists(self.location)
        if not self.location.is_dir():
            st = _fs.stat_or_none(self.location)
            if st is not None:
                yield _fs.container(self.location.name, st)
            return
        for d, _entries in _fs.walk_dirs(self.location):
            st = _fs.stat_or_none(d)
            if st is not None:  # vanished since the walk listed it: skipped
                yield _fs.container(_fs.rel_posix(d, self.location) or ROOT, st)

    def entries(self, container: str) -> Iterator[Entry]:
        where = str(self.location)
        if not self.location.is_dir():
            if container != self.location.name:
                raise SourceError(where, f"no container {container!r} in a single-file source")
            st = _fs.stat_or_none(self.location)
            if st is not None:
                yield self._entry(container, self.location.name, "INBOX", st)
            return
        rel_dir = "" if container == ROOT else container
        d = self.location if not rel_dir else _fs.resolve_locator_path(self.location, rel_dir, where)
        folder = rel_dir or "INBOX"
        for e in _fs.scandir_sorted(d):
            if _fs.is_ignored_file(e.name) or not _fs.is_file(e):
                continue
            st = _fs.stat_or_none(e)  # vanished since the listing: skipped
            if st is None or not _is_message_file(Path(e.path), e.name):
                continue
            yield self._entry(container, f"{rel_dir}/{e.name}" if rel_dir else e.name, folder, st)

    @staticmethod
    def _entry(container: str, rel: str, folder: str, st: Any) -> Entry:
        return Entry(
            container=container,
            key=rel,
            folders=(folder,),
            locator={"path": rel},
            content_stamp=f"{st.st_size}:{st.st_mtime_ns}",
            mtime=int(st.st_mtime),
        )

    def read_bytes(self, locator: Mapping[str, Any]) -> bytes:
        where = str(self.location)
        return _fs.read_file_bytes(_fs.resolve_locator_path(self.root, locator.get("path"), where), where)


    # -- live operations ----------------------------------------------------

    def folders(self) -> list[Folder]:
        if not self.location.is_dir():
            return [Folder("INBOX", "\\Inbox")]
        names = sorted({"INBOX" if c.name == ROOT else c.name for c in self.containers()})
        return [Folder(n, symbolic_name(n)) for n in names]

    def append(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        where = str(self.location)
        if not self.location.is_dir():
            raise self._unsupported("adding messages to a single-file source")
        rel = "" if folder.upper() == "INBOX" else folder.strip("/")
        d = self.location if not rel else _fs.resolve_locator_path(self.location, rel, where)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(where, f"cannot make folder {folder!r}: {exc.strerror or exc}") from exc
        unique = _fs.unique_name()
        _fs.deliver(d / f".{unique}.tmp", d / f"{unique}.eml", data, where)
        return {"path": f"{rel}/{unique}.eml" if rel else f"{unique}.eml"}

    def delete(self, locator: Mapping[str, Any]) -> None:
        where = str(self.location)
        _fs.remove_file(_fs.resolve_locator_path(self.root, locator.get("path"), where), where)


@hookimpl
def mailindex_source_types() -> list[str]:
    return [EmlSource.type]


@hookimpl(trylast=True)
def mailindex_open_source(location: str, source_type: str | None, options: Mapping[str, Any]) -> Source | None:
    return _fs.open_if(EmlSource, location, source_type, options)
