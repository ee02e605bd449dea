"""mailindex: make mailboxes on disk searchable offline (Context.IO 2.0 message API).

Every public name is importable from here; each is loaded on first use (PEP 562), so that a command
which asks one question does not import the ingest pipeline, the live operations or the backends.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_ERRORS = ("AccountNotFound", "ConcurrentChange", "ConnectTokenNotFound", "ConnectTokenUnusable", "ContactNotFound",
           "IndexClosed", "IndexLocked", "IndexNotFound", "IndexStoreError", "IndexThreadError", "IndexVersionError",
           "IntegrityError", "MailindexError", "MessageNotFound", "NotFound", "PluginError", "QueryError",
           "ReadOnlyIndex", "SourceError", "SourceFormatError", "SourceNotFound", "SourceUnavailable",
           "UnsupportedOperation")
# name -> the module that defines it
_WHERE = {
    "Account": "mailindex.app", "MailIndex": "mailindex.app",
    "Accounts": "mailindex.api.accounts", "ConnectTokens": "mailindex.api.connect_tokens",
    "Contacts": "mailindex.api.contacts", "Messages": "mailindex.api.messages", "Sources": "mailindex.api.sources",
    "default_index_dir": "mailindex.config", "hookimpl": "mailindex.hookspecs",
    "Address": "mailindex.record", "Attachment": "mailindex.record", "Record": "mailindex.record",
    "Backend": "mailindex.sources.base", "Container": "mailindex.sources.base", "Entry": "mailindex.sources.base",
    "RawMessage": "mailindex.sources.base", "SyncReport": "mailindex.sync",
    **dict.fromkeys(_ERRORS, "mailindex.errors"),
}
__all__ = [  # every name of _WHERE (tests/test_public_api.py checks)
    "Account", "AccountNotFound", "Accounts", "Address", "Attachment", "Backend", "ConcurrentChange",
    "ConnectTokenNotFound", "ConnectTokenUnusable", "ConnectTokens", "ContactNotFound", "Contacts", "Container",
    "Entry", "IndexClosed", "IndexLocked", "IndexNotFound", "IndexStoreError", "IndexThreadError",
    "IndexVersionError", "IntegrityError", "MailIndex", "MailindexError", "MessageNotFound", "Messages",
    "NotFound", "PluginError", "QueryError", "RawMessage", "ReadOnlyIndex", "Record", "SourceError",
    "SourceFormatError", "SourceNotFound", "SourceUnavailable", "Sources", "SyncReport", "UnsupportedOperation",
    "default_index_dir", "hookimpl",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mailindex' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # found directly next time
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__"]


if TYPE_CHECKING:
    from mailindex.api.accounts import Accounts
    from mailindex.api.connect_tokens import ConnectTokens
    from mailindex.api.contacts import Contacts
    from mailindex.api.messages import Messages
    from mailindex.api.sources import Sources
    from mailindex.app import Account, MailIndex
    from mailindex.config import default_index_dir
    from mailindex.errors import (AccountNotFound, ConcurrentChange, ConnectTokenNotFound, ConnectTokenUnusable,
                                  ContactNotFound, IndexClosed, IndexLocked, IndexNotFound, IndexStoreError,
                                  IndexThreadError, IndexVersionError, IntegrityError, MailindexError,
                                  MessageNotFound, NotFound, PluginError, QueryError, ReadOnlyIndex, SourceError,
                                  SourceFormatError, SourceNotFound, SourceUnavailable, UnsupportedOperation)
    from mailindex.hookspecs import hookimpl
    from mailindex.record import Address, Attachment, Record
    from mailindex.sources.base import Backend, Container, Entry, RawMessage
    from mailindex.sync import SyncReport
