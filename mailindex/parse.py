"""Parse one message's exact bytes into a Record. `parse()` never raises, whatever the bytes.

Design (speed first, stdlib as the safety net):

* **Headers** are read straight from the raw header block (`parse_headers`):
  only the fields a Record needs, decoded by our own code so raw 8-bit bytes
  and encoded-words split inside a character survive.
* **Body structure** comes from fast-mail-parser's MIME tree in lazy mode
  (leaves decoded on first access, so one bad part cannot fail the others, and
  the tree gives IMAP part numbers). When that result is known to be lossy --
  the fast parser rejects the message, a part's transfer encoding does not
  decode strictly (e.g. base64 without padding), a multipart has no parts
  (missing boundary), a file name decoded to U+FFFD, uuencode, an empty
  attachment (usually a part whose blank line after its headers is missing,
  which the fast parser reads as all headers) -- the body is
  parsed again with the stdlib `compat32` parser, which decodes leniently.
  The switch is listed in `defects` as ``"fallback: <reason>"``. Its header
  values are read from their raw bytes like the top-level headers (compat32
  itself replaces 8-bit bytes by U+FFFD).

Choices the Context.IO notes leave open:

* `files` holds every leaf part that has a file name, or is
  ``Content-Disposition: attachment``, or is anything other than text/plain
  or text/html -- nameless attachments included, with ``file_name ""``.
  Parts of attached message/rfc822 messages count too, and so does the
  attached message itself when it has a file name or is declared
  ``attachment`` (a forwarded ``.eml``; its size is its decoded bytes).
* `is_embedded` is true for a part shown inside the body rather than offered
  as a download: it has a Content-ID and is not declared ``attachment``, or it
  is an ``inline`` image.
* `sniffed_type` is libmagic's MIME type of the first 2 KiB, except for a part
  declared ``text/*`` whose first 2 KiB are UTF-8 text without binary control
  bytes: that declaration is confirmed as is (libmagic needs ~0.5 ms per text
  part just to name a dialect such as text/x-diff).
* `content_id` is kept as in the header (angle brackets included), stripped;
  `content_disposition` is ``"inline"``, ``"attachment"`` or None (an
  unrecognised disposition token counts as absent, so a text part with a
  garbled disposition stays searchable).
* `text` holds every text/plain and text/html part not declared
  ``attachment`` (HTML reduced to text, script/style dropped), and for each
  attached message its Subject/From/To/Cc then its text. It is capped at
  `MAX_TEXT_CHARS`.
* `attachment_text` holds what `mailindex.attachment_text` extracts from each file of a kind it reads
  (PDF, Office and OpenDocument, RTF, text/*), attached messages' files included, capped at
  `attachment_text.MAX_MESSAGE_CHARS` for the message; each file's `text_extracted` says how it went.
  A text part whose text went into `text` (not declared ``attachment``, but named) is not read again.
* A message with no header fields at all, or that is empty, gets a
  `parse_error`, as does one whose MIME tree is cut at `MAX_PARTS` parts or
  `MAX_DEPTH` levels (the rest is still returned).
* `email_message_id`: the first ``<...>`` token with whitespace removed; a bare
  single token is wrapped in brackets.
"""

from __future__ import annotations

import binascii
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32

import fast_mail_parser as _fmp

from mailindex import attachment_text
from mailindex.html_text import MAX_HTML_BYTES, html_to_text
from mailindex.parse_headers import (
    MAX_HEADER_VALUE,
    all_msgids,
    b64decode_lenient,
    bytes_to_str,
    decode_text,
    decode_words,
    field_text,
    first_msgid,
    first_received,
    has_header_fields,
    header_block,
    header_text,
    parse_addresses,
    parse_date,
    raw_headers,
    received_date,
    trim_utf8_tail,
    valid_text,
)
from mailindex.identity import message_id_for, sha256_hex
from mailindex.record import ADDRESS_ROLES, Attachment, Record
from mailindex.sources.base import RawMessage

__all__ = ["parse", "MAX_PARTS", "MAX_DEPTH", "MAX_TEXT_CHARS", "html_to_text"]

MAX_PARTS = 10_000  # MIME nodes walked per message; the rest is dropped (parse_error + defect)
MAX_DEPTH = 100  # nesting of multiparts and attached messages
MAX_TEXT_CHARS = 1 << 20  # searchable text kept per message
SNIFF_BYTES = 2048
MAX_DEFECTS = 40
MAX_ADDRESSES = 10_000  # per role
MAX_ENCODED_WORDS = 5_000  # more "=?" than this in a message: skip the fast parser (hostile headers)

_ROLE_HEADERS = ((b"from", "from"), (b"to", "to"), (b"cc", "cc"), (b"bcc", "bcc"),
                 (b"reply-to", "reply_to"), (b"sender", "sender"))
assert tuple(r for _, r in _ROLE_HEADERS) == ADDRESS_ROLES
_CHARSET = re.compile(r"""charset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;"']+))""", re.I)
_NESTED_TEXT_HEADERS = ("subject", "from", "to", "cc")
_BACKSLASH = re.compile(r"\\(.)")


class _Lossy(Exception):
    """The fast parser's view of this message loses information: use the stdlib path."""


class _Stop(Exception):
    """A resource cap was hit: stop walking, keep what was read."""


class _RawCompat32(Compat32):
    """compat32 that hands out header values as parsed (8-bit bytes as surrogate escapes) instead of
    `Header` objects whose text has U+FFFD for them: file names and nested headers are decoded from
    the bytes, and an 8-bit boundary still matches the body lines."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_COMPAT32 = _RawCompat32()


# ---------------------------------------------------------------- helpers

_magic = None
_BINARY_CTRL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def _sniff(content: bytes, declared: str) -> str | None:
    global _magic
    if not content:
        return None
    head = content[:SNIFF_BYTES]
    if declared.startswith("text/") and _BINARY_CTRL.search(head) is None:
        # Declared text and it is text (no binary control bytes, and ASCII or UTF-8):
        # libmagic would spend ~0.5 ms to name a text dialect; the declaration is confirmed.
        try:
            trim_utf8_tail(head).decode("utf-8")
            return declared
        except UnicodeDecodeError:
            pass
    try:
        if _magic is None:
            import magic

            _magic = magic.Magic(mime=True)
        return _magic.from_buffer(head) or None
    except Exception:  # noqa: BLE001 - libmagic failures must not fail the message
        return None


def _charset(ctype_value: str | None) -> str | None:
    if not ctype_value or "harset" not in ctype_value:
        return None
    m = _CHARSET.search(ctype_value)
    if m is None:
        return None
    return m.group(1) or m.group(2) or m.group(3)


def _hget(headers: dict[str, list[str]], lname: str) -> str | None:
    """First value of a header in a fast-mail-parser headers dict, case-insensitively."""
    for k, v in headers.items():
        if k.lower() == lname and v:
            return v[0]
    return None


def _exc_text(exc: BaseException) -> str:
    """An exception as a short defect or parse_error text (its message may carry escaped bytes)."""
    return valid_text(f"{type(exc).__name__}: {str(exc)[:80]}")


def _disposition(token: str | None) -> str | None:
    if not token:
        return None
    t = token.strip().lower()
    if t == "inline" or t == "attachment":
        return t
    return None  # an unrecognised token (e.g. an encoded-word): as if the header were absent


class _State:
    __slots__ = ("files", "texts", "room", "file_texts", "file_room", "defects", "nodes", "error", "data",
                 "_lf_only")

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self._lf_only: bool | None = None
        self.files: list[Attachment] = []
        self.texts: list[str] = []
        self.room = MAX_TEXT_CHARS
        self.file_texts: list[str] = []  # text extracted from attachments (Record.attachment_text)
        self.file_room = attachment_text.MAX_MESSAGE_CHARS
        self.defects: list[str] = []
        self.nodes = 0
        self.error: str | None = None

    def lf_only(self) -> bool:
        """The message uses bare LF line ends (computed once, on demand)."""
        if self._lf_only is None:
            self._lf_only = self.data.find(b"\r\n") < 0
        return self._lf_only

    def defect(self, note: str) -> None:
        if note not in self.defects and len(self.defects) < MAX_DEFECTS:
            self.defects.append(note)

    def count(self, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_PARTS:
            self.error = f"more than {MAX_PARTS} MIME parts: the rest was not read"
            self.defect(f"part cap: only the first {MAX_PARTS} MIME parts read")
            raise _Stop
        if depth > MAX_DEPTH:
            self.error = f"MIME nesting deeper than {MAX_DEPTH}: inner parts not read"
            self.defect(f"depth cap: nesting cut at {MAX_DEPTH} levels")
            raise _Stop

    def add_text(self, content: bytes, charset: str | None, html: bool) -> None:
        if self.room <= 0:
            self.defect("text cap reached: text truncated")
            return
        limit = MAX_HTML_BYTES if html else self.room * 4
        cut = len(content) > limit
        if cut:
            content = trim_utf8_tail(content[:limit])
        text = decode_text(content, charset, self.defects)
        if html:
            text = html_to_text(text)
        if len(text) > self.room:
            text = text[: self.room]
            cut = True
        if cut:
            self.defect("text cap reached: text truncated")
        self.room -= len(text) + 1
        self.texts.append(text)

    def add_str(self, text: str) -> None:
        if text and self.room > 0:
            text = text[: self.room]
            self.room -= len(text) + 1
            self.texts.append(text)

    def add_file(self, content: bytes, fname: str, ctype: str, section: str, disp: str | None,
                 cid: str | None, charset: str | None = None, in_text: bool = False) -> None:
        """One attachment, its text extracted unless `in_text` (a text part whose text is in `texts`)."""
        embedded = (cid is not None and disp != "attachment") or (disp == "inline" and ctype.startswith("image/"))
        sniffed = _sniff(content, ctype)
        status: bool | str | None = True if in_text else None
        reason = None
        if not in_text:
            got = attachment_text.extract(content, ctype, sniffed, fname, charset, self.file_room)
            if got is not None:
                status, reason = got.status, got.reason
                if got.text:
                    self.file_texts.append(got.text)
                    self.file_room -= len(got.text) + 1
        self.files.append(Attachment(fname, len(content), ctype, section, embedded, disp, cid, sniffed,
                                     status, reason))


_C1 = re.compile("[\x80-\x9f]")


def _fmp_text(value: str) -> str:
    """A fast-mail-parser header string decoded as ours are: it reads 8-bit bytes that are not UTF-8 as
    latin-1, where `bytes_to_str` reads cp1252 (C1 control characters are the tell)."""
    if value.isascii() or _C1.search(value) is None:
        return value
    try:
        return bytes_to_str(value.encode("latin-1"))[0]
    except UnicodeEncodeError:  # characters beyond latin-1: not a latin-1 reading
        return value


def _clean_filename(name: str | None) -> str:
    if not name:
        return ""
    name = name[:MAX_HEADER_VALUE]
    if "=?" in name:
        name = decode_words(name)
    # a byte order mark is no part of a name (fast-mail-parser keeps a utf-16 encoded-word's)
    return name.lstrip("\ufeff").strip()


# ---------------------------------------------------------------- fast path (fast-mail-parser tree)


def _fast_message(st: _State, root: _fmp.PyLazyMimePart, prefix: str, depth: int,
                  root_ctype: str | None = None) -> None:
    """Walk one message (top level or attached) whose parts are numbered under `prefix`."""
    if root.content_type.startswith("multipart/") and not root.is_message:
        _fast_node(st, root, prefix, depth, root_ctype)
    else:
        _fast_node(st, root, f"{prefix}.1" if prefix else "1", depth, root_ctype)


def _fast_node(st: _State, node: _fmp.PyLazyMimePart, num: str, depth: int, ctype_value: str | None) -> None:
    st.count(depth)
    ctype = node.content_type
    if node.is_message:
        kids = node.children
        if kids:
            disp = _disposition(node.disposition)
            if node.filename or disp == "attachment":  # a forwarded .eml is also a file
                _fast_file(st, node, num, ctype, disp)
            inner = kids[0]
            _nested_headers_fast(st, inner.headers)
            _fast_message(st, inner, num, depth + 1)
            return
    elif ctype.startswith("multipart/"):
        kids = node.children
        if not kids:
            raise _Lossy("multipart without parts")
        prefix = f"{num}." if num else ""
        for i, kid in enumerate(kids, 1):
            _fast_node(st, kid, f"{prefix}{i}", depth + 1, None)
        return
    _fast_leaf(st, node, num, ctype, ctype_value)


def _fast_leaf(st: _State, node: _fmp.PyLazyMimePart, num: str, ctype: str, ctype_value: str | None) -> None:
    if "/" not in ctype:
        ctype = "text/plain"  # RFC 2045 5.2: an invalid Content-Type means text/plain
    disp = _disposition(node.disposition)
    fname = node.filename
    is_text = (ctype == "text/plain" or ctype == "text/html") and disp != "attachment"
    try:
        content = node.content or b""
    except _fmp.ParseError as exc:
        raise _Lossy(f"part {num}: {str(exc)[:80]}") from None
    if is_text:
        if ctype_value is None:
            ctype_value = _hget(node.headers, "content-type")
        st.add_text(content, _charset(ctype_value), ctype == "text/html")
        if not fname:
            return
    _fast_file(st, node, num, ctype, disp, content, is_text)


def _fast_file(st: _State, node: _fmp.PyLazyMimePart, num: str, ctype: str, disp: str | None,
               content: bytes | None = None, in_text: bool = False) -> None:
    fname = node.filename
    if fname:
        if "\ufffd" in fname:
            raise _Lossy(f"part {num}: file name not decodable")
        if fname[0] == '"':  # it decodes encoded-words before splitting parameters: a decoded ';' cut the name
            raise _Lossy(f"part {num}: file name cut")
        if "\\" in fname:
            fname = _BACKSLASH.sub(r"\1", fname)
        fname = _clean_filename(_fmp_text(fname))
    headers = node.headers
    cte = _hget(headers, "content-transfer-encoding")
    if cte is not None:
        cte = cte.strip().lower()
        if "uu" in cte:
            raise _Lossy(f"part {num}: uuencoded")
    if content is None:
        try:
            content = node.content or b""
        except _fmp.ParseError as exc:
            raise _Lossy(f"part {num}: {str(exc)[:80]}") from None
    if not content and not node.is_message:
        # Usually a part whose header/body separator is missing: the fast parser reads its body
        # as headers; the stdlib reads it as body. (A truly empty file costs one slower parse.)
        raise _Lossy(f"part {num}: empty")
    if cte == "quoted-printable" and b"\r\n" in content and st.lf_only():
        content = content.replace(b"\r\n", b"\n")  # the fast decoder writes CRLF; keep the message's LF
    cid = _hget(headers, "content-id")
    if cid is None:
        cid = node.content_id  # (without brackets: the fast parser's form, used only if the header is odd)
    else:
        cid = _fmp_text(cid.strip()) or None
    charset = _charset(_hget(headers, "content-type")) if ctype.startswith("text/") else None
    st.add_file(content, fname, ctype, num, disp, cid, charset, in_text)


def _nested_headers_fast(st: _State, headers: dict[str, list[str]]) -> None:
    for name in _NESTED_TEXT_HEADERS:
        value = _hget(headers, name)
        if value:
            st.add_str(_fmp_text(value.strip()))


# ---------------------------------------------------------------- stdlib path (compat32)


def _raw_payload(part: Message) -> object:
    """The payload as parsed (get_payload() would copy); by getattr, as typeshed leaves `_payload` out."""
    return getattr(part, "_payload")


def _std_message(st: _State, root: Message, prefix: str, depth: int, raw: bytes | None = None) -> None:
    """Walk one parsed message; `raw` is its bytes when known (for the size of an attached message)."""
    if root.get_content_maintype() == "multipart" and isinstance(_raw_payload(root), list):
        _std_node(st, root, prefix, depth, raw)
    else:
        _std_node(st, root, f"{prefix}.1" if prefix else "1", depth, raw)


# Where compat32's feedparser ends a header block (its headerRE), and its delimiter lines: the raw bytes
# of parts are cut as it cuts them, so an attached message keeps its size in bytes rather than the size
# of compat32's re-serialisation (refolded headers, LF line ends, added close delimiters).
_STD_HEADERS = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[\t ])[^\r\n]*(?:\r\n|\r|\n|\Z))*")
_LINE_END = re.compile(rb"(?:\r\n|\r|\n)\Z")


def _raw_body(entity: bytes) -> bytes:
    """The body of an entity's raw bytes: after its header block and the blank line ending it."""
    end = _STD_HEADERS.match(entity).end()  # type: ignore[union-attr]
    blank = re.match(rb"\r\n|\r|\n", entity[end:end + 2])
    return entity[end + blank.end():] if blank else entity[end:]


def _raw_parts(entity: bytes, boundary: str | None, count: int) -> list[bytes | None]:
    """The raw bytes of a multipart entity's `count` parts, cut as the feedparser cuts them (consecutive
    delimiter lines are one; the line end before a delimiter is the delimiter's); None each if they differ."""
    unknown: list[bytes | None] = [None] * count
    try:
        sep = b"--" + boundary.encode("ascii", "surrogateescape")  # type: ignore[union-attr]
    except (AttributeError, UnicodeEncodeError):
        return unknown
    body = _raw_body(entity)
    lines = re.compile(rb"(?:^|(?<=[\r\n]))" + re.escape(sep) + rb"(--)?[ \t]*(?:\r\n|\r|\n|\Z)")
    parts: list[bytes | None] = []
    start = None
    for m in lines.finditer(body):
        if start is not None and m.start() > start:
            parts.append(_LINE_END.sub(b"", body[start:m.start()], 1))
        if m.group(1):
            start = None
            break
        start = m.end()
    if start is not None:
        parts.append(body[start:])  # no close delimiter: the last part runs to the end
    return parts if len(parts) == count else unknown


def _std_defects(st: _State, part: Message) -> None:
    for d in part.defects:
        st.defect(type(d).__name__)


def _std_node(st: _State, part: Message, num: str, depth: int, raw: bytes | None = None) -> None:
    st.count(depth)
    _std_defects(st, part)
    ctype = valid_text(part.get_content_type())
    payload = _raw_payload(part)
    if isinstance(payload, list):
        if ctype == "message/rfc822" or ctype == "message/global":
            if payload and isinstance(payload[0], Message):
                cte = str(part.get("content-transfer-encoding", "")).strip().lower()
                if cte == "base64" or cte == "quoted-printable":
                    # compat32 parses the still-encoded text as a message: decode it, then parse
                    raw = _raw_body(raw) if raw is not None else _message_bytes(payload[0])
                    raw = b64decode_lenient(raw) if cte == "base64" else binascii.a2b_qp(raw)
                    _std_attached(st, part, BytesParser(policy=_COMPAT32).parsebytes(raw), raw, num, ctype, depth)
                else:
                    _std_attached(st, part, payload[0], None if raw is None else _raw_body(raw), num, ctype,
                                  depth)
                return
        elif part.get_content_maintype() == "multipart":
            prefix = f"{num}." if num else ""
            raws = _raw_parts(raw, part.get_boundary(), len(payload)) if raw is not None else [None] * len(payload)
            for i, (kid, kid_raw) in enumerate(zip(payload, raws), 1):
                _std_node(st, kid, f"{prefix}{i}", depth + 1, kid_raw)
            return
        # message/delivery-status and other message/* types: the header blocks are the content
        content = b"\n".join(p.as_bytes() for p in payload if isinstance(p, Message))
        _std_file(st, part, content, num, ctype)
        return
    if part.get_content_maintype() == "multipart":
        ctype = "text/plain"  # no boundary / boundary never found: the body is plain text
    content = _std_content(part)
    disp = _disposition(part.get_content_disposition())
    fname = _std_filename(st, part)
    is_text = (ctype == "text/plain" or ctype == "text/html") and disp != "attachment"
    if is_text:
        try:
            cs = part.get_content_charset()
        except Exception:  # noqa: BLE001
            cs = None
        st.add_text(content, cs, ctype == "text/html")
        if not fname:
            return
    _std_file(st, part, content, num, ctype, fname, disp, is_text)


def _std_attached(st: _State, part: Message, inner: Message, content: bytes | None, num: str, ctype: str,
                  depth: int) -> None:
    fname = _std_filename(st, part)
    disp = _disposition(part.get_content_disposition())
    if fname or disp == "attachment":  # a forwarded .eml is also a file
        _std_file(st, part, _message_bytes(inner) if content is None else content, num, ctype, fname, disp)
    for name in _NESTED_TEXT_HEADERS:
        v = inner.get(name)
        if v is not None:
            st.add_str(field_text(_parsed_bytes(v)))
    _std_message(st, inner, num, depth + 1, content)


def _message_bytes(msg: Message) -> bytes:
    try:
        return msg.as_bytes()
    except Exception:  # noqa: BLE001 - RecursionError, LookupError, ... on broken nested mail
        return b""


def _std_content(part: Message) -> bytes:
    try:
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
        payload = _raw_payload(part)
        if cte == "base64" and isinstance(payload, str):
            return b64decode_lenient(payload.encode("ascii", "surrogateescape"))
        content = part.get_payload(decode=True)
        return content if isinstance(content, bytes) else b""
    except Exception:  # noqa: BLE001
        return b""


def _parsed_bytes(value: object) -> bytes:
    """A header value of a parsed compat32 message as its raw bytes (8-bit bytes are surrogate escapes)."""
    return str(value).encode("ascii", "surrogateescape")


def _std_filename(st: _State, part: Message) -> str:
    """A part's file name as `Message.get_filename` finds it, decoded like ours: an RFC 2231 value in its
    declared charset (`decode_text`, which notes a fallback), 8-bit bytes per `bytes_to_str`."""
    try:
        name = part.get_param("filename", None, "content-disposition")
        if name is None:
            name = part.get_param("name")
        if isinstance(name, tuple):  # RFC 2231: (charset, language, bytes as latin-1 or escaped chars)
            charset, _, text = name
            name = decode_text(text.encode("latin-1", "surrogateescape"), charset, st.defects)
    except Exception:  # noqa: BLE001
        return ""
    if not name:
        return ""
    return _clean_filename(valid_text(str(name)))


def _std_file(st: _State, part: Message, content: bytes, num: str, ctype: str, fname: str | None = None,
              disp: str | None = None, in_text: bool = False) -> None:
    if fname is None:
        fname = _std_filename(st, part)
        disp = _disposition(part.get_content_disposition())
    cid = part.get("content-id")
    if cid is not None:
        cid = " ".join(valid_text(str(cid)).split()) or None
    charset = None
    if ctype.startswith("text/"):
        try:
            charset = part.get_content_charset()
        except Exception:  # noqa: BLE001
            pass
    st.add_file(content, fname, ctype, num, disp, cid, charset, in_text)


# ---------------------------------------------------------------- parse


def _headers_into(rec: Record, data: bytes) -> tuple[str | None, bool]:
    """Fill the header-derived fields. Returns (Content-Type value, whether any header field was found)."""
    block, defects = header_block(data)
    rec.defects.extend(defects)
    heads = raw_headers(block)
    eight = False
    first = heads.get
    v = first(b"subject")
    if v:
        rec.subject, e = header_text(v[0])
        eight |= e
    v = first(b"message-id")
    if v:
        rec.email_message_id = first_msgid(bytes_to_str(v[0])[0])
    for key, role in _ROLE_HEADERS:
        values = first(key)
        if values is not None:
            found = []
            for raw in values:
                s, e = bytes_to_str(raw)
                eight |= e
                found.extend(parse_addresses(s))
            if len(found) > MAX_ADDRESSES:
                del found[MAX_ADDRESSES:]
                rec.defects.append(f"more than {MAX_ADDRESSES} addresses in {role}: cut")
            rec.addresses[role] = found
    v = first(b"in-reply-to")
    if v:
        rec.in_reply_to = first_msgid(bytes_to_str(v[0])[0])
    v = first(b"references")
    if v:
        rec.references = all_msgids(" ".join(bytes_to_str(x)[0] for x in v))
    v = first(b"x-gm-msgid")
    if v:
        rec.gmail_message_id = bytes_to_str(v[0])[0].strip() or None
    v = first(b"x-gm-thrid")
    if v:
        rec.gmail_thread_id = bytes_to_str(v[0])[0].strip() or None
    v = first(b"list-unsubscribe")
    if v:
        rec.list_unsubscribe = header_text(v[0])[0]
    v = first(b"list-help")
    if v:
        rec.list_help = header_text(v[0])[0]
    if eight:
        rec.defects.append("8-bit header bytes")
    date = None
    v = first(b"date")
    if v:
        date = parse_date(bytes_to_str(v[0])[0])
        if date is None:
            rec.defects.append("unparseable Date header")
    if date is not None:
        rec.date, rec.date_source = date, "header"
    else:
        received = first_received(block)
        date = received_date(bytes_to_str(received)[0]) if received else None
        if date is not None:
            rec.date, rec.date_source = date, "received"
    ct = first(b"content-type")
    return (bytes_to_str(ct[0])[0] if ct else None), has_header_fields(block)


def _date_fallback(rec: Record, raw: RawMessage) -> None:
    if rec.date_source != "none":
        return
    for value, source in ((raw.envelope_date, "envelope"), (raw.mtime, "mtime")):
        if value is not None:
            try:
                rec.date, rec.date_source = int(value), source  # type: ignore[assignment]
                return
            except (TypeError, ValueError, OverflowError):
                continue


def _body_into(rec: Record, data: bytes, ctype_value: str | None) -> None:
    st = _State(data)
    try:
        try:
            if data.count(b"=?") > MAX_ENCODED_WORDS:
                raise _Lossy("too many encoded-words for the fast parser (its header decoding is quadratic)")
            if data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            tree = _fmp.parse_email_tree(data, mode="lazy")
            _fast_message(st, tree, "", 0, ctype_value)
        except _Stop:
            pass
    except (_Lossy, _fmp.ParseError, ValueError, TypeError) as exc:
        reason = str(exc) if isinstance(exc, _Lossy) else _exc_text(exc)
        st = _State(data)
        st.defect(f"fallback: {reason}")
        try:
            msg = BytesParser(policy=_COMPAT32).parsebytes(data)
            try:
                _std_message(st, msg, "", 0, data)
            except _Stop:
                pass
        except RecursionError:
            st.error = st.error or "MIME structure too deep to read"
        except Exception as exc2:  # noqa: BLE001 - keep the headers, report the body as unreadable
            st.error = st.error or f"body unreadable: {_exc_text(exc2)}"
    rec.files = st.files
    rec.text = "\n".join(st.texts)
    rec.attachment_text = "\n".join(st.file_texts)
    for d in st.defects:
        if d not in rec.defects and len(rec.defects) < MAX_DEFECTS:
            rec.defects.append(d)
    if st.error and not rec.parse_error:
        rec.parse_error = st.error


def parse(raw: RawMessage) -> Record:
    """Everything mailindex learns from one message's bytes. Never raises."""
    data = raw.data
    if not isinstance(data, bytes):
        try:
            data = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
        except Exception:  # noqa: BLE001
            data = b""
    rec = Record(message_id=message_id_for(data), sha256=sha256_hex(data), size=len(data))
    try:
        if not data.strip():
            rec.parse_error = "empty message"
        else:
            ctype_value, has_fields = _headers_into(rec, data)
            if not has_fields:
                rec.parse_error = "no header fields: not a mail message?"
            if has_fields or b"\x00" not in data[:8192]:
                _body_into(rec, data, ctype_value)
            else:
                rec.defects.append("binary data without headers: body not read")
    except Exception as exc:  # noqa: BLE001 - the contract: a Record, whatever the bytes
        rec.parse_error = rec.parse_error or f"parser failure: {_exc_text(exc)}"
    _date_fallback(rec, raw)
    if raw.gmail_ids:  # a Gmail server's X-GM-MSGID / X-GM-THRID, given beside the bytes
        rec.gmail_message_id = rec.gmail_message_id or raw.gmail_ids[0] or None
        rec.gmail_thread_id = rec.gmail_thread_id or raw.gmail_ids[1] or None
    return rec
