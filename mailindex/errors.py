"""The one exception tree of mailindex.

    MailindexError
    ├── QueryError            .param .value: unknown filter, bad regex/glob, limit out of range
    ├── SourceError           .location
    │   ├── SourceNotFound        the path does not exist, or no source has that label
    │   ├── SourceFormatError     no backend claims it, or it is not what it claims to be
    │   ├── ConcurrentChange      the source changed during a scan: sync again
    │   ├── SourceUnavailable     disabled, or its account suspended: not synced
    │   └── UnsupportedOperation  the backend cannot do this live operation (flags on .eml files)
    ├── IndexStoreError       tantivy/sqlite3 failures, translated at the boundary
    │   ├── IndexNotFound         no index in that directory (read-only opens never create one); a LookupError
    │   ├── IndexLocked           another writer holds the index
    │   ├── IndexVersionError     built by an incompatible schema version
    │   ├── ReadOnlyIndex         a write asked of an index opened read-only
    │   ├── IndexClosed           the MailIndex was closed
    │   └── IndexThreadError      the MailIndex is used from a thread other than the one that opened it
    ├── NotFound              .ident; also a LookupError
    │   ├── MessageNotFound       no message has this id
    │   ├── ContactNotFound       no message names this address
    │   ├── AccountNotFound       no account has this id
    │   └── ConnectTokenNotFound  no such token (unused ones are purged after 24 hours)
    ├── ConnectTokenUnusable  the token was used already, or expired
    ├── IntegrityError        a message's bytes no longer match the hash recorded at ingest
    └── PluginError           failed to load, or broke a hook contract

Bad mail is data, not an exception: it is recorded with its parse error.
"""

from __future__ import annotations

import os
from typing import Any


class MailindexError(Exception):
    """Root of every error mailindex raises on purpose."""


class QueryError(MailindexError, ValueError):
    """A query parameter is unknown or has a bad value; names the parameter."""

    def __init__(self, param: str, value: Any, problem: str) -> None:
        self.param = param
        self.value = value
        self.problem = problem
        super().__init__(f"{param}: {problem} (got {value!r})")


class SourceError(MailindexError):
    """A mail source cannot be read (or written) as asked.

    `connection_log` holds what a server said (an IMAP backend's exchange), if any.
    """

    def __init__(self, location: str, problem: str, connection_log: str = "") -> None:
        self.location = location
        self.problem = problem
        self.connection_log = connection_log
        super().__init__(f"{location}: {problem}")


class SourceNotFound(SourceError, LookupError):
    """The path does not exist, or no source has that label."""


class SourceFormatError(SourceError):
    """No backend recognises the location as mail, or it is malformed."""


class ConcurrentChange(SourceError):
    """The source changed while it was being scanned; syncing again resolves it."""


class IndexStoreError(MailindexError):
    """The index directory (Tantivy or SQLite) failed; the original error is chained."""


class IndexLocked(IndexStoreError):
    """Another process is writing to this index."""


class IndexVersionError(IndexStoreError):
    """The index was built by an incompatible version of mailindex."""


class ReadOnlyIndex(IndexStoreError):
    """A write was asked of an index opened with read_only=True."""


class IndexNotFound(IndexStoreError, LookupError):
    """No index in this directory; `.path` names it. Read-only opens never create one."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no index at {os.fsencode(path).decode('utf-8', 'backslashreplace')}")


class IndexClosed(IndexStoreError):
    """The MailIndex was closed: open it again to go on."""


class IndexThreadError(IndexStoreError):
    """A MailIndex is used from a thread other than the one that opened it: open one per thread."""


class NotFound(MailindexError, LookupError):
    """Nothing has this id."""

    what = "item"

    def __init__(self, ident: str) -> None:
        self.ident = ident
        super().__init__(f"{self.what} not found: {ident!r}")


class MessageNotFound(NotFound):
    """No message has this id."""

    what = "message"

    @property
    def message_id(self) -> str:
        return self.ident


class ContactNotFound(NotFound):
    """No message names this address."""

    what = "contact"


class AccountNotFound(NotFound):
    """No account has this id."""

    what = "account"


class ConnectTokenNotFound(NotFound):
    """No connect token has this value (unused ones are purged 24 hours after creation)."""

    what = "connect token"

    def __init__(self, ident: str) -> None:
        super().__init__(ident[:8] + "…" if len(ident) > 8 else ident)  # never echo a whole secret


class ConnectTokenUnusable(MailindexError):
    """The connect token was used already, or expired: a token is good for one connection only."""


class SourceUnavailable(SourceError):
    """The source is disabled, or its account suspended: it is not synced until that changes."""


class UnsupportedOperation(SourceError):
    """The source's backend cannot do this live operation (an .eml tree keeps no flags)."""


class IntegrityError(MailindexError):
    """A message's bytes on disk no longer match the SHA-256 recorded at ingest."""


class PluginError(MailindexError):
    """A plugin failed to load or broke a hook contract."""
