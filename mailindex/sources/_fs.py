"""Filesystem helpers shared by the file-based sources (maildir, mbox, eml).

Nothing here parses mail: these functions stat, list, sniff the first bytes of
a file and open (possibly compressed) files for reading. Reading never locks or
writes; `deliver` is the one way a live operation writes a new message file.
"""

from __future__ import annotations

import itertools
import lzma
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

from mailindex.errors import SourceError, SourceNotFound
from mailindex.folders import DELIMITER
from mailindex.killpoints import kill_point
from mailindex.sources.base import (SKIP_EMPTY, SKIP_METADATA, SKIP_NOT_A_FILE, SKIP_NOT_MAIL, SKIP_OUTLOOK,
                                    SKIP_UNREADABLE, Container, Backend)

# A stamp younger than this may still change within the same clock tick
# (coarse filesystem clocks, cf. CPython mailbox.Maildir._refresh).
UNSTABLE_WINDOW_NS = 2_000_000_000

BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 1024  # read first; a header block that runs on past it is read on, up to SNIFF_MAX
SNIFF_MAX = 65536

# Metadata files that live beside mail in common stores (MH, Dovecot,
# Thunderbird, mbsync, desktop litter). Dotfiles are skipped separately.
IGNORED_NAMES = frozenset({
    "context", "maildirfolder", "subscriptions", "courierimapsubscribed", "courierimapuiddb",
    "courierimapkeywords", "thumbs.db", "desktop.ini", "msgfilterrules.dat", "filterlog.html",
    "popstate.dat", "readme", "readme.md", "readme.txt", "license", "copying",
})
IGNORED_SUFFIXES = (".msf", ".lock", ".lck", ".idx", ".ids", ".sqlite", ".db", ".dat", ".pyc")

# `Name: value` (RFC 5322 field name: printable ASCII except colon).
_HEADER_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
# A header block is mail only if it names one of these: `key: value` files (passwd, Debian control,
# YAML) are header-shaped too.
MAIL_FIELDS = frozenset({
    b"from", b"sender", b"to", b"cc", b"bcc", b"reply-to", b"date", b"subject", b"message-id",
    b"in-reply-to", b"references", b"received", b"return-path", b"delivered-to", b"mime-version",
    b"content-type",
})

_MAGIC = (
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)
COMPRESSED_SUFFIXES = {".gz": "gz", ".bz2": "bz2", ".xz": "xz"}
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # compound file: an Outlook .msg, a .doc


# --- names and paths -------------------------------------------------------

def is_hidden(name: str) -> bool:
    return name.startswith(".")


def is_ignored_file(name: str) -> bool:
    """Dotfiles and well-known metadata files that are never mail."""
    low = name.lower()
    return is_hidden(name) or low in IGNORED_NAMES or low.endswith(IGNORED_SUFFIXES) or low.endswith("~")


def rel_posix(path: Path, root: Path) -> str:
    """`path` relative to `root`, with "/" separators ("" for the root itself)."""
    rel = path.relative_to(root).as_posix()
    return "" if rel == "." else rel


def resolve_locator_path(root: Path, rel: Any, location: str) -> Path:
    """Join a locator's relative path onto the source root, refusing escapes."""
    if not isinstance(rel, str) or not rel:
        raise SourceError(location, f"bad locator path {rel!r}")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        raise SourceError(location, f"locator path {rel!r} leaves the source")
    return root.joinpath(*pure.parts)


def join_folder(parts: list[str]) -> str:
    """A folder name from path components; a top-level inbox is always "INBOX"."""
    parts = [p for p in parts if p]
    if not parts:
        return "INBOX"
    if parts[0].lower() == "inbox":
        parts[0] = "INBOX"
    return DELIMITER.join(parts)


# --- stat and stamps -------------------------------------------------------

def stamp_of(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}:{st.st_size}"


def is_stable(st: os.stat_result, now_ns: int | None = None) -> bool:
    now_ns = time.time_ns() if now_ns is None else now_ns
    return abs(now_ns - st.st_mtime_ns) >= UNSTABLE_WINDOW_NS


def container(name: str, st: os.stat_result) -> Container:
    return Container(name=name, stamp=stamp_of(st), stable=is_stable(st))


def stat_or_none(path: Path | str | os.DirEntry[str], follow: bool = True) -> os.stat_result | None:
    """stat() that treats a path vanishing under us as absent."""
    try:
        if isinstance(path, os.DirEntry):
            return path.stat(follow_symlinks=follow)
        return os.stat(path, follow_symlinks=follow)
    except (FileNotFoundError, NotADirectoryError):
        return None


def scandir_sorted(path: Path) -> list[os.DirEntry[str]]:
    """Directory entries sorted by name; [] when the directory vanished."""
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def is_dir(entry: os.DirEntry[str] | Path) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def is_file(entry: os.DirEntry[str] | Path) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def require_exists(location: Path) -> None:
    if not location.exists():
        raise SourceNotFound(str(location), "no such file or directory")


# --- reading ---------------------------------------------------------------

def compression_of(path: Path) -> str | None:
    """"gz", "bz2", "xz" or None, from the file's magic bytes."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    for prefix, kind in _MAGIC:
        if magic.startswith(prefix):
            return kind
    return None


def open_binary(path: Path, compression: str | None = None) -> IO[bytes]:
    """Open for reading, decompressing gzip/bzip2/xz transparently."""
    import bz2  # here, as gzip: most mail is not compressed, and a sync with nothing to do reads nothing
    import gzip

    if compression == "gz":
        return cast(IO[bytes], gzip.open(path, "rb"))  # a GzipFile is one; typeshed does not say so
    if compression == "bz2":
        return bz2.open(path, "rb")
    if compression == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 - caller closes


def read_head(path: Path, n: int = SNIFF_BYTES) -> bytes | None:
    """The first `n` (decompressed) bytes of a file, or None if unreadable."""
    try:
        with open_binary(path, compression_of(path)) as f:
            return f.read(n)
    except (OSError, EOFError, lzma.LZMAError):
        return None


def strip_leading(head: bytes) -> bytes:
    """Drop a UTF-8 byte-order mark and leading blank lines."""
    if head.startswith(BOM):
        head = head[len(BOM):]
    return head.lstrip(b"\r\n \t")


def looks_like_mbox_head(head: bytes | None) -> bool:
    return head is not None and strip_leading(head).startswith(b"From ")


def _head_verdict(head: bytes, complete: bool) -> bool | None:
    """True if `head` opens with a header block naming a mail field (after an optional From_ line),
    False if it does not, None if it ends, not `complete`, inside a block that has named none yet."""
    head = strip_leading(head)
    pos = head.find(b"\n") + 1 if head.startswith((b"From ", b">From ")) else 0
    while True:  # line by line, never splitting all of a large message
        nl = head.find(b"\n", pos)
        if nl < 0 and not complete:
            return None  # the last line may be cut short
        line = (head[pos:] if nl < 0 else head[pos:nl]).rstrip(b"\r")
        if not line:
            return False  # the block (or the data) ended without naming a mail field
        if line[:1] not in (b" ", b"\t"):  # not a folded line
            field = _HEADER_LINE.match(line)
            if field is None:
                return False
            if field.group(1).lower() in MAIL_FIELDS:
                return True
        if nl < 0:
            return False
        pos = nl + 1


def looks_like_message(data: bytes | None) -> bool:
    """Whether the bytes of a message are RFC 822 mail: a header block of `Name: value` lines naming
    From, Date, Subject, Message-ID, Received or another field of MAIL_FIELDS, possibly after an mbox
    From_ line. Reads as far as the verdict needs, however long the headers before the first such field."""
    return data is not None and _head_verdict(data, True) is True


def is_message_file(f: IO[bytes]) -> bool:
    """looks_like_message for a file open at its start, reading no more of it than the verdict needs,
    and at most SNIFF_MAX: a file not named as mail must name a mail field within that."""
    head = f.read(SNIFF_BYTES)
    verdict = _head_verdict(head, len(head) < SNIFF_BYTES)
    if verdict is None:
        head += f.read(SNIFF_MAX - len(head))
        verdict = _head_verdict(head, len(head) < SNIFF_MAX)
    return verdict is True


def looks_like_message_file(path: Path) -> bool:
    """is_message_file for a path; False if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return is_message_file(f)
    except OSError:
        return False


def read_file_bytes(path: Path, location: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        raise SourceNotFound(location, f"message file {path} is gone") from None
    except IsADirectoryError:
        raise SourceError(location, f"{path} is a directory, not a message") from None
    except OSError as exc:
        raise SourceError(location, f"cannot read {path}: {exc}") from exc


# --- writing (live operations only) -------------------------------------------

_COUNTER = itertools.count()


def unique_name() -> str:
    """A Maildir-style unique name: time, microseconds, pid, a counter and the host."""
    import socket  # here: only a live operation names a new file (~2 ms of imports)

    now = time.time()
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_COUNTER)}.{host}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def deliver(tmp: Path, final: Path, data: bytes, location: str) -> None:
    """Write `data` to `tmp` (new, fsynced), link it to `final` (never over a file), drop `tmp`.

    The message is durable under its final name before this returns; a crash
    leaves at most a stray file under `tmp`, never a half-written message.
    """
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                f.write(data)
            os.fsync(fd)
        finally:
            os.close(fd)
        kill_point("file.after-temp-written")
        os.link(tmp, final)
        kill_point("file.after-link")
        os.unlink(tmp)
        fsync_dir(final.parent)
    except OSError as exc:
        raise SourceError(location, f"cannot write {final.name}: {exc.strerror or exc}") from exc


def remove_file(path: Path, location: str) -> None:
    """Unlink a message file durably; SourceNotFound if it is gone already."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        raise SourceNotFound(location, f"message file {path.name} is gone") from None
    except OSError as exc:
        raise SourceError(location, f"cannot remove {path.name}: {exc.strerror or exc}") from exc
    kill_point("file.after-unlink")
    fsync_dir(path.parent)


# --- walking ---------------------------------------------------------------

def walk_dirs(root: Path, prune: Callable[[list[os.DirEntry[str]]], frozenset[str]] | None = None,
              ) -> Iterator[tuple[Path, list[os.DirEntry[str]]]]:
    """Depth-first (sorted) over non-hidden directories, tolerating vanishing ones.

    Yields each directory with its sorted entries. Directory symlinks are not
    followed (a loop would never end); `prune(entries)` names subdirectories
    of that directory to leave out.
    """
    stack = [root]
    while stack:
        d = stack.pop()
        entries = scandir_sorted(d)
        if not entries and not d.is_dir():
            continue  # vanished
        yield d, entries
        skip = prune(entries) if prune else frozenset()
        subdirs = [Path(e.path) for e in entries
                   if not is_hidden(e.name) and e.name not in skip and _is_real_dir(e)]
        stack.extend(reversed(subdirs))


def _is_real_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def sample_files(root: Path, limit: int = 40, max_dirs: int = 200, per_dir: int = 10) -> Iterator[Path]:
    """Up to `limit` candidate mail files under `root`, for detection.

    Depth first, so mail a few levels down a wide tree (``user/inbox/1.`` under
    hundreds of users) comes after a few directories, not after every directory
    above it; at most `per_dir` files of one directory, so a folder of
    attachments cannot use up the sample, and `max_dirs` directories in all.
    """
    taken = 0
    for _d, entries in itertools.islice(walk_dirs(root), max_dirs):
        files = (e for e in entries if not is_ignored_file(e.name) and is_file(e))
        for e in itertools.islice(files, min(per_dir, limit - taken)):
            yield Path(e.path)
            taken += 1
        if taken >= limit:
            return


# --- skipped files ---------------------------------------------------------

class TallySource(Backend):
    """A file-based source that counts, per container, the files its last listing left out."""

    def __init__(self, location: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(location, **options)
        self._skips: dict[str, Counter[str]] = {}

    def skipped(self, container: str) -> Mapping[str, int]:
        return dict(self._skips.get(container, {}))

    def is_message(self, locator: Mapping[str, Any], data: bytes) -> bool:
        """A file may be anything, whatever its name or folder: mail only by its bytes."""
        return looks_like_message(data)

    def holds_mail(self) -> bool:
        """A message among the listed files, or nothing but store metadata at all (an empty mailbox,
        to be filled). A tree of other files (say /etc) holds no mail, however header-like its files."""
        others = False
        for c in self.containers():
            for e in self.entries(c.name):
                try:
                    if self.is_message(e.locator, self.read_bytes(e.locator)):
                        return True
                except SourceError:
                    pass  # unreadable: not known to be mail
                others = True
            others = others or any(n for reason, n in self.skipped(c.name).items() if reason != SKIP_METADATA)
        return not others

    def _tally(self, container: str) -> Counter[str]:
        """A fresh count for the listing of `container` now under way (it replaces the last one)."""
        counts = self._skips[container] = Counter()
        return counts


# --- one-message files ------------------------------------------------------

_MAIL_NAME = re.compile(r"(?is)\d+\.?|.*\.(eml|mime|rfc822|mbx|msg822)")  # fullmatch: a name may hold a newline


def skip_reason(e: os.DirEntry[str]) -> str | None:
    """Why a directory entry that is not a directory is left out; None if it is mail.

    A file whose name says mail (*.eml, MH and Enron numbers) is listed
    unopened: its bytes are checked when the sync reads them (`is_message`), and
    one that is no mail is quarantined under its path, not lost from view. Any
    other file is mail by its head (`is_message_file`). The stat here is the
    one the entry needs (cached by `e`). Raises FileNotFoundError if `e` vanished
    since the listing.
    """
    if not is_file(e):
        return SKIP_NOT_A_FILE
    if is_ignored_file(e.name):
        return SKIP_METADATA
    try:
        size = e.stat().st_size
        if _MAIL_NAME.fullmatch(e.name):
            return None
        if e.name.lower().endswith(".msg"):
            return SKIP_OUTLOOK
        if not size:
            return SKIP_EMPTY
        with open(e.path, "rb") as f:
            if f.read(len(OLE2_MAGIC)) == OLE2_MAGIC:
                return SKIP_OUTLOOK
            f.seek(0)
            return None if is_message_file(f) else SKIP_NOT_MAIL
    except FileNotFoundError:
        raise  # vanished: not a file of the container any more, so not counted
    except OSError:
        return SKIP_UNREADABLE


# --- plugin glue -----------------------------------------------------------

def open_if(cls: type[Backend], location: str, source_type: str | None,
            options: Mapping[str, Any] | None) -> Backend | None:
    """The body of every built-in `mailindex_open_source` hookimpl."""
    if source_type == cls.type or (source_type is None and cls.looks_like(Path(location))):
        return cls(location, **dict(options or {}))
    return None
