"""Context.IO shapes: the message object, its files, body parts, headers and flags."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mailindex.identity import file_id_for
from mailindex.rfc822 import header_end
from mailindex.folders import FLAG_NAMES

if TYPE_CHECKING:
    from email.message import Message

    from mailindex.record import Attachment, Record

_DATE_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2}[-_.]?(?:0[1-9]|1[0-2])[-_.]?(?:0[1-9]|[12]\d|3[01]))(?!\d)")
_BOUNDARY = re.compile(r"(\s*[-_–]\s*|\s+)")


@functools.lru_cache(maxsize=4096)  # the same correspondents recur on every page
def thumbnail(address: str) -> str:
    """Gravatar URL for an address (computed; nothing is fetched)."""
    import hashlib

    return f"https://secure.gravatar.com/avatar/{hashlib.md5(address.lower().encode()).hexdigest()}?s=50"


def file_name_structure(name: str) -> list[list[str]]:
    """Split a file name into [text, tag] parts: main, boundary, date, ext.

    "ContextIO - Overview - 20111016.pdf" ->
    [["ContextIO - Overview","main"],[" - ","boundary"],["20111016","date"],[".pdf","ext"]]
    """
    return [list(part) for part in _name_parts(name)]


@functools.lru_cache(maxsize=4096)  # names recur (image001.png, invoice.pdf) on every page
def _name_parts(name: str) -> tuple[tuple[str, str], ...]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or " " in ext or len(ext) > 10:
        stem, ext = name, ""
    parts: list[tuple[str, str]] = []
    m = None
    for m in _DATE_IN_NAME.finditer(stem):
        pass
    if m and m.end() == len(stem) and m.start() > 0:
        head, date = stem[: m.start()], m.group(1)
        b = _BOUNDARY.search(head + "\0", len(head.rstrip(" -_–")))
        main, sep = (head[: b.start()], head[b.start():]) if b and b.start() < len(head) else (head, "")
        if main:
            parts.append((main, "main"))
        if sep:
            parts.append((sep, "boundary"))
        parts.append((date, "date"))
    elif stem:
        parts.append((stem, "main"))
    if ext:
        parts.append(("." + ext, "ext"))
    return tuple(parts)


def file_dict(message_id: str, f: Attachment) -> dict[str, Any]:
    """One `files[]` entry; for a kind whose text is extracted, whether it was (and if not, why)."""
    out = {
        "size": f.size,
        "type": f.type,
        "file_name": f.file_name,
        "file_name_structure": file_name_structure(f.file_name),
        "body_section": f.body_section,
        "file_id": file_id_for(message_id, f.body_section),
        "is_embedded": f.is_embedded,
        "content_disposition": f.content_disposition,
        "content_id": f.content_id,
        "sniffed_type": f.sniffed_type,
    }
    if f.text_extracted is not None:
        out["text_extracted"] = f.text_extracted
        if f.text_extracted is not True:
            out["text_reason"] = f.text_reason
    return out


def person_info(records: Iterable[Record]) -> dict[str, dict[str, str]]:
    """`{email: {thumbnail}}` for every address the messages name, first seen first."""
    return _person_info(a.email for r in records for addrs in r.addresses.values() for a in addrs)


def _person_info(emails: Iterable[str]) -> dict[str, dict[str, str]]:
    return {e: {"thumbnail": thumbnail(e)} for e in dict.fromkeys(emails) if e}


_OPTIONAL = ("gmail_message_id", "gmail_thread_id", "list_help", "list_unsubscribe", "parse_error")


def message_dict(fields: Mapping[str, Any], *, date_indexed: int, folders: list[str],
                 sources: list[dict[str, str]], raw_file_list: bool = True) -> dict[str, Any]:
    """The Context.IO message object (without the include_* parts) of a stored record's fields
    (`mailindex.index.store.decode_record_fields`: no Record is made, so a page of 100 costs ~1 ms);
    without `raw_file_list`, signature images and other small inline images are left out of `files`."""
    addresses: dict[str, Any] = {}
    for role, pairs in fields["addresses"].items():
        if pairs:
            shown = [{"email": email, "name": name} if name else {"email": email} for email, name in pairs]
            addresses[role] = shown[0] if role in ("from", "sender") else shown
    message_id = fields["message_id"]
    files: list[Attachment] = []
    if fields["files"]:
        from mailindex.record import Attachment  # here: a count loads no Record classes

        files = [Attachment(*f) for f in fields["files"]]
    out: dict[str, Any] = {
        "date": fields["date"],
        "date_indexed": date_indexed,
        "addresses": addresses,
        "person_info": _person_info(email for pairs in fields["addresses"].values() for email, _ in pairs),
        "email_message_id": fields["email_message_id"],
        "message_id": message_id,
        "files": [file_dict(message_id, f) for f in files if raw_file_list or not f.is_signature_image],
        "subject": fields["subject"],
        "folders": folders,
        "sources": sources,
    }
    for key in _OPTIONAL:
        if fields[key]:
            out[key] = fields[key]
    return out


def _decode_text(payload: bytes, charset: str | None) -> tuple[str, str]:
    """The part's text and the charset that read it: the declared one, else the parser's fallback."""
    from mailindex.parse_headers import codec_for, decode_text  # as body_parts: only a body needs them

    fallback: list[str] = []
    text = decode_text(payload, charset, fallback)
    if not fallback:
        return text, charset if charset and codec_for(charset)[0] else "us-ascii"
    for cs in ("utf-8", "cp1252"):
        try:
            payload.decode(cs)
            return text, cs
        except UnicodeDecodeError:
            continue
    return text, "latin-1"


def source_text(raw: bytes) -> str:
    """A message's bytes as a JSON-safe string: UTF-8 when they are valid UTF-8, else latin-1, one
    character per byte, so `text.encode("latin-1")` gives the exact bytes back."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def body_parts(raw: bytes, body_type: str | None = None) -> list[dict[str, str]]:
    """Text parts (never attachments): [{type, charset, content, body_section}].

    Sections are numbered like the parser numbers `files` (IMAP style: "1", "1.2"), so a
    message's body parts and attachments never share a number.
    """
    import email  # the standard library's parser costs a listing that shows no body ~10 ms to import
    import email.policy

    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out: list[dict[str, str]] = []

    def walk(part: Message, section: str) -> None:
        if part.get_content_maintype() == "message":
            return  # an attached message: its text belongs to that attachment, as in `files`
        if part.is_multipart():
            for i, sub in enumerate(part.get_payload(), 1):
                walk(sub, f"{section}.{i}" if section else str(i))
            return
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or part.get_filename() \
                or (part.get("Content-Disposition", "").lower().startswith("attachment")):
            return
        if body_type and ctype != body_type:
            return
        payload = part.get_payload(decode=True) or b""
        assert isinstance(payload, bytes), "a part that is not multipart decodes to bytes"
        content, charset = _decode_text(payload, part.get_content_charset())
        out.append({"type": ctype, "charset": charset, "content": content, "body_section": section or "1"})

    walk(msg, "")
    return out


def header_block(raw: bytes) -> str:
    """The header block exactly as in the source (decoded as latin-1 when not UTF-8)."""
    end = header_end(raw)
    head = raw if end is None else raw[:end].removesuffix(b"\n").removesuffix(b"\r")
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        return head.decode("latin-1")


def flags_dict(flags: frozenset[str]) -> dict[str, bool]:
    """The Context.IO flags object: every flag name, true or false."""
    return {name: name in flags for name in (*FLAG_NAMES, "nonjunk")}
