"""mailindex: make mailboxes on disk searchable offline (Context.IO 2.0 message API)."""

from mailindex.contacts import Contacts
from mailindex.engine import MailIndex, default_index_dir
from mailindex.errors import (ConcurrentChange, ContactNotFound, IndexLocked, IndexStoreError, IndexVersionError,
                              IntegrityError, MailindexError, MessageNotFound, NotFound, PluginError, QueryError,
                              ReadOnlyIndex, SourceError, SourceFormatError, SourceNotFound)
from mailindex.hookspecs import hookimpl
from mailindex.messages import Messages
from mailindex.record import Address, Attachment, Record
from mailindex.sources.base import Container, Entry, RawMessage, Source
from mailindex.sync import SyncReport

__all__ = [
    "Address", "Attachment", "ConcurrentChange", "ContactNotFound", "Contacts", "Container", "Entry", "IndexLocked",
    "IndexStoreError", "IndexVersionError", "IntegrityError", "MailIndex", "MailindexError", "MessageNotFound",
    "Messages", "NotFound", "PluginError", "QueryError", "RawMessage", "ReadOnlyIndex", "Record", "Source",
    "SourceError", "SourceFormatError", "SourceNotFound", "SyncReport", "default_index_dir", "hookimpl",
]
__version__ = "0.1.0"
