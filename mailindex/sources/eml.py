"""Directories of one-message-per-file (and a single message file), read-only.

Covers the original Enron layout (``maildir/<user>/<folder>/<n>.``, no
cur/new), MH folders (numeric names; ``.mh_sequences`` and other dotfiles
skipped) and ``*.eml`` exports. Every directory is a container and a folder:
its path relative to the source root ("badeer-r/sent_items"), the root itself
being "INBOX". A file is a message when it opens with a header block naming
a mail field (From, Date, Subject, Message-ID, Received, ...), possibly after
a ``From `` line. A file whose name says mail (``*.eml``, MH and Enron
numbers) but whose bytes are not is quarantined with that reason when read;
every other file is counted by `skipped` under its reason (see `_fs.skip_reason`).

An entry's key is the file's relative path; its content stamp is
``size:mtime_ns`` because, unlike a Maildir, nothing promises these files
are never rewritten in place.

A directory of the tree that is a Maildir (it has ``cur/`` or ``new/``) is
read as Maildirs are, by `MaildirSource`: its ``cur/`` and ``new/`` are
containers whose entries are keyed by unique name and carry the flags of
their names, ``tmp/`` is never read, and its Maildir++ ``.Sub`` dot-dirs are
folders "dir/Sub". Loose files beside them stay messages of this kind.

Live operations: a copy is a new ``<unique>.eml`` file (written beside, then
linked into place), or a Maildir delivery with its flags when the folder is
a Maildir of the tree; a delete is an unlink. Loose files keep no flags, so
setting flags is refused (for Maildir entries too: the live layer decides
per source type whether flags can be set).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mailindex.errors import SourceError
from mailindex.folders import symbolic_name
from mailindex.hookspecs import hookimpl
from mailindex.sources import _fs, maildir
from mailindex.sources.base import Container, Entry, Folder, Backend
from mailindex.sources.maildir import MaildirSource
from mailindex.sources.mbox import MboxSource

ROOT = "."  # container name of the source's top directory


def _folder(container: str) -> str:
    """The folder of a container: a Maildir's, else the directory's path ("INBOX" for the root)."""
    if maildir.is_container(container):
        return maildir.folder_name(container.rpartition("/")[0])
    return "INBOX" if container == ROOT else container


class EmlSource(_fs.TallySource):
    """A tree of one-message-per-file directories, or one message file."""

    type = "eml"

    def __init__(self, location: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(location, **options)
        self._maildir = MaildirSource(location, **options)  # reads the Maildirs of the tree

    @classmethod
    def looks_like(cls, location: Path) -> bool:
        """Not a Maildir nor mbox, and a message file at `location` or among a sample under it."""
        location = Path(location)
        if location.is_file():
            return not MboxSource.looks_like(location) and _fs.looks_like_message_file(location)
        if not location.is_dir() or MaildirSource.looks_like(location) or MboxSource.looks_like(location):
            return False
        return any(_fs.looks_like_message_file(p) for p in _fs.sample_files(location))

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
        for d, entries in _fs.walk_dirs(self.location, prune=maildir._maildir_subdirs):
            st = _fs.stat_or_none(d)
            if st is not None:  # vanished since the walk listed it: skipped
                yield _fs.container(_fs.rel_posix(d, self.location) or ROOT, st)
            for rel, md in maildir.maildirs_at(self.location, d, entries):
                yield from maildir.containers_of(rel, md)

    def entries(self, container: str) -> Iterator[Entry]:
        if not self.location.is_dir():
            return self._file_entries(container)
        if maildir.is_container(container):
            return self._maildir.entries(container)
        return self._dir_entries(container)

    def _file_entries(self, container: str) -> Iterator[Entry]:
        """The one entry of a single-file source."""
        if container != self.location.name:
            raise SourceError(str(self.location), f"no container {container!r} in a single-file source")
        st = _fs.stat_or_none(self.location)
        if st is not None:
            yield self._entry(container, self.location.name, "INBOX", st)

    def _dir_entries(self, container: str) -> Iterator[Entry]:
        """The message files of one directory, counting the other files by reason."""
        rel_dir = "" if container == ROOT else container
        d = self.location if not rel_dir else _fs.resolve_locator_path(self.location, rel_dir, str(self.location))
        folder = _folder(container)
        skips = self._tally(container)
        for e in _fs.scandir_sorted(d):
            if _fs.is_dir(e):
                continue  # a container of its own, or hidden
            try:
                reason = _fs.skip_reason(e)
            except FileNotFoundError:
                continue  # vanished since the listing
            if reason is not None:
                skips[reason] += 1
                continue
            st = _fs.stat_or_none(e)  # cached by `e`: no second syscall
            if st is not None:
                yield self._entry(container, f"{rel_dir}/{e.name}" if rel_dir else e.name, folder, st)

    def listing(self, container: str) -> set[str] | None:
        """Maildir's fast path for a Maildir container; None (list it all) for a directory of files."""
        return self._maildir.listing(container) if maildir.is_container(container) else None

    def entry(self, container: str, path: str) -> Entry | None:
        """Maildir's: only Maildir containers have a `listing`."""
        return self._maildir.entry(container, path)

    def skipped(self, container: str) -> Mapping[str, int]:
        return self._maildir.skipped(container) if maildir.is_container(container) else super().skipped(container)

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

    @staticmethod
    def _in_maildir(locator: Mapping[str, Any]) -> bool:
        """True for the locator of a Maildir entry: its file is in a Maildir container, as `entries` decides."""
        return maildir.is_container(str(locator.get("path", "")).rpartition("/")[0])

    def read_bytes(self, locator: Mapping[str, Any]) -> bytes:
        if self._in_maildir(locator):
            return self._maildir.read_bytes(locator)
        where = str(self.location)
        return _fs.read_file_bytes(_fs.resolve_locator_path(self.root, locator.get("path"), where), where)

    def read_flags(self, locator: Mapping[str, Any]) -> frozenset[str]:
        return self._maildir.read_flags(locator) if self._in_maildir(locator) else frozenset()


    # -- live operations ----------------------------------------------------

    def folders(self) -> list[Folder]:
        if not self.location.is_dir():
            return [Folder("INBOX", "\\Inbox")]
        names = sorted({_folder(c.name) for c in self.containers()})
        return [Folder(n, symbolic_name(n)) for n in names]

    def append(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        """A Maildir delivery (flags kept) if `folder` is a Maildir of the tree, else a new .eml file."""
        where = str(self.location)
        if not self.location.is_dir():
            raise self._unsupported("adding messages to a single-file source")
        found = self._maildir.find_folder(folder)
        if found is not None:
            return self._maildir.deliver(*found, data, flags)
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
        if self._in_maildir(locator):
            self._maildir.delete(locator)
            return
        where = str(self.location)
        _fs.remove_file(_fs.resolve_locator_path(self.root, locator.get("path"), where), where)


@hookimpl
def mailindex_source_types() -> list[str]:
    return [EmlSource.type]


@hookimpl(trylast=True)
def mailindex_open_source(location: str, source_type: str | None, options: Mapping[str, Any]) -> Backend | None:
    return _fs.open_if(EmlSource, location, source_type, options)
