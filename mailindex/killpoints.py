"""Deterministic kill points for the crash tests: SIGKILL this process at a named step.

`MAILINDEX_KILL_AT=NAME` (or `NAME:N`, the N-th time the step is reached in
this process; several as `NAME:N,NAME:N`) makes `kill_point(NAME)` send
SIGKILL to its own process, so a test can stop a sync or a live operation
exactly between two of its writes and check what the next sync makes of it.
The variable is read once, at import; unset, a kill point costs one check of
a module-level None. Worker processes inherit the variable and count their
own steps.

This is not `MAILINDEX_INJECT_FAULT` (mailindex.prepare), which makes chosen
messages fail: kill points end a whole process wherever it is.
"""

from __future__ import annotations

import os
import signal

ENV = "MAILINDEX_KILL_AT"

# Every kill point: name -> the step it stops after (or before). Tests parametrize over these.
POINTS: dict[str, str] = {
    # a sync (mailindex/sync.py)
    "sync.after-listing": "a changed container was listed and diffed against the store",
    "sync.after-intent": "a batch's intent is committed to SQLite; Tantivy untouched",
    "sync.before-commit": "a batch's documents are in the Tantivy writer, not committed",
    "sync.after-commit": "a batch is committed to Tantivy; its SQLite records are not written",
    "sync.after-record": "a batch's records and locations are committed and its intent cleared",
    "sync.removal-after-intent": "messages left with no location are named in the intent; Tantivy untouched",
    "sync.removal-after-commit": "their documents are deleted from Tantivy; their SQLite rows remain",
    "sync.after-stamps": "vanished locations and messages are deleted and container stamps saved (one transaction)",
    "sync.rebuild-after-intent": "documents to rebuild are named in the intent; Tantivy untouched",
    "sync.rebuild-after-commit": "rebuilt documents are committed to Tantivy; the intent is not cleared",
    "sync.repair-after-delete": "repair: documents of messages SQLite lacks are deleted and committed",
    "sync.pool-running": "main process: worker processes have chunks in flight, a result is awaited",
    "sync.pool-broken": "main process: a worker died; its messages are not yet retried one at a time",
    "prepare.worker-window": "in a worker process: a window of work arrived, nothing of it prepared",
    # live operations (mailindex/live.py, mailindex/sources/base.py)
    "transfer.after-copy": "copy or move: the copy is stored at the destination, not yet read back",
    "transfer.after-verify": "copy or move: the copy read back as the original; the original not yet deleted",
    "transfer.after-delete": "move: the original is deleted at the source",
    "live.before-follow": "a live operation changed the source; the index has not followed",
    # files (mailindex/sources/_fs.py: Maildir and .eml deliveries and deletes)
    "file.after-temp-written": "a delivery's temporary file is written and fsynced, not linked",
    "file.after-link": "a delivery is linked to its final name; the temporary name not yet removed",
    "file.after-unlink": "a message file is unlinked; its directory not yet fsynced",
    "maildir.after-rename": "a Maildir flag change renamed the file; its directory not yet fsynced",
    # mbox rewrites (mailindex/sources/mbox_writer.py)
    "mbox.after-lock": "the fcntl lock and the dot-lock are held; nothing written",
    "mbox.after-temp-written": "the rewritten mbox is written and fsynced beside the file, not renamed",
    "mbox.after-rename": "the rewritten mbox was renamed over the file; the locks still held",
    "mbox.after-unlock": "the dot-lock is removed; the fcntl lock not yet released",
    # IMAP (plugins/imap/mailindex_imap/source.py)
    "imap.after-copy": "UID COPY done: the copy is on the server, its flags not yet stored",
    "imap.after-append": "APPEND done: the message is on the server",
    "imap.after-add-flags": "a flag change: flags to set are stored, flags to clear not yet",
    "imap.after-store-deleted": "a delete: the message is flagged \\Deleted, not expunged",
    "imap.after-expunge": "a delete: UID EXPUNGE done",
}


def _parse(spec: str | None) -> dict[str, int] | None:
    if not spec:
        return None
    wanted: dict[str, int] = {}
    for item in spec.split(","):
        name, _, nth = item.strip().partition(":")
        if name not in POINTS:
            raise ValueError(f"{ENV}: no kill point named {name!r}; they are listed in mailindex.killpoints.POINTS")
        wanted[name] = int(nth) if nth else 1
    return wanted


_WANTED = _parse(os.environ.get(ENV))
_reached: dict[str, int] = {}


def kill_point(name: str) -> None:
    """SIGKILL this process if $MAILINDEX_KILL_AT names this point and this is its N-th time here."""
    if _WANTED is None:
        return
    _hit(name)


def _hit(name: str) -> None:
    assert name in POINTS, f"unregistered kill point {name!r}"
    n = _reached[name] = _reached.get(name, 0) + 1
    if _WANTED.get(name) == n:  # type: ignore[union-attr]
        os.kill(os.getpid(), signal.SIGKILL)
