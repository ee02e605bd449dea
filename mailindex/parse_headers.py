"""Header-level decoding for the parser: raw header block, RFC 2047 words, charsets, dates, addresses.

Everything here works on what the bytes say, without the stdlib's message
objects, because that is both faster and less lossy on real mail:

* 8-bit header bytes are read as UTF-8, else windows-1252, else latin-1 (the
  stdlib's `policy.default` turns latin-1 bytes into U+FFFD);
* adjacent encoded-words in one charset are joined *before* decoding, so a
  multi-byte character split across two words survives;
* no text leaves here with a lone surrogate (JSON encoders and the index refuse
  them): codecs that can emit one are repaired, and so are stdlib strings
  (`valid_text`);
* dates accept `10:00 PM EDT` and `+01:00` zones, which `parsedate_tz` misreads;
* address lists take a regex fast path for the common shapes and fall back to
  the stdlib's RFC 5322 parser (`policy.default`) for anything else (groups,
  comments, quoting), and to a plain scan for `local@domain` tokens if even
  that fails.

No function here raises on any input.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import codecs
import datetime as _dt
import functools
import re
from email.policy import default as _DEFAULT_POLICY
from email.utils import parsedate_tz

from mailindex.record import Address

MAX_HEADER_BYTES = 1 << 20  # a header block beyond this is cut (defect noted)
MAX_HEADER_VALUE = 64 * 1024  # a text header (Subject, List-*) is cut there before decoding
MAX_SLOW_ADDRESS_CHARS = 64 * 1024  # longer address headers skip the stdlib parser (it can be slow)
MIN_YEAR, MAX_YEAR = 1900, 2200

# ---------------------------------------------------------------- header block

# A line that is neither a header field ("Name:", tolerating blanks before the
# colon) nor a continuation ends the header block, as in the stdlib's feedparser.
# Patterns start with a literal "\n" (the block is searched with one prepended) so
# the regex engine skips from line start to line start instead of trying every byte.
_NON_HEADER_LINE = re.compile(rb"\n(?![ \t]|[!-9;-~]*[ \t]*:)")
WANTED = (b"subject", b"from", b"to", b"cc", b"bcc", b"reply-to", b"sender", b"date", b"message-id",
          b"in-reply-to", b"references", b"x-gm-msgid", b"x-gm-thrid", b"list-unsubscribe", b"list-help",
          b"content-type")
_FIELD_VALUE = rb")[ \t]*:(.*(?:\r?\n[ \t].*)*)"
_WANTED_RE = re.compile(rb"\n(" + b"|".join(WANTED) + _FIELD_VALUE, re.I)
_RECEIVED_RE = re.compile(rb"\n(received" + _FIELD_VALUE, re.I)
_ALL_FIELDS_RE = re.compile(rb"\n([!-9;-~]+" + _FIELD_VALUE)
_ANY_HEADER = re.compile(rb"[!-9;-~]*[ \t]*:")


def header_block(data: bytes) -> tuple[bytes, list[str]]:
    """The header block of a message, with a "\n" prepended (without a leading BOM or mbox `From ` line),
    and defects found. b"" when there is none."""
    defects: list[str] = []
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 byte order mark (Windows exports)
    if data.startswith(b"From ", start):
        nl = data.find(b"\n", start)
        start = len(data) if nl < 0 else nl + 1
    if data.startswith(b"\n", start) or data.startswith(b"\r\n", start):
        return b"", defects
    limit = start + MAX_HEADER_BYTES
    a = data.find(b"\n\n", start, limit + 2)
    b = data.find(b"\n\r\n", start, limit + 3 if a < 0 else a)
    end = a if b < 0 or 0 <= a < b else b
    if end < 0:
        end = min(len(data), limit)
        if end < len(data) and (data.find(b"\n\n", end) >= 0 or data.find(b"\n\r\n", end) >= 0):
            defects.append("header block over 1 MiB: cut")
    block = b"\n" + data[start:end]
    bad = _NON_HEADER_LINE.search(block)
    if bad is not None:
        block = block[: bad.start()]
        defects.append("missing header/body separator")
    return block, defects


def _unfold(value: bytes) -> bytes:
    if b"\n" in value:
        value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    return value.strip()


def raw_headers(block: bytes) -> dict[bytes, list[bytes]]:
    """The wanted header fields of a header block: lowercased name -> raw values (unfolded, stripped)."""
    heads: dict[bytes, list[bytes]] = {}
    for name, value in _WANTED_RE.findall(block):
        name = name.lower()
        got = heads.get(name)
        if got is None:
            heads[name] = [_unfold(value)]
        else:
            got.append(_unfold(value))
    return heads


def first_received(block: bytes) -> bytes | None:
    """The topmost Received header's raw value."""
    m = _RECEIVED_RE.search(block)
    return None if m is None else _unfold(m.group(2))


def has_header_fields(block: bytes) -> bool:
    return len(block) > 1 and _ANY_HEADER.match(block, 1) is not None


def header_fields(data: bytes) -> dict[str, list[str]]:
    """Every header field of a message: name as written -> decoded values, in the order of the source.
    Values are decoded as the parser decodes a Subject (`field_text`)."""
    out: dict[str, list[str]] = {}
    for name, value in _ALL_FIELDS_RE.findall(header_block(data)[0]):
        out.setdefault(name.decode("ascii"), []).append(field_text(value))
    return out


def bytes_to_str(value: bytes) -> tuple[str, bool]:
    """Header bytes as text: ASCII, else UTF-8, else windows-1252, else latin-1. Second item: was 8-bit."""
    try:
        return value.decode("ascii"), False
    except UnicodeDecodeError:
        pass
    for enc in ("utf-8", "cp1252"):
        try:
            return value.decode(enc), True
        except UnicodeDecodeError:
            pass
    return value.decode("latin-1"), True


_ESCAPED_BYTES = re.compile("[\udc80-\udcff]+")


def _escaped_text(m: re.Match[str]) -> str:
    """A run of surrogate-escaped bytes read like raw header bytes."""
    return bytes_to_str(m.group().encode("ascii", "surrogateescape"))[0]


def _paired_text(value: str) -> str:
    """`value` with surrogate halves that make a pair joined into their character, lone ones as U+FFFD
    (a utf-7 decoder emits both). Valid text is returned as is."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def valid_text(value: str) -> str:
    """A string from the stdlib's email package as valid text: bytes it kept as surrogate escapes are read
    like raw header bytes (`bytes_to_str`: the whole value when it is ASCII besides them, else each run),
    other surrogates as in `_paired_text`. Valid text is returned as is."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return bytes_to_str(value.encode("ascii", "surrogateescape"))[0]
    except UnicodeEncodeError:  # decoded characters (RFC 2047, RFC 2231) or non-escape surrogates too
        return _paired_text(_ESCAPED_BYTES.sub(_escaped_text, value))


# ---------------------------------------------------------------- charsets

_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "iso_8859-1": "cp1252", "windows-874": "cp874", "tis-620": "cp874", "x-windows-874": "cp874",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "x-euc-kr": "cp949",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cn-gb": "gb18030", "euc-cn": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "x-sjis": "cp932", "sjis": "cp932", "ms_kanji": "cp932",
    "iso-8859-8-i": "iso8859-8", "iso-8859-6-i": "iso8859-6", "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman", "unicode-1-1-utf-7": "utf-7", "utf-8-sig": "utf-8", "big5": "big5hkscs",
    "x-big5": "big5hkscs", "iso-2022-jp": "iso2022_jp_ext", "ansi_x3.4-1968": "ascii",
}
# Codecs that are not charsets (names as `codecs.lookup` gives them): "unicode-escape" would read
# backslash escapes, "\\ud800" included, as characters.
_BAD_CODECS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"}
# The only text codec of the stdlib whose decoder emits lone surrogates (tests/test_parse_hostile.py
# checks every codec `codec_for` accepts).
_SURROGATE_CODECS = frozenset({"utf-7"})
_ASCII128 = bytes(range(128))
_ASCII128_STR = _ASCII128.decode("ascii")
# 7-bit encodings whose escape sequences are ASCII bytes: ASCII input is not ASCII text there.
_STATEFUL_7BIT = ("iso2022", "utf-7", "utf_7", "hz")


@functools.lru_cache(maxsize=1024)
def codec_for(label: str | None) -> tuple[str | None, bool]:
    """Python codec name for a MIME charset label (None if unknown), and whether ASCII bytes decode as ASCII."""
    if not label:
        return None, True
    name = label.strip().strip("\"'").strip().lower()
    if "*" in name:  # RFC 2231 language suffix: utf-8*en
        name = name.split("*", 1)[0]
    name = _CHARSET_ALIASES.get(name, name)
    candidates = [name]
    if name.startswith("x-"):
        candidates.append(name[2:])
    if name.startswith("windows-"):
        candidates.append("cp" + name[8:])
    if name.startswith("cp-"):
        candidates.append("cp" + name[3:])
    for cand in candidates:
        try:
            info = codecs.lookup(cand)
        except (LookupError, ValueError, TypeError):
            continue
        if not getattr(info, "_is_text_encoding", True) or info.name in _BAD_CODECS:
            return None, True
        fast = not info.name.startswith(_STATEFUL_7BIT)
        if fast:
            try:
                fast = _ASCII128.decode(info.name) == _ASCII128_STR
            except (UnicodeDecodeError, LookupError, ValueError):
                fast = False
        return info.name, fast
    return None, True


def trim_utf8_tail(b: bytes) -> bytes:
    """Drop an incomplete UTF-8 sequence at the end of a cut buffer."""
    for i in range(1, min(4, len(b)) + 1):
        c = b[-i]
        if c < 0x80:
            return b
        if c >= 0xC0:
            need = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
            return b if need <= i else b[:-i]
    return b


def _cut_utf8(data: bytes) -> str | None:
    """UTF-8 text with a character cut at either end (an encoded-word split inside a character that no
    neighbour completes), the cut bytes as U+FFFD. None unless the rest is UTF-8 beyond ASCII, which
    text in another charset (latin-1 "caf\xe9") never is."""
    start = 0
    while start < min(3, len(data)) and 0x80 <= data[start] < 0xC0:
        start += 1
    middle = trim_utf8_tail(data[start:])
    if len(middle) == len(data) or middle.isascii():
        return None
    try:
        middle.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return data.decode("utf-8", "replace")


def decode_text(data: bytes, label: str | None, defects: list[str] | None = None) -> str:
    """Bytes in a declared charset as text; unknown or wrong charsets fall back to UTF-8, cp1252, latin-1."""
    name, ascii_ok = codec_for(label)
    if ascii_ok and data.isascii():
        return data.decode("ascii")
    if name is not None:
        try:
            text = data.decode(name)
            return _paired_text(text) if name in _SURROGATE_CODECS else text
        except (UnicodeDecodeError, LookupError, ValueError):
            pass
        cut = _cut_utf8(data) if name == "utf-8" else None
        if cut is not None:  # the charset is right, a character is cut: not a fallback
            return cut
    if defects is not None:
        note = f"charset fallback: {label!s:.40}" if label else "undeclared 8-bit text"
        if note not in defects:
            defects.append(note)
    for enc in ("utf-8", "cp1252"):
        if enc != name:
            try:
                return data.decode(enc)
            except UnicodeDecodeError:
                pass
    return data.decode("latin-1")


# ---------------------------------------------------------------- RFC 2047

# Encoded text is bounded (RFC 2047 allows 75 characters per word; broken mailers write a few
# hundred) so a header full of unterminated "=?x?q?" cannot make the search quadratic.
_EW = re.compile(r"=\?([^?\s]{0,64})\?([bBqQ])\?(.{0,2000}?)\?=")
# Adjacent words as RFC 2047 has them (no "?" or blank inside), so a run never swallows the
# address-list structure between two loose "=?" (the stdlib tokenizes before it decodes).
_STRICT_EW = r"=\?[^?\s]{1,64}\?[bBqQ]\?[^?\s]{0,2000}\?="
_EW_RUN = re.compile(rf"{_STRICT_EW}(?:\s*{_STRICT_EW})*")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def b64decode_lenient(data: bytes) -> bytes:
    """Base64 that tolerates junk characters, missing or misplaced padding and a dangling last char."""
    clean = _B64_JUNK.sub(b"", data)
    if len(clean) % 4 == 1:
        clean = clean[:-1]
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def _ew_bytes(enc: str, text: str, latin1: bool) -> bytes:
    raw = text.encode("latin-1" if latin1 else "utf-8", "replace")
    if enc in "bB":
        return b64decode_lenient(raw)
    try:
        return binascii.a2b_qp(raw, header=True)
    except (binascii.Error, ValueError):
        return raw


def decode_words(value: str, latin1: bool = False) -> str:
    """Decode RFC 2047 encoded-words; whitespace between adjacent words is dropped and same-charset
    neighbours are joined before decoding, so a character split across two words survives.

    `latin1`: `value` is raw header bytes read as latin-1 (one char per byte); the text
    between words is then decoded as 8-bit header text and raw bytes inside words are kept.
    """
    if "=?" not in value:
        return bytes_to_str(value.encode("latin-1"))[0] if latin1 else value
    out: list[str] = []
    pending = b""
    pending_cs: str | None = None
    in_words = False
    pos = 0
    for m in _EW.finditer(value):
        between = value[pos : m.start()]
        if between and not (in_words and between.isspace()):
            if in_words:
                out.append(decode_text(pending, pending_cs))
                pending, pending_cs = b"", None
            out.append(bytes_to_str(between.encode("latin-1"))[0] if latin1 else between)
        cs = m.group(1).split("*", 1)[0].lower()
        chunk = _ew_bytes(m.group(2), m.group(3), latin1)
        if in_words and cs != pending_cs:
            out.append(decode_text(pending, pending_cs))
            pending = b""
        pending += chunk
        pending_cs = cs
        in_words = True
        pos = m.end()
    if in_words:
        out.append(decode_text(pending, pending_cs))
    rest = value[pos:]
    out.append(bytes_to_str(rest.encode("latin-1"))[0] if latin1 else rest)
    return "".join(out)


def header_text(value: bytes) -> tuple[str, bool]:
    """A raw unfolded header value as clean text (8-bit bytes and encoded-words decoded). Second: was 8-bit."""
    value = value[:MAX_HEADER_VALUE]
    if value.isascii():
        s = value.decode("ascii")
        return (decode_words(s) if "=?" in s else s).replace("\t", " ").strip(), False
    return decode_words(value.decode("latin-1"), latin1=True).replace("\t", " ").strip(), True


def field_text(value: bytes) -> str:
    """A raw header value, folded or not, as clean text (`header_text`)."""
    return header_text(_unfold(value))[0]


# ---------------------------------------------------------------- dates

_AMPM = re.compile(r"\b(\d{1,2})(:\d\d(?::\d\d)?)\s*([AaPp])\.?[Mm]\.?(?![A-Za-z])")
_COLON_ZONE = re.compile(r"([+-]\d\d):(\d\d)\b")
_ISO = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def _ampm(m: re.Match[str]) -> str:
    h = int(m.group(1)) % 12
    if m.group(3) in "Pp":
        h += 12
    return f"{h:02d}{m.group(2)}"


def parse_date(value: str | None) -> int | None:
    """Unix seconds (UTC) of an RFC 5322-ish date; no zone means UTC. None if unparseable or out of 1900..2200."""
    if not value:
        return None
    v = value.strip()[:200]
    if not v:
        return None
    try:
        if "M" in v or "m" in v:
            v = _AMPM.sub(_ampm, v)
        if ":" in v[-7:]:
            v = _COLON_ZONE.sub(r"\1\2", v)
        t = parsedate_tz(v)
        if t is None:
            iso = _ISO.search(v)
            if iso is None:
                return None
            when = _dt.datetime.fromisoformat(v[iso.start():].strip().replace("Z", "+00:00"))
            if not MIN_YEAR <= when.year <= MAX_YEAR:
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=_dt.timezone.utc)
            return int(when.timestamp())
        y, mo, d, h, mi, s = t[:6]
        if not (MIN_YEAR <= y <= MAX_YEAR and 0 <= h <= 23 and 0 <= mi <= 59 and 0 <= s <= 60):
            return None
        if not 1 <= mo <= 12 or not 1 <= d <= calendar.monthrange(y, mo)[1]:
            return None
        return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - (t[9] or 0)
    except (ValueError, TypeError, OverflowError, IndexError):
        return None


def received_date(value: str | None) -> int | None:
    """The date of a Received header: what follows its last ';'."""
    if not value or ";" not in value:
        return None
    return parse_date(value.rpartition(";")[2])


# ---------------------------------------------------------------- message ids

_MSGID = re.compile(r"<[^<>]*>")


def first_msgid(value: str | None, bare_ok: bool = True) -> str | None:
    """The first <id> token with whitespace (and NULs) removed; a bare single token is wrapped in brackets."""
    if not value:
        return None
    value = _no_nul(value)
    m = _MSGID.search(value)
    if m is not None:
        mid = "".join(m.group().split())
        return mid if len(mid) > 2 else None
    v = value.strip()
    if bare_ok and v and len(v.split()) == 1:
        return f"<{v}>"
    return None


def all_msgids(value: str | None) -> list[str]:
    if not value:
        return []
    return [mid for mid in ("".join(t.split()) for t in _MSGID.findall(_no_nul(value))) if len(mid) > 2]


def _no_nul(value: str) -> str:
    """NULs dropped: no id or address holds one, and SQLite's JSON functions cut strings at them (an id or
    address with one was not found again and stopped the whole sync)."""
    return value.replace("\x00", "") if "\x00" in value else value


# ---------------------------------------------------------------- addresses

_ADDR_ITEM = re.compile(
    r"""[\s,]*(?:
          (?:"([^"\\]*)"|([^",<>()\\:;@\[\]]*?))\s*<([^<>\s"(),:;\\\[\]]*)>   # name <addr>
        | (?!=\?)([^\s",<>()\\:;\[\]]+)                                       # bare addr (not a lone =?word?=)
        )\s*(?=,|$)""",
    re.X,
)
_ENCODED_COMMA = re.compile(r"\s*=\?[^?\s]+\?[qQ]\?=2C\?=\s*")
_EMAIL_SCAN = re.compile(r"[^\s<>,;:\"()\[\]]+@[^\s<>,;:\"()\[\]]+")


def _name(quoted: str | None, plain: str | None) -> str | None:
    if quoted is not None:
        name = decode_words(quoted) if "=?" in quoted else quoted
        name = name.strip()
    elif plain:
        name = decode_words(plain) if "=?" in plain else plain
        name = " ".join(name.split())
    else:
        return None
    return name or None


def _scan(value: str) -> list[Address]:
    return [Address(e.strip().lower()) for e in _EMAIL_SCAN.findall(value)]


def _utf8_word(m: re.Match[str]) -> str:
    return "=?utf-8?b?" + base64.b64encode(decode_words(m.group()).encode("utf-8")).decode("ascii") + "?="


def _slow_addresses(value: str) -> list[Address]:
    if len(value) > MAX_SLOW_ADDRESS_CHARS:
        return _scan(value)
    if "=?" in value:
        # The stdlib decodes encoded-words one by one in its own charsets: a character split across
        # two words is lost. Each run of words goes in as one UTF-8 word of our decoding instead.
        value = _EW_RUN.sub(_utf8_word, value)
    try:
        found = _DEFAULT_POLICY.header_factory("to", value).addresses
        out = []
        for a in found:
            spec = a.addr_spec.strip()
            # "<>" and quoted local parts without a domain are what the stdlib makes of plain words
            if spec and spec != "<>" and not (spec[0] == '"' and "@" not in spec):
                # the stdlib decodes encoded-words with surrogateescape: a word split inside a character
                # (one `_EW_RUN` missed) leaves lone surrogates, which no index or JSON encoder accepts
                out.append(Address(_no_nul(valid_text(spec.lower())), valid_text(a.display_name.strip()) or None))
        return out
    except Exception:  # noqa: BLE001 - the stdlib parser has many failure modes on garbage
        return _scan(value)


def parse_addresses(value: str) -> list[Address]:
    """Mailboxes of an address-list header (already 8-bit-decoded, not yet RFC 2047-decoded).

    Groups give their members; garbage gives what looks like addresses, never an exception.
    """
    v = _no_nul(value).strip(" \t,")
    if not v:
        return []
    if "=2C?=" in v:  # a separating comma folded into an encoded-word (a bug of the stdlib's generator)
        v = _ENCODED_COMMA.sub(", ", v)
    out: list[Address] = []
    pos, n, match = 0, len(v), _ADDR_ITEM.match
    while pos < n:
        m = match(v, pos)
        if m is None:
            return _slow_addresses(v)
        pos = m.end()
        addr = m.group(3)
        if addr is None:
            out.append(Address(m.group(4).lower()))
        elif addr:
            out.append(Address(addr.lower(), _name(m.group(1), m.group(2))))
    return out
