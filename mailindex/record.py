"""Record: everything mailindex learns from one message (its stable ids: `mailindex.identity`).

A Record is what parsing produces and what the index stores. It carries every
field of the Context.IO message object that comes from the message itself;
where the message sits (folders, sources, flags) is kept by the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DateSource = Literal["header", "received", "envelope", "mtime", "none"]
ADDRESS_ROLES = ("from", "to", "cc", "bcc", "reply_to", "sender")
SIGNATURE_IMAGE_MAX = 32 * 1024  # bytes; Outlook and Gmail signature logos are a few KiB


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: the address is lowercased for matching, the name kept as written."""

    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file of a message, as the Context.IO `files[]` entry describes it."""

    file_name: str
    size: int  # decoded bytes
    type: str  # declared Content-Type (lowercase type/subtype)
    body_section: str  # MIME part number, "2" or "1.2"
    is_embedded: bool
    content_disposition: str | None = None
    content_id: str | None = None
    sniffed_type: str | None = None  # what python-magic sees in the first KiBs
    # Whether its text was extracted into Record.attachment_text (mailindex.attachment_text): None for a
    # kind we do not read (images, archives, ...), True, False (unreadable) or "truncated" (at a bound).
    text_extracted: bool | str | None = None
    text_reason: str | None = None  # what failed, or which bound cut the text

    @property
    def is_signature_image(self) -> bool:
        """A small image shown inside the message (a logo, a signature): left out of `files`
        unless the source asks for its raw file list."""
        image = self.type.startswith("image/") or (self.sniffed_type or "").startswith("image/")
        inline = self.is_embedded or self.content_disposition == "inline" or bool(self.content_id)
        return image and inline and self.size <= SIGNATURE_IMAGE_MAX


@dataclass(slots=True)
class Record:
    """A parsed message. Parsing never raises: what could not be read is in parse_error."""

    message_id: str
    sha256: str
    size: int
    subject: str = ""
    email_message_id: str | None = None
    addresses: dict[str, list[Address]] = field(default_factory=dict)
    date: int = 0
    date_source: DateSource = "none"
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    gmail_message_id: str | None = None
    gmail_thread_id: str | None = None
    list_unsubscribe: str | None = None
    list_help: str | None = None
    files: list[Attachment] = field(default_factory=list)
    text: str = ""  # searchable text of text parts, HTML reduced, nested messages included
    attachment_text: str = ""  # searchable text extracted from the attachments, one per line
    parse_error: str | None = None
    defects: list[str] = field(default_factory=list)

    def emails(self, role: str) -> list[str]:
        """Lowercased addresses in one role ("from", "to", ...)."""
        return [a.email for a in self.addresses.get(role, ())]
