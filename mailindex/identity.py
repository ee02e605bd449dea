"""A message's stable identity: which of its bytes count, and the ids and hashes made from them.

The same message gives the same ids in any store and on any machine; no id may ever change.
"""

from __future__ import annotations

import re

from mailindex.rfc822 import fields

# Headers that mail stores rewrite in place (mbox status, IMAP bookkeeping,
# Gmail labels): they must not change a message's identity.
_VOLATILE_HEADERS = re.compile(
    rb"^(status|x-status|x-keywords|x-uid|x-imap|x-imapbase|x-mozilla-status2?|content-length|lines"
    rb"|x-gmail-labels|x-evolution|x-mozilla-keys):",
    re.IGNORECASE,
)
# Substrings one of which every such header name holds: a header without any keeps all its fields.
_VOLATILE_HINTS = (b"status", b"x-keywords", b"x-uid", b"x-imap", b"content-length", b"lines", b"x-gmail-labels",
                   b"x-evolution", b"x-mozilla-keys")


def identity_bytes(raw: bytes) -> bytes:
    """The bytes that decide a message's identity.

    Line endings are folded to LF (the same message in a CRLF Maildir and an LF
    mbox is one message) and headers that stores rewrite are dropped.
    """
    data = raw.replace(b"\r\n", b"\n")
    end = data.find(b"\n\n")  # exactly this rule, not rfc822.header_end: ids never change
    head, body = (data, b"") if end < 0 else (data[: end + 1], data[end + 1 :])
    low = head.lower()
    if not any(hint in low for hint in _VOLATILE_HINTS):  # most messages: a few substring scans, no split
        return data
    return b"".join(f for f in fields(head) if not _VOLATILE_HEADERS.match(f)) + body


def message_id_for(raw: bytes) -> str:
    """Stable 24-hex message id: the same message gives the same id anywhere."""
    return sha256_hex(identity_bytes(raw))[:24]


def file_id_for(message_id: str, body_section: str) -> str:
    """Stable 24-hex file id of one attachment of one message."""
    return sha256_hex(f"{message_id}/{body_section}".encode())[:24]


def sha256_hex(raw: bytes) -> str:
    """SHA-256 of the exact bytes, used to verify a source byte for byte."""
    import hashlib  # here: loading OpenSSL costs ~2 ms a process that hashes nothing

    return hashlib.sha256(raw).hexdigest()
