"""The Tantivy half of an index directory: open or create, write, search.

Every Tantivy call goes through here, so its errors (plain ValueErrors, and
Rust panics that surface as BaseException) become errors of ours.

Tantivy takes its file locks by creating `.tantivy-meta.lock` (even to read)
and `.tantivy-writer.lock` in the index directory, and cannot open an index in
a directory it cannot write. A read-only TantivyIndex therefore opens a
private view instead: a temporary directory of symbolic links to the index's
files, where Tantivy makes its lock files, so the index directory is only read.
"""

from __future__ import annotations

import _thread
import fcntl
import os
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import tantivy

from mailindex.errors import IndexLocked, IndexStoreError
from mailindex.index import schema as S
from mailindex.index.store import check_use

WRITER_HEAP = 64_000_000  # measured on 100,000 messages: 29 MB less peak RSS than 128 MB, same msgs/s
_LOCKS = (".tantivy-meta.lock", ".tantivy-writer.lock")
_RELOAD_TRIES = 3  # a commit between listing the files and reading meta.json asks for another listing
T = TypeVar("T")


class TantivyIndex:
    """A Tantivy index at `path`, created on first use unless read-only.

    A new index directory is made 0700, and the files Tantivy writes get `file_mode` (the
    mode of the index's metadata file, 0600 for a new index) after each commit and when the
    writer closes. Tantivy creates them with the process umask; changing the umask instead
    would change it for every thread of the process (and its files) for as long as the
    writer's merge threads might create files, that is the whole sync. Until the chmod a new
    file is only reachable through the 0700 directory, the real protection. An existing
    index's files keep their modes.
    """

    def __init__(self, path: Path, *, read_only: bool = False, file_mode: int = 0o600) -> None:
        self.path = path
        self.schema = S.build_schema()
        self.file_mode = file_mode
        self._owner = _thread.get_ident()
        self._closed = False
        self._view: _View | None = None
        self._loaded: tuple[int, int, int] | None = None  # meta.json (inode, mtime, size) at the last reload
        self._known: set[tuple[str, int]] = set()  # (name, inode) of the files not to chmod
        try:
            if read_only:
                if not (path / "meta.json").is_file():
                    raise IndexStoreError(f"no search index at {path} (a read-only index is never created)")
                self._view = _View(path)
                self.index = self._view.open()
            elif path.is_dir() and tantivy.Index.exists(str(path)):
                self._known = _files(path)
                self.index = _manual(tantivy.Index.open(str(path)))
            else:
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                self.index = _manual(tantivy.Index(self.schema, str(path)))
            S.register_tokenizers(self.index)
        except ValueError as exc:
            self.close()
            raise IndexStoreError(f"cannot open the search index {path}: {exc}") from exc
        except IndexStoreError:
            self.close()
            raise
        if not read_only:
            self.protect_new_files()

    def writer(self) -> "Writer":
        check_use(self._closed, self._owner)
        try:
            return Writer(self.index.writer(heap_size=WRITER_HEAP, num_threads=1), self.protect_new_files)
        except ValueError as exc:
            if "LockBusy" in str(exc):
                raise IndexLocked(
                    f"another process is writing to the index at {self.path.parent}; wait for it to finish"
                ) from exc
            raise IndexStoreError(f"cannot write to the search index: {exc}") from exc

    @property
    def generation(self) -> object:
        """Changes whenever `searcher()` loads a newer commit: what a cache of its answers is keyed by."""
        return self._loaded

    def searcher(self) -> tantivy.Searcher:
        """A searcher of the last commit. Reloading costs ~0.5 ms (more through a view), so it is done only
        when meta.json changed: every commit writes a new one (a new file, renamed over the old)."""
        check_use(self._closed, self._owner)
        try:
            meta = os.stat(self.path / "meta.json")
            stamp = (meta.st_ino, meta.st_mtime_ns, meta.st_size)
            if stamp != self._loaded:
                if self._view is None:
                    self.index.reload()
                else:
                    self._view.reload(self.index)
                self._loaded = stamp  # stat before reload: a commit in between makes the next call reload again
            return self.index.searcher()
        except (OSError, ValueError) as exc:
            raise IndexStoreError(f"cannot read the search index: {exc}") from exc

    def protect_new_files(self) -> None:
        """Give the files Tantivy made since the last call (a commit rewrites meta.json) `file_mode`."""
        present = set()
        try:
            for entry in os.scandir(self.path):
                key = (entry.name, entry.inode())
                present.add(key)
                if key not in self._known and entry.is_file(follow_symlinks=False):
                    try:
                        os.chmod(entry.path, self.file_mode)
                    except FileNotFoundError:  # merged away meanwhile
                        present.discard(key)
        except OSError as exc:
            raise IndexStoreError(f"cannot set the mode of the search index's files in {self.path}: {exc}") from exc
        self._known = present

    def close(self) -> None:
        """Stop using the index (a read-only view's directory is removed); use afterwards raises IndexClosed."""
        if self._view is not None:
            self._view.close()
        self._closed = True


class _View:
    """A private temporary directory of symbolic links to the files of a Tantivy index: Tantivy opens
    this one, makes its lock files here, and only reads the index's own files through the links."""

    def __init__(self, source: Path) -> None:
        self.source = Path(os.path.abspath(source))  # the links live elsewhere: a relative target would dangle
        self.path = _private_dir()
        self._remove = weakref.finalize(self, _remove_view, self.path)
        self._linked: set[str] = set()
        self._stamp: tuple[int, int, int] | None = None

    def refresh(self, force: bool = False) -> None:
        """Link the index's files and unlink those it dropped, when meta.json changed since the last time."""
        try:
            meta = (self.source / "meta.json").stat()
            stamp = (meta.st_ino, meta.st_mtime_ns, meta.st_size)
            if stamp == self._stamp and not force:
                return
            names = {e.name for e in os.scandir(self.source) if e.name not in _LOCKS}
            for name in names - self._linked:
                os.symlink(self.source / name, self.path / name)
            for name in self._linked - names:
                (self.path / name).unlink()
        except OSError as exc:
            raise IndexStoreError(f"cannot read the search index {self.source}: {exc}") from exc
        self._linked, self._stamp = names, stamp

    def open(self) -> tantivy.Index:
        """Open the index through the view (a reader configured afresh opens the segments again)."""
        return self._locked(lambda: _manual(tantivy.Index.open(str(self.path))))

    def reload(self, index: tantivy.Index) -> None:
        """Reload `index` with the files the index has now."""
        self._locked(index.reload)

    def _locked(self, load: Callable[[], T]) -> T:
        """Link the files and `load`, holding the index's meta lock shared, as Tantivy's readers hold it
        (exclusively, in their own directory) while they open segments: a writer's garbage collection,
        which takes it, then deletes no file being opened. flock on a descriptor opened read-only
        changes nothing on disk. A commit between the listing and Tantivy's reading meta.json names
        segments not linked yet: list again."""
        try:
            lock: int | None = os.open(self.source / _LOCKS[0], os.O_RDONLY)
        except OSError:  # never written by a Tantivy writer: no garbage collection to wait for
            lock = None
        try:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_SH)
            for attempt in range(_RELOAD_TRIES):
                self.refresh(force=attempt > 0)
                try:
                    return load()
                except ValueError:
                    if attempt == _RELOAD_TRIES - 1:
                        raise
            raise AssertionError("unreachable")
        finally:
            if lock is not None:
                os.close(lock)

    def close(self) -> None:
        self._remove()


def _remove_view(path: Path) -> None:
    """Remove a view: its links, and whatever lock files Tantivy left beside them (no subdirectories,
    so no shutil.rmtree, whose imports cost every read command ~2 ms)."""
    try:
        for entry in os.scandir(path):
            os.unlink(entry.path)
        os.rmdir(path)
    except OSError:
        pass  # a view another process emptied, or that cannot be removed: nothing of the index's


def _private_dir() -> Path:
    """A new directory that only its owner may enter: in $TMPDIR (or $TEMP, $TMP) when set, else in
    a memory file system ($XDG_RUNTIME_DIR, /dev/shm: making and removing the links there costs
    ~0.2 ms, against ~2.3 ms on ext4), else in /tmp, /var/tmp or /usr/tmp; the first that is writable.
    Never the working directory, which may be the evidence. tempfile.mkdtemp's promise, without the
    imports of tempfile (~1.5 ms of every read-only open)."""
    bases = [os.environ[v] for v in ("TMPDIR", "TEMP", "TMP", "XDG_RUNTIME_DIR") if os.environ.get(v)]
    bases += ["/dev/shm", "/tmp", "/var/tmp", "/usr/tmp"]
    failures = []
    for base in dict.fromkeys(bases):
        while True:
            path = os.path.join(base, f"mailindex-view-{os.urandom(6).hex()}")
            try:
                os.mkdir(path, 0o700)
                return Path(path)
            except FileExistsError:
                continue
            except OSError as exc:
                failures.append(f"{base}: {exc.strerror}")
                break
    raise IndexStoreError("cannot make the private view a read-only index is opened through "
                          f"(set TMPDIR to a writable directory): {'; '.join(failures)}")


def _manual(index: tantivy.Index) -> tantivy.Index:
    """`index` with a reader that searcher() reloads explicitly: no watcher thread touching the directory
    behind our back."""
    index.config_reader(reload_policy="manual")
    return index


def _files(path: Path) -> set[tuple[str, int]]:
    return {(e.name, e.inode()) for e in os.scandir(path)}


class Writer:
    """The only IndexWriter of an index: deletes by message_id and adds, then commit.

    `protect` runs after each commit and at close, when Tantivy has made new files."""

    def __init__(self, writer: tantivy.IndexWriter, protect: Callable[[], None]) -> None:
        self._w = writer
        self._protect = protect
        protect()  # the writer's lock file, in a new index

    def add(self, docs: Iterable[str]) -> None:
        """Add documents (JSON from `schema.document_json`); callers delete any older version first."""
        try:
            for doc in docs:
                self._w.add_json(doc)
        except ValueError as exc:
            raise IndexStoreError(f"cannot add to the search index: {exc}") from exc

    def delete(self, message_ids: Iterable[str]) -> None:
        try:
            for message_id in message_ids:
                self._w.delete_documents_by_term(S.MESSAGE_ID, message_id)
        except ValueError as exc:
            raise IndexStoreError(f"cannot delete from the search index: {exc}") from exc

    def commit(self) -> None:
        try:
            self._w.commit()
        except ValueError as exc:
            # A failed commit leaves the writer saving nothing until rolled back.
            self._w.rollback()
            raise IndexStoreError(f"the search index did not commit: {exc}") from exc
        self._protect()

    def close(self) -> None:
        """Wait for merges and release the writer lock."""
        try:
            self._w.wait_merging_threads()
        except ValueError as exc:
            raise IndexStoreError(f"search index merge failed: {exc}") from exc
        finally:
            del self._w
        self._protect()
