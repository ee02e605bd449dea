"""The standard library's view of a message, for fidelity tests of mailindex.parse.

Two readings, both standard library only:
- strict: `policy.default`, each field computed separately;
- lenient: `policy.compat32`'s raw header bytes decoded by hand: RFC 2047 words by
  `email.header.decode_header`, each chunk in its declared charset (read as the
  WHATWG Encoding Standard reads the label) and, where that fails or there is
  none, 8-bit bytes as UTF-8, else windows-1252, else latin-1; addresses by
  `email.utils.getaddresses`, dates by `email.utils.parsedate_tz`, RFC 2231
  file names from their percent-decoded bytes.
A field is taken from the lenient reading where the strict one raises or loses
characters (U+FFFD or surrogate escapes), so a hostile field is still compared.
"""

from __future__ import annotations

import calendar
import datetime as dt
import mailbox
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_tz
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailindex.record import Record

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
_PARSER = BytesParser(policy=policy.default)
_COMPAT = BytesParser(policy=policy.compat32)
TEXT_TYPES = ("text/plain", "text/html")
FIELDS = ("subject", "from", "to", "cc", "date", "files")

# WHATWG Encoding Standard: labels mail writes that mean a superset on the web.
_WHATWG = {
    **dict.fromkeys(["us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1"],
                    "cp1252"),
    **dict.fromkeys(["gb2312", "gbk", "x-gbk", "cn-gb", "euc-cn", "csgb2312"], "gb18030"),
    **dict.fromkeys(["iso-8859-9", "latin5", "l5"], "cp1254"),
    **dict.fromkeys(["tis-620", "iso-8859-11", "windows-874"], "cp874"),
    **dict.fromkeys(["ks_c_5601-1987", "euc-kr", "korean"], "cp949"),
}
# Python codecs that are not charsets of mail.
_NOT_CHARSETS = {"unicode_escape", "unicode-escape", "raw_unicode_escape", "raw-unicode-escape", "idna",
                 "punycode", "undefined"}


def corpus_messages(root: Path = CORPORA) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every message file, and of every message of every mbox (`file.mbox#i`)."""
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == "README.md":
            continue
        name = p.relative_to(root).as_posix()
        if p.suffix == ".mbox":
            box = mailbox.mbox(p, create=False)
            try:
                for i, key in enumerate(box.keys()):
                    yield f"{name}#{i}", box.get_bytes(key)
            finally:
                box.close()
        else:
            yield name, p.read_bytes()


def norm(s: str) -> str:
    return " ".join(s.split())


# ---------------------------------------------------------------- lenient decoding


def eight_bit(data: bytes) -> str:
    """Bytes of no (usable) charset: UTF-8, else windows-1252, else latin-1."""
    for enc in ("utf-8", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


def in_charset(data: bytes, label: str | None) -> str:
    """Bytes in a declared charset; an unknown label or bytes invalid in it fall back to `eight_bit`."""
    name = (label or "").strip().strip('"').split("*", 1)[0].lower()  # RFC 2231 `charset*lang`
    name = _WHATWG.get(name, name)
    if name and name not in _NOT_CHARSETS:
        try:
            return data.decode(name)  # bytes.decode refuses non-text codecs (hex, rot13, ...)
        except (LookupError, UnicodeDecodeError):
            pass
    return eight_bit(data)


def _unfold(raw: bytes) -> bytes:
    return re.sub(rb"\r?\n(?=[ \t])", b"", raw).rstrip(b"\r\n")


def header_text(raw: bytes) -> str:
    """A header value's text: RFC 2047 words decoded, 8-bit bytes outside them read by `eight_bit`."""
    text = _unfold(raw).decode("latin-1")  # one character per byte, so decode_header keeps every byte
    try:
        chunks = decode_header(text)
    except (HeaderParseError, ValueError):
        return eight_bit(text.encode("latin-1"))
    out = []
    for chunk, charset in chunks:
        data = chunk.encode("latin-1") if isinstance(chunk, str) else chunk
        out.append(in_charset(data, charset) if charset else eight_bit(data))
    return "".join(out)


def _raw_fields(msg: Message, name: str) -> list[bytes]:
    """The raw bytes of every `name` field (compat32 keeps them as surrogate escapes)."""
    return [v.encode("ascii", "surrogateescape") for k, v in msg.raw_items() if k.lower() == name]


def _lenient_name(part: Message) -> str:
    """A part's file name from its raw Content-Disposition filename, else Content-Type name."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raws = _raw_fields(part, header)
        if not raws:
            continue
        probe = Message()
        probe[header] = _unfold(raws[0]).decode("latin-1")  # no surrogates: compat32 does not sanitise it
        value = probe.get_param(param, header=header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded bytes as latin-1)
            return in_charset(value[2].encode("latin-1"), value[0])
        if value:
            return header_text(value.encode("latin-1"))
    return ""


def _lenient(data: bytes) -> dict[str, Any]:
    msg = _COMPAT.parsebytes(data)
    ref: dict[str, Any] = {"subject": norm(header_text(s[0])) if (s := _raw_fields(msg, "subject")) else ""}
    for role in ("from", "to", "cc"):
        texts = [eight_bit(_unfold(raw)) for raw in _raw_fields(msg, role)]
        ref[role] = [a.lower() for _, a in getaddresses(texts) if a and a != "<>"]
    ref["date"] = None
    dates = _raw_fields(msg, "date")
    parsed = parsedate_tz(eight_bit(_unfold(dates[0]))) if dates else None
    if parsed is not None:
        stamp = calendar.timegm(parsed[:6]) - (parsed[9] or 0)  # no zone: UTC
        year = dt.datetime.fromtimestamp(stamp, dt.timezone.utc).year if -2**40 < stamp < 2**40 else 0
        ref["date"] = stamp if 1900 <= year <= 2200 else None
    files: list[tuple[str, int | None]] = []
    _files(msg, files, _lenient_name)
    ref["files"] = files
    return ref


# ---------------------------------------------------------------- both readings


def _files(part: Message, out: list[tuple[str, int | None]], name_of: Callable[[Message], str],
           depth: int = 0) -> None:
    """(name, decoded size) of every part that is a file: named, an attachment, or not text."""
    if depth > 60:
        return
    ctype = part.get_content_type()
    if part.is_multipart():
        payload = part.get_payload()
        if ctype in ("message/rfc822", "message/global"):
            name = name_of(part)
            if name or part.get_content_disposition() == "attachment":
                out.append((norm(name), None))  # size: serialised again by the stdlib, not comparable
            for inner in payload:
                _files(inner, out, name_of, depth + 1)
            return
        if part.get_content_maintype() == "multipart":
            for sub in payload:
                _files(sub, out, name_of, depth + 1)
            return
        # other message/* types with list payloads (delivery-status, external-body): files
        out.append((norm(name_of(part)), None))
        return
    name = name_of(part)
    disp = part.get_content_disposition()
    if name or disp == "attachment" or ctype not in TEXT_TYPES:
        if part.get_content_maintype() == "multipart":
            return  # a multipart with no boundary: we read it as text
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        out.append((norm(name), None if ctype.startswith("message/") else size))


def _strict(data: bytes) -> dict[str, Any]:
    """policy.default's reading; a field it raises on is left out."""
    ref: dict[str, Any] = {}
    try:
        msg = _PARSER.parsebytes(data)
    except Exception:  # noqa: BLE001
        return ref
    try:
        s = msg["subject"]
        ref["subject"] = norm(str(s)) if s is not None else ""
    except Exception:  # noqa: BLE001
        pass
    for role in ("from", "to", "cc"):
        try:
            ref[role] = [a.addr_spec.lower() for h in (msg.get_all(role) or []) for a in h.addresses
                         if a.addr_spec and a.addr_spec != "<>"]
        except Exception:  # noqa: BLE001
            pass
    try:
        h = msg["date"]
        d = h.datetime if h is not None else None
        if d is not None:
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.timezone.utc)
            ref["date"] = int(d.timestamp()) if 1900 <= d.astimezone(dt.timezone.utc).year <= 2200 else None
        else:
            ref["date"] = None
    except Exception:  # noqa: BLE001
        pass
    try:
        files: list[tuple[str, int | None]] = []
        _files(msg, files, lambda part: str(part.get_filename() or ""))
        ref["files"] = files
    except Exception:  # noqa: BLE001
        pass
    return ref


def lossy(value: object) -> bool:
    """Whether a strict value lost characters: U+FFFD or a surrogate escape anywhere in it."""
    if isinstance(value, str):
        return "\ufffd" in value or any("\udc80" <= c <= "\udcff" for c in value)
    if isinstance(value, (list, tuple)):
        return any(lossy(v) for v in value)
    return False


@dataclass(frozen=True)
class Reading:
    """The reference values of one message, and which fields came from the lenient reading."""

    values: dict[str, Any]
    lenient: frozenset[str] = field(default_factory=frozenset)


def reference(data: bytes) -> Reading:
    """subject, from/to/cc emails, date (None: unparseable) and [(file name, decoded size)]: the strict
    reading, with the lenient one wherever the strict one raised or lost characters."""
    strict = _strict(data)
    weak = {f for f in FIELDS if f not in strict or lossy(strict[f])}
    if not weak:
        return Reading(strict)
    lenient = _lenient(data)
    return Reading({**strict, **{f: lenient[f] for f in weak}}, frozenset(weak))


def ours(rec: Record) -> dict[str, Any]:
    """The same fields from a Record, in the reference's shape."""
    return {
        "subject": norm(rec.subject),
        "from": rec.emails("from"),
        "to": rec.emails("to"),
        "cc": rec.emails("cc"),
        "date": rec.date if rec.date_source == "header" else None,
        "files": [(norm(f.file_name), None if f.type.startswith("message/") else f.size)
                  for f in rec.files],
    }


def differences(rec: Record, expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """field -> (ours, expected) for every field that disagrees."""
    mine = ours(rec)
    return {k: (mine[k], v) for k, v in expected.items() if mine[k] != v}
