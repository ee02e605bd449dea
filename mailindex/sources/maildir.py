"""Maildir and Maildir++ (and trees of nested Maildirs).

Layout understood:

* a Maildir: ``cur/`` and ``new/`` (``tmp/`` is never read); its own messages
  are folder "INBOX" when it is the source root;
* Maildir++ subfolders: ``.Sent`` -> "Sent", ``.Work.Project`` -> "Work/Project";
* nested Maildirs: ``root/lists/python/cur`` -> folder "lists/python".

Containers are the ``cur/`` and ``new/`` directories (named by their path
relative to the source root, e.g. "cur", ".Sent/new", "lists/python/cur").
An entry's key is the Maildir unique name, the file name before the info
part (``:2,FS``), so a flag change (a rename by the mail program) keeps it.

Live operations write the way mail programs do: a new message goes to
``tmp/``, is fsynced and linked into ``cur/`` with its flags; a flag change
is one rename; a delete is one unlink. New folders are Maildir++ dot-dirs
(or plain subdirectories in a tree of Maildirs).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mailindex.errors import SourceError, SourceNotFound
from mailindex.folders import DELIMITER, symbolic_name
from mailindex.hookspecs import hookimpl
from mailindex.killpoints import kill_point
from mailindex.sources import _fs
from mailindex.sources.base import SKIP_METADATA, SKIP_NOT_A_FILE, Container, Entry, Folder, Backend

SUBDIRS = ("cur", "new")
# Info part: ":2,<flags>" (":" may be "!" or ";" on filesystems that forbid ":").
_INFO = re.compile(r"^(?P<unique>.+?)[:!;][12],(?P<flags>[^:!;]*)$")
_EARLIEST_DELIVERY = 10**8  # 1973; later than now + 1 day is not a delivery time either
_FLAG_LETTERS = {"S": "seen", "R": "answered", "F": "flagged", "T": "deleted", "D": "draft"}
_LETTER_OF = {flag: letter for letter, flag in _FLAG_LETTERS.items()}


def split_name(name: str) -> tuple[str, str]:
    """(unique name, flag letters) of a Maildir file name."""
    unique, sep, letters = name.rpartition(":2,")
    if sep and ":" not in letters:
        return unique, letters
    m = _INFO.match(name)
    if m is None:
        return name, ""
    return m["unique"], m["flags"]


def flags_of(name: str, subdir: str) -> frozenset[str]:
    """Flags from a file name's info part; a message in new/ is unseen."""
    return _flags(split_name(name)[1], subdir)


def _flags(letters: str, subdir: str) -> frozenset[str]:
    flags = {_FLAG_LETTERS[c] for c in letters if c in _FLAG_LETTERS}
    if subdir == "new":
        flags.discard("seen")
    return frozenset(flags)


def is_maildir(path: Path, strict: bool = True) -> bool:
    """Two of ``cur/``, ``new/``, ``tmp/`` (strict; git checkouts lose empty ones), else cur/ or new/."""
    has = {name for name in ("cur", "new", "tmp") if (path / name).is_dir()}
    if strict:
        return len(has) >= 2
    return bool(has & {"cur", "new"})


def folder_name(rel_dir: str) -> str:
    """Folder name of a Maildir at `rel_dir` ("" is the root, "INBOX")."""
    if not rel_dir:
        return "INBOX"
    parts: list[str] = []
    for part in rel_dir.split("/"):
        if part.startswith(".") and len(part) > 1:  # Maildir++ ".A.B" -> A/B
            parts.extend(p for p in part[1:].split(".") if p)
        else:
            parts.append(part)
    return DELIMITER.join(parts) if parts else "INBOX"


def _maildir_subdirs(entries: list[os.DirEntry[str]]) -> frozenset[str]:
    """cur/new/tmp of a directory that is a Maildir (lenient: cur/ or new/ present), else nothing."""
    names = {e.name for e in entries if e.name in ("cur", "new", "tmp") and _fs.is_dir(e)}
    return frozenset(names) if names & set(SUBDIRS) else frozenset()


def maildirs_at(root: Path, d: Path, entries: list[os.DirEntry[str]]) -> Iterator[tuple[str, Path]]:
    """(dir relative to `root`, path) of the Maildirs at `d`, a directory of a walk pruned by
    `_maildir_subdirs`: `d` itself, and the Maildir++ subfolders that hang off it as dot-dirs."""
    if _maildir_subdirs(entries):
        yield _fs.rel_posix(d, root), d
    for e in entries:
        if (e.name.startswith(".") and len(e.name) > 1 and _fs.is_dir(e)
                and is_maildir(Path(e.path), strict=False)):
            yield _fs.rel_posix(Path(e.path), root), Path(e.path)


def containers_of(rel: str, d: Path) -> Iterator[Container]:
    """The cur/ and new/ containers of the Maildir at `d` (at `rel` from the source root)."""
    for sub in SUBDIRS:
        st = _fs.stat_or_none(d / sub)
        if st is not None and stat.S_ISDIR(st.st_mode):
            yield _fs.container(f"{rel}/{sub}" if rel else sub, st)


def _folder_and_unique(path: str) -> tuple[str, str]:
    """("lists/python", unique name) of a locator path "lists/python/cur/<name>": where to look for the
    message again after another program renamed it."""
    container, _, name = path.rpartition("/")
    return container.rpartition("/")[0], split_name(name)[0]


def is_container(name: str) -> bool:
    """True for the name of a Maildir container ("cur", ".Sent/new", "lists/python/cur")."""
    return name.rpartition("/")[2] in SUBDIRS


def _skip_reason(e: os.DirEntry[str] | Path) -> str | None:
    """Why a file of cur/ or new/ is not a message, from its name and type (no stat for a
    listed one); None if it is."""
    if _fs.is_hidden(e.name):
        return SKIP_METADATA
    return None if _fs.is_file(e) else SKIP_NOT_A_FILE


def _is_tree_of_maildirs(path: Path, depth: int) -> bool:
    """Every visible subdirectory is a Maildir or (recursively) a tree of them."""
    found = False
    for e in _fs.scandir_sorted(path):
        if _fs.is_hidden(e.name) or not _fs.is_dir(e):
            continue
        sub = Path(e.path)
        if is_maildir(sub) or _has_maildirpp_child(sub, strict=True):
            found = True
        elif depth > 1 and _is_tree_of_maildirs(sub, depth - 1):
            found = True
        elif any(True for _ in _fs.scandir_sorted(sub)):
            return False  # a non-empty directory that holds no Maildir
    return found


def _has_maildirpp_child(path: Path, strict: bool) -> bool:
    return any(
        e.name.startswith(".") and len(e.name) > 1 and _fs.is_dir(e) and is_maildir(Path(e.path), strict=strict)
        for e in _fs.scandir_sorted(path)
    )


class MaildirSource(_fs.TallySource):
    """A Maildir, Maildir++ or a tree of nested Maildirs."""

    type = "maildir"

    @classmethod
    def looks_like(cls, location: Path) -> bool:
        """A Maildir, a Maildir++ root, or a directory tree whose leaves are Maildirs."""
        location = Path(location)
        if not location.is_dir():
            return False
        return (is_maildir(location) or _has_maildirpp_child(location, strict=True)
                or _is_tree_of_maildirs(location, depth=3))

    # -- listing ------------------------------------------------------------

    def maildirs(self) -> Iterator[tuple[str, Path]]:
        """(relative dir, path) of every Maildir folder in the source, sorted."""
        _fs.require_exists(self.location)
        for d, entries in _fs.walk_dirs(self.location, prune=_maildir_subdirs):
            yield from maildirs_at(self.location, d, entries)

    def containers(self) -> Iterator[Container]:
        for rel, d in self.maildirs():
            yield from containers_of(rel, d)

    def entries(self, container: str) -> Iterator[Entry]:
        rel_dir, _, sub = container.rpartition("/")
        if sub not in SUBDIRS:
            raise SourceError(str(self.location), f"not a Maildir container: {container!r}")
        d = _fs.resolve_locator_path(self.location, container, str(self.location))
        folders = (folder_name(rel_dir),)
        skips = self._tally(container)
        missed: set[str] = set()
        listed: set[str] = set()
        for e in _fs.scandir_sorted(d):
            entry = self._entry(container, sub, folders, e)
            if entry is None:
                reason = _skip_reason(e)
                if reason is not None:
                    skips[reason] += 1
                elif not os.path.lexists(e.path):
                    missed.add(split_name(e.name)[0])
            else:
                listed.add(entry.key)
                yield entry
        if missed:  # renamed (a flag change) while we listed: look for the new name once
            for e in _fs.scandir_sorted(d):
                unique = split_name(e.name)[0]
                if unique in missed and unique not in listed:
                    entry = self._entry(container, sub, folders, e)
                    if entry is not None:
                        listed.add(unique)
                        yield entry

    def listing(self, container: str) -> set[str] | None:
        """Locator paths from one os.listdir: no stat, no parsing of names."""
        d = _fs.resolve_locator_path(self.location, container, str(self.location))
        try:
            names = os.listdir(d)
        except (FileNotFoundError, NotADirectoryError):
            return set()
        return {f"{container}/{n}" for n in names if n[:1] != "."}

    def entry(self, container: str, path: str) -> Entry | None:
        rel_dir, _, sub = container.rpartition("/")
        full = _fs.resolve_locator_path(self.location, path, str(self.location))
        return self._entry(container, sub, (folder_name(rel_dir),), full)

    @staticmethod
    def _entry(container: str, sub: str, folders: tuple[str, ...], e: os.DirEntry[str] | Path) -> Entry | None:
        """The entry for one directory entry; None for dotfiles, non-files and vanished files.

        No stat per file: the type comes from the directory listing, and the
        date fallback is the delivery time that leads a Maildir name.
        """
        if _skip_reason(e) is not None:
            return None
        unique, letters = split_name(e.name)
        head = unique.partition(".")[0]
        if head.isdigit() and _EARLIEST_DELIVERY <= int(head) <= time.time() + 86400:
            mtime: int | None = int(head)
        else:
            st = _fs.stat_or_none(e)
            if st is None:
                return None
            mtime = int(st.st_mtime)
        return Entry(
            container=container,
            key=unique,
            folders=folders,
            locator={"path": f"{container}/{e.name}"},
            content_stamp="",
            flags=_flags(letters, sub),
            mtime=mtime,
        )

    # -- reading ------------------------------------------------------------

    def _current_path(self, locator: Mapping[str, Any]) -> tuple[Path, str]:
        """The message file now, following a rename by another program; and its subdir."""
        where = str(self.location)
        path = _fs.resolve_locator_path(self.location, locator.get("path"), where)
        if path.is_file():
            return path, path.parent.name
        folder_dir, unique = _folder_and_unique(str(locator.get("path")))
        base = self.location if not folder_dir else _fs.resolve_locator_path(self.location, folder_dir, where)
        for sub in ("cur", "new"):
            for e in _fs.scandir_sorted(base / sub):
                if not _fs.is_hidden(e.name) and split_name(e.name)[0] == unique and _fs.is_file(e):
                    return Path(e.path), sub
        raise SourceNotFound(where, f"message {unique!r} is gone from {folder_name(folder_dir)!r}")

    def read_bytes(self, locator: Mapping[str, Any]) -> bytes:
        for _ in range(3):  # a rename may race the read: look it up again
            path, _sub = self._current_path(locator)
            try:
                with open(path, "rb") as f:
                    return f.read()
            except FileNotFoundError:
                continue
        raise SourceNotFound(str(self.location), f"message {locator.get('path')!r} keeps moving")

    def read_flags(self, locator: Mapping[str, Any]) -> frozenset[str]:
        path, sub = self._current_path(locator)
        return flags_of(path.name, sub)


    # -- live operations ----------------------------------------------------

    def folders(self) -> list[Folder]:
        names = sorted({folder_name(rel) for rel, _ in self.maildirs()})
        return [Folder(n, symbolic_name(n)) for n in names]

    def find_folder(self, folder: str) -> tuple[str, Path] | None:
        """(relative dir, path) of the Maildir that holds `folder`; None if there is none."""
        for rel, d in self.maildirs():
            if folder_name(rel) == folder or (folder.upper() == "INBOX" and not rel):
                return rel, d
        return None

    def _folder_dir(self, folder: str) -> tuple[str, Path]:
        """(relative dir, path) of `folder`, made as a Maildir++ folder (or a nested one) if missing."""
        found = self.find_folder(folder)
        if found is not None:
            return found
        where = str(self.location)
        parts = [p for p in folder.split(DELIMITER) if p]
        maildirpp = is_maildir(self.location) or _has_maildirpp_child(self.location, strict=False)
        if not parts or any(p in (".", "..") or (maildirpp and "." in p) for p in parts):
            raise SourceError(where, f"cannot make a folder named {folder!r} here")
        rel = "." + ".".join(parts) if maildirpp else "/".join(parts)
        d = _fs.resolve_locator_path(self.location, rel, where)
        try:
            for sub in ("cur", "new", "tmp"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            if rel.startswith("."):
                (d / "maildirfolder").touch()
        except OSError as exc:
            raise SourceError(where, f"cannot make folder {folder!r}: {exc.strerror or exc}") from exc
        return rel, d

    def append(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        return self.deliver(*self._folder_dir(folder), data, flags)

    def deliver(self, rel: str, d: Path, data: bytes, flags: frozenset[str]) -> Mapping[str, Any]:
        """Store `data` durably in the Maildir at `d` (`rel` from the root) with `flags`; its locator."""
        unique = _fs.unique_name()
        name = f"{unique}:2,{_letters('', flags, ())}"
        (d / "tmp").mkdir(exist_ok=True)
        _fs.deliver(d / "tmp" / unique, d / "cur" / name, data, str(self.location))
        return {"path": f"{rel}/cur/{name}" if rel else f"cur/{name}"}

    def set_flags(self, locator: Mapping[str, Any], changes: Mapping[str, bool]) -> Mapping[str, Any]:
        for _ in range(3):  # another program may rename it at the same moment: look it up again
            path, sub = self._current_path(locator)
            unique, letters = split_name(path.name)
            if sub == "new":
                letters = ""
            name = f"{unique}:2,{_letters(letters, {f for f, on in changes.items() if on}, changes)}"
            target = path.parent.parent / "cur" / name
            try:
                if target != path:
                    os.rename(path, target)
                    kill_point("maildir.after-rename")
                    _fs.fsync_dir(target.parent)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise SourceError(str(self.location), f"cannot rename {path.name}: {exc.strerror or exc}") from exc
            rel = _folder_and_unique(str(locator.get("path")))[0]
            return {"path": f"{rel}/cur/{name}" if rel else f"cur/{name}"}
        raise SourceNotFound(str(self.location), f"message {locator.get('path')!r} keeps moving")

    def delete(self, locator: Mapping[str, Any]) -> None:
        path, _sub = self._current_path(locator)
        _fs.remove_file(path, str(self.location))


def _letters(letters: str, add: set[str] | frozenset[str], changes: Mapping[str, bool] | tuple[()]) -> str:
    """Info letters after a change: ours set or cleared, any others (P, keywords) kept; sorted, as Maildir wants."""
    keep = {c for c in letters if _FLAG_LETTERS.get(c) not in changes}
    keep |= {_LETTER_OF[f] for f in add if f in _LETTER_OF}
    return "".join(sorted(keep))


@hookimpl
def mailindex_source_types() -> list[str]:
    return [MaildirSource.type]


@hookimpl(trylast=True)
def mailindex_open_source(location: str, source_type: str | None, options: Mapping[str, Any]) -> Backend | None:
    return _fs.open_if(MaildirSource, location, source_type, options)
