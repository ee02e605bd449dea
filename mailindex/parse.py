"""RawMessage -> Record. Never raises: what cannot be read is recorded in parse_error.

Built on the standard library's `compat32` parser (the fastest of the
standard policies, ~4,600 msgs/s per core on list mail, and lenient with
broken mail) with our own decoding around it: raw 8-bit header bytes are
tried as UTF-8 then cp1252, unknown or bogus charsets fall back the same
way, attachment sizes are the decoded sizes, attachments without a file
name are kept, and the MIME tree is numbered as IMAP body sections.
"""

from __future__ import annotations

import calendar
import email.errors
import email.header
import email.utils
import re
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32
from typing import Any

import magic
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from mailindex.record import Address, Attachment, DateSource, Record, message_id_for, sha256_hex
from mailindex.sources.base import RawMessage

MAX_TEXT = 1 << 20  # searchable characters kept per message
MAX_FILES = 10_000
MAX_DEPTH = 100
SNIFF_BYTES = 2048
_YEAR_MIN, _YEAR_MAX = 1900, 2200
_MSGID = re.compile(r"<[^<>\s]+>")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_SPACES = re.compile(r"[ \t\r\n]+")
_ROLES = (("from", "From"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc"), ("reply_to", "Reply-To"),
          ("sender", "Sender"))
_magic = magic.Magic(mime=True)


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text in the declared charset, else UTF-8, else cp1252/latin-1; never raises."""
    for cs in (charset, "utf-8"):
        if cs:
            try:
                return data.decode(cs)
            except (LookupError, UnicodeDecodeError):
                continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _raw_header(value: Any) -> str:
    """A header value as text, with raw 8-bit bytes decoded instead of dropped."""
    if isinstance(value, email.header.Header):
        value = str(value)
    s = str(value)
    if any("\udc80" <= c <= "\udcff" for c in s):
        s = decode_bytes(s.encode("ascii", "surrogateescape"))
    return _FOLD.sub("", s)


def decode_header_text(value: Any) -> str:
    """Unfolded header text with RFC 2047 encoded-words decoded."""
    s = _raw_header(value)
    if "=?" not in s:
        return s.strip()
    try:
        parts = email.header.decode_header(s)
    except (email.errors.HeaderParseError, ValueError):
        return s.strip()
    out = []
    for chunk, charset in parts:
        out.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return "".join(out).strip()


def _addresses(value: Any) -> list[Address]:
    raw = _raw_header(value)
    try:
        pairs = email.utils.getaddresses([raw])
    except Exception:  # noqa: BLE001 - address parsing of garbage must not stop the message
        pairs = []
    out = []
    for name, addr in pairs:
        addr = addr.strip().lower()
        if not addr or addr.endswith(":"):
            continue
        name = decode_header_text(name) if name else ""
        out.append(Address(addr, _SPACES.sub(" ", name).strip() or None))
    return out


def parse_date(value: str | None) -> int | None:
    """Unix seconds UTC, or None when missing or not a plausible date (no zone means UTC)."""
    if not value:
        return None
    try:
        t = email.utils.parsedate_tz(_SPACES.sub(" ", value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if t is None or not (_YEAR_MIN <= t[0] <= _YEAR_MAX):
        return None
    try:
        return calendar.timegm(t[:6] + (0, 0, 0)) - (t[9] or 0)
    except (ValueError, OverflowError):
        return None


def _date(msg: Message, raw: RawMessage) -> tuple[int, DateSource]:
    header = parse_date(_raw_header(msg["Date"])) if msg["Date"] is not None else None
    if header is not None:
        return header, "header"
    received = msg.get_all("Received") or []
    if received:
        stamp = parse_date(_raw_header(received[0]).rpartition(";")[2])
        if stamp is not None:
            return stamp, "received"
    if raw.envelope_date is not None:
        return raw.envelope_date, "envelope"
    if raw.mtime is not None:
        return raw.mtime, "mtime"
    return 0, "none"


def html_to_text(html: str) -> str:
    tree = HTMLParser(html)
    for node in tree.css("script, style, head"):
        node.decompose()
    body = tree.body or tree.root
    return body.text(separator=" ") if body is not None else ""


class _Walker:
    """Collects files (with IMAP section numbers) and searchable text from a MIME tree."""

    def __init__(self) -> None:
        self.files: list[Attachment] = []
        self.text: list[str] = []
        self.size = 0
        self.defects: list[str] = []

    def add_text(self, s: str) -> None:
        if self.size < MAX_TEXT:
            s = s[: MAX_TEXT - self.size]
            self.text.append(s)
            self.size += len(s)

    def walk(self, part: Message, section: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.defects.append(f"MIME tree deeper than {MAX_DEPTH}: the rest is not indexed")
            return
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if section:  # an attached message is a file, and its contents are searchable
                self._file(part, section, _message_bytes(inner))
            if isinstance(inner, Message):
                for header in ("Subject", "From"):
                    if inner[header] is not None:
                        self.add_text(decode_header_text(inner[header]))
                self._children(inner, section, depth, message_body=True)
            return
        if part.is_multipart():
            self._children(part, section, depth)
            return
        leaf = section or "1"
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if ctype in ("text/plain", "text/html") and not filename and disposition != "attachment":
            payload = _payload(part)
            text = decode_bytes(payload, part.get_content_charset())
            self.add_text(html_to_text(text) if ctype == "text/html" else text)
        else:
            self._file(part, leaf, _payload(part))

    def _children(self, part: Message, section: str, depth: int, message_body: bool = False) -> None:
        if not part.is_multipart():  # the single body of an attached message
            self.walk(part, f"{section}.1" if section else "1", depth + 1)
            return
        for i, sub in enumerate(part.get_payload(), 1):
            if len(self.files) >= MAX_FILES:
                self.defects.append(f"more than {MAX_FILES} parts: the rest is not indexed")
                return
            if isinstance(sub, Message):
                self.walk(sub, f"{section}.{i}" if section else str(i), depth + 1)

    def _file(self, part: Message, section: str, payload: bytes) -> None:
        if len(self.files) >= MAX_FILES:
            return
        name = part.get_filename()
        disposition = part.get_content_disposition()
        cid = part.get("Content-ID")
        cid = _raw_header(cid).strip() if cid is not None else None
        sniffed = None
        if payload:
            try:
                sniffed = _magic.from_buffer(payload[:SNIFF_BYTES])
            except magic.MagicException:
                sniffed = None
        self.files.append(Attachment(
            file_name=decode_header_text(name) if name else "",
            size=len(payload),
            type=part.get_content_type(),
            body_section=section,
            is_embedded=disposition == "inline" or (bool(cid) and disposition != "attachment"),
            content_disposition=disposition,
            content_id=cid,
            sniffed_type=sniffed,
        ))


def _message_bytes(msg: object) -> bytes:
    """An attached message serialised again (its size is what a client would save)."""
    if not isinstance(msg, Message):
        return b""
    try:
        return msg.as_bytes()
    except (RecursionError, LookupError, UnicodeError, ValueError, TypeError):
        return b""


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError):
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""


def _headers(record: Record, msg: Message) -> None:
    record.subject = _SPACES.sub(" ", decode_header_text(msg["Subject"])).strip() if msg["Subject"] else ""
    mid = msg["Message-ID"]
    if mid is not None:
        found = _MSGID.search(_raw_header(mid))
        record.email_message_id = found.group(0) if found else (_raw_header(mid).strip() or None)
    for role, header in _ROLES:
        values = msg.get_all(header)
        if values:
            record.addresses[role] = [a for v in values for a in _addresses(v)]
    irt = msg["In-Reply-To"]
    if irt is not None:
        found = _MSGID.search(_raw_header(irt))
        record.in_reply_to = found.group(0) if found else None
    refs = msg["References"]
    if refs is not None:
        record.references = _MSGID.findall(_raw_header(refs))
    for attr, header in (("gmail_message_id", "X-GM-MSGID"), ("gmail_thread_id", "X-GM-THRID"),
                         ("list_unsubscribe", "List-Unsubscribe"), ("list_help", "List-Help")):
        if msg[header] is not None:
            setattr(record, attr, decode_header_text(msg[header]) or None)


def parse(raw: RawMessage) -> Record:
    """Everything the index needs from one message. Never raises."""
    data = raw.data
    record = Record(message_id=message_id_for(data), sha256=sha256_hex(data), size=len(data))
    if not data.strip():
        record.date, record.date_source = raw.mtime or raw.envelope_date or 0, "mtime" if raw.mtime else "none"
        record.parse_error = "empty message"
        return record
    try:
        msg = BytesParser(policy=compat32).parsebytes(data)
    except (RecursionError, Exception) as exc:  # noqa: BLE001 - a parser bug must not lose the message
        record.parse_error = f"body unreadable ({type(exc).__name__}): indexed from headers only"
        msg = BytesHeaderParser(policy=compat32).parsebytes(data)
    try:
        _headers(record, msg)
        record.date, record.date_source = _date(msg, raw)
        walker = _Walker()
        try:
            walker.walk(msg, "", 0)
        except RecursionError:
            walker.defects.append("MIME tree too deep to walk: the rest is not indexed")
        record.files, record.text = walker.files, "\n".join(walker.text)
        record.defects = walker.defects + sorted({type(d).__name__ for d in msg.defects})
    except Exception as exc:  # noqa: BLE001
        record.parse_error = f"partly read ({type(exc).__name__}: {exc})"
    if not msg.keys() and record.parse_error is None:
        record.parse_error = "no header fields: not an RFC 822 message"
    return record
