"""Writing an mbox file safely: locks, a rewrite by rename, and the bytes a message is stored as.

Every change replaces one byte range of the file. Under both conventional
locks (an fcntl lock and a ``<file>.lock`` dot-lock, as mail delivery agents
take them) the file is copied into a new temporary file beside it with the
range replaced, fsynced, given the old file's mode and renamed over it. A
reader that opened the old file keeps reading the old file whole; a crash
leaves either the old file or the new one, never a half-written mbox.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from mailindex import rfc822
from mailindex.errors import SourceError
from mailindex.killpoints import kill_point
from mailindex.sources._fs import fsync_dir

LOCK_TIMEOUT = 10.0  # seconds to wait for another program's lock
STALE_DOTLOCK = 300.0  # a dot-lock older than this was left by a crash (as procmail assumes)
COPY_CHUNK = 1 << 20

_ESCAPE = re.compile(rb"^(>*From )", re.MULTILINE)
_STATUS_FIELD = re.compile(rb"^(status|x-status):", re.IGNORECASE)
_MOZILLA_FIELD = re.compile(rb"^x-mozilla-status:[ \t]*([0-9a-fA-F]{1,4})", re.IGNORECASE)
_X_STATUS = (("answered", b"A"), ("flagged", b"F"), ("draft", b"T"), ("deleted", b"D"))
_MOZILLA_BITS = (("seen", 0x1), ("answered", 0x2), ("flagged", 0x4), ("deleted", 0x8))


def escape(data: bytes) -> bytes:
    """mboxrd escaping: one more ``>`` before every ``^>*From `` line (the reader takes one off)."""
    return _ESCAPE.sub(rb">\1", data)


def from_line(now: float | None = None) -> bytes:
    """A From_ line for a message added now."""
    return b"From MAILER-DAEMON " + time.asctime(time.gmtime(now)).encode() + b"\n"


def with_flags(raw: bytes, flags: frozenset[str] | set[str]) -> bytes:
    """The message with Status/X-Status (and an existing X-Mozilla-Status) saying `flags`; the body untouched."""
    end = raw.find(b"\n\n")
    crlf_end = raw.find(b"\r\n\r\n")
    if crlf_end >= 0 and (end < 0 or crlf_end < end):
        head, body, eol = raw[:crlf_end + 2], raw[crlf_end + 2:], b"\r\n"
    elif end >= 0:
        head, body, eol = raw[:end + 1], raw[end + 1:], b"\n"
    else:
        head, body, eol = raw, b"", b"\r\n" if raw.endswith(b"\r\n") else b"\n"
        if head and not head.endswith(b"\n"):
            head += eol
        body = eol
    kept = []
    for field in rfc822.fields(head):
        if _STATUS_FIELD.match(field):
            continue
        m = _MOZILLA_FIELD.match(field)
        if m:
            bits = int(m[1], 16)
            for flag, bit in _MOZILLA_BITS:
                bits = bits | bit if flag in flags else bits & ~bit
            field = b"X-Mozilla-Status: %04x" % bits + eol
        kept.append(field)
    status = b"Status: " + (b"RO" if "seen" in flags else b"O") + eol
    letters = b"".join(letter for flag, letter in _X_STATUS if flag in flags)
    x_status = b"X-Status: " + letters + eol if letters else b""
    return b"".join(kept) + status + x_status + body


def stored_form(data: bytes, flags: frozenset[str] | set[str]) -> bytes:
    """A message as appended: From_ line, escaped bytes with its flags, a final newline and the blank separator."""
    body = escape(with_flags(data, flags))
    if not body.endswith(b"\n"):
        body += b"\n"
    return from_line() + body + b"\n"


@contextmanager
def locked(path: Path, location: str) -> Iterator[None]:
    """Hold an exclusive fcntl lock and the ``.lock`` dot-lock on `path` (SourceError after LOCK_TIMEOUT)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise SourceError(location, f"cannot open {path.name} for writing: {exc.strerror or exc}") from exc
    dotlock = path.with_name(path.name + ".lock")
    try:
        _wait(lambda: _try_fcntl(fd), f"{path.name} is locked by another program", location)
        _wait(lambda: _try_dotlock(dotlock), f"{dotlock.name} is held by another program", location)
        kill_point("mbox.after-lock")
        try:
            yield
        finally:
            dotlock.unlink(missing_ok=True)
            kill_point("mbox.after-unlock")
    finally:
        os.close(fd)  # releases the fcntl lock


def _wait(attempt: Callable[[], bool], problem: str, location: str) -> None:
    deadline = time.monotonic() + LOCK_TIMEOUT
    while not attempt():
        if time.monotonic() > deadline:
            raise SourceError(location, f"{problem} (waited {LOCK_TIMEOUT:.0f} s)")
        time.sleep(0.05)


def _try_fcntl(fd: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False


def _try_dotlock(dotlock: Path) -> bool:
    """Create the dot-lock by hard-linking a unique file to it (atomic even over NFS)."""
    tmp = dotlock.with_name(f"{dotlock.name}.{os.getpid()}.{time.monotonic_ns()}")
    tmp.write_bytes(b"%d\n" % os.getpid())
    try:
        os.link(tmp, dotlock)
        return True
    except FileExistsError:
        if _stale(dotlock):
            dotlock.unlink(missing_ok=True)
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _stale(dotlock: Path) -> bool:
    """Left by a crash: its writer (the pid inside) is dead, or it is older than STALE_DOTLOCK."""
    try:
        pid = int(dotlock.read_bytes().split()[0])
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (ValueError, IndexError, PermissionError, FileNotFoundError):
        pass  # not ours to judge by pid (another host's or format), or gone already
    try:
        return time.time() - dotlock.stat().st_mtime > STALE_DOTLOCK
    except FileNotFoundError:
        return False


def replace_range(path: Path, start: int, stop: int, replacement: bytes, location: str) -> None:
    """Rewrite `path` with bytes [start, stop) replaced, into a new file renamed over it. Caller holds the locks."""
    try:
        st = os.stat(path)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    except OSError as exc:
        raise SourceError(location, f"cannot rewrite {path.name}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            _copy(src, out, start)
            out.write(replacement)
            src.seek(stop)
            _copy(src, out, None)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, st.st_mode & 0o7777)
        kill_point("mbox.after-temp-written")
        os.replace(tmp, path)
        kill_point("mbox.after-rename")
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SourceError(location, f"cannot rewrite {path.name}: {exc.strerror or exc}; it is unchanged") from exc


def _copy(src: IO[bytes], out: IO[bytes], n: int | None) -> None:
    left = n
    while left is None or left > 0:
        chunk = src.read(COPY_CHUNK if left is None else min(COPY_CHUNK, left))
        if not chunk:
            return
        out.write(chunk)
        if left is not None:
            left -= len(chunk)
