"""mailindex: make mailboxes on disk searchable offline (Context.IO 2.0 message API)."""

from mailindex.api.accounts import Accounts
from mailindex.api.connect_tokens import ConnectTokens
from mailindex.api.contacts import Contacts
from mailindex.api.messages import Messages
from mailindex.api.sources import Sources
from mailindex.app import Account, MailIndex
from mailindex.engine import default_index_dir
from mailindex.errors import (AccountNotFound, ConcurrentChange, ConnectTokenNotFound, ConnectTokenUnusable,
                              ContactNotFound, IndexClosed, IndexLocked, IndexNotFound, IndexStoreError,
                              IndexThreadError, IndexVersionError, IntegrityError,
                              MailindexError, MessageNotFound, NotFound, PluginError, QueryError, ReadOnlyIndex,
                              SourceError, SourceFormatError, SourceNotFound, SourceUnavailable,
                              UnsupportedOperation)
from mailindex.hookspecs import hookimpl
from mailindex.record import Address, Attachment, Record
from mailindex.sources.base import Container, Entry, RawMessage, Backend
from mailindex.sync import SyncReport

__all__ = [
    "Account", "AccountNotFound", "Accounts", "ConnectTokenNotFound", "ConnectTokenUnusable", "ConnectTokens",
    "Sources", "SourceUnavailable",
    "Address", "Attachment", "ConcurrentChange", "ContactNotFound", "Contacts", "Container", "Entry", "IndexClosed",
    "IndexLocked", "IndexNotFound", "IndexStoreError", "IndexThreadError", "IndexVersionError", "IntegrityError", "MailIndex", "MailindexError", "MessageNotFound",
    "Messages", "NotFound", "PluginError", "QueryError", "RawMessage", "ReadOnlyIndex", "Record", "Backend",
    "SourceError", "SourceFormatError", "SourceNotFound", "SyncReport", "UnsupportedOperation", "default_index_dir",
    "hookimpl",
]
__version__ = "0.1.0"
