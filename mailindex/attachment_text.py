"""The searchable text of one attachment, bounded: `extract()` never raises and never runs unbounded.

Kinds read: PDF (pypdfium2), DOCX/XLSX/PPTX and ODT/ODS/ODP (their zip's XML, read with the standard
library so every byte read is counted), RTF (striprtf) and text/* (HTML reduced to text). The kind is
decided from the content first (``%PDF``, ``{\\rtf``, a zip's member names), then from the declared and
sniffed types and the file name's extension; anything else (images, archives, audio, unknown binaries)
is not a kind we read and gives None.

Bounds, so a hostile file cannot stall or bloat a sync: bytes read per attachment, pages per PDF,
characters kept per attachment, a wall-clock deadline checked between pages and XML chunks, and for zip
members their declared size, their compression ratio and the XML bytes read. A failure gives status
False with a short reason; hitting a bound gives ``"truncated"`` with the bound named.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import IO, TYPE_CHECKING, Literal

from mailindex.html_text import MAX_HTML_BYTES, html_to_text
from mailindex.parse_headers import decode_text, trim_utf8_tail

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

# zipfile (with bz2 and lzma), ElementTree and the PDF and RTF libraries are imported by the first
# attachment that needs them: a parse worker that sees none does not pay for them.

__all__ = ["Extracted", "extract", "kind_of", "MAX_CHARS", "MAX_MESSAGE_CHARS"]

MAX_INPUT_BYTES = 64 << 20  # a PDF or zip larger than this is not opened
MAX_RTF_BYTES = 4 << 20  # striprtf runs ~1 µs a byte and cannot be interrupted
MAX_PDF_PAGES = 500
MAX_CHARS = 256 << 10  # text kept per attachment
MAX_MESSAGE_CHARS = 1 << 20  # text kept for all attachments of one message (the caller counts)
DEADLINE_SECONDS = 5.0  # per attachment, checked between pages and XML chunks
MAX_XML_BYTES = 32 << 20  # uncompressed XML read per document, all members together
MAX_ZIP_RATIO = 200  # uncompressed/compressed size of one member; Office XML is ~5-30
ZIP_RATIO_FROM = 1 << 20  # members declaring fewer bytes are not checked for ratio (they cannot bomb)
XML_CHUNK = 64 << 10

Status = bool | Literal["truncated"]
Kind = Literal["pdf", "docx", "xlsx", "pptx", "odf", "rtf", "text", "html"]


@dataclass(frozen=True, slots=True)
class Extracted:
    """What `extract` read: the text, and whether it is all of it (True), cut at a bound ("truncated")
    or could not be read (False); `reason` says which bound or what failed."""

    text: str
    status: Status
    reason: str | None = None


class _Cut(Exception):
    """A bound was hit: keep the text read so far."""


# ---------------------------------------------------------------- which kind

_OOXML: dict[Kind, str] = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml", "pptx": "ppt/presentation.xml"}
_TYPES: dict[str, Kind] = {
    "application/pdf": "pdf", "application/x-pdf": "pdf",
    "application/rtf": "rtf", "application/x-rtf": "rtf", "text/rtf": "rtf",
    "text/html": "html", "application/xhtml+xml": "html",
}
_EXTENSIONS: dict[str, Kind] = {
    "pdf": "pdf", "rtf": "rtf", "htm": "html", "html": "html", "xhtml": "html",
    "txt": "text", "text": "text", "csv": "text", "log": "text", "md": "text",
}
_NOT_READ = (
    "message/", "multipart/",  # an attached message's text and files are walked as a message
    "application/pgp", "application/pkcs7", "application/x-pkcs7",  # armoured keys, signatures, ciphertext
)


def _extension(file_name: str) -> str:
    return file_name.rpartition(".")[2].lower() if "." in file_name else ""


def kind_of(content: bytes, declared_type: str, sniffed_type: str | None, file_name: str) -> Kind | None:
    """The kind of document an attachment is, or None when it is not one we read. The content decides
    where it can (a PDF named .txt is a PDF; a "PDF" that is a PNG is not read); zip files are told apart
    by their member names, so a plain .zip archive is None whatever it claims."""
    if declared_type.startswith(_NOT_READ):
        return None
    head = content[:1024]
    start = head.lstrip()[:5]
    if start == b"%PDF-":
        return "pdf"
    if start == b"{\\rtf":
        return "rtf"
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(content)
    sniffed = sniffed_type or ""
    if sniffed and not sniffed.startswith("text/") and sniffed not in ("application/octet-stream", "inode/x-empty"):
        return None  # the bytes are something else (an image, an archive, a program)
    for t in (declared_type, sniffed):
        if t in _TYPES:
            return _TYPES[t]  # (a "PDF" whose header is late or missing is read: PDFium finds it, or says why)
    by_name = _EXTENSIONS.get(_extension(file_name))
    if by_name is not None:
        return by_name
    if declared_type.startswith("text/") or sniffed.startswith("text/"):
        return "text"
    return None


def _zip_kind(content: bytes) -> Kind | None:
    import zipfile

    try:
        names = set(zipfile.ZipFile(BytesIO(content)).namelist())
    except Exception:  # noqa: BLE001 - not a readable zip: not a document we read
        return None
    for kind, marker in _OOXML.items():
        if marker in names:
            return kind
    if "content.xml" in names and "mimetype" in names:
        return "odf"
    return None


# ---------------------------------------------------------------- bounded text


class _Budget:
    """Text kept so far, against the character cap and the deadline."""

    __slots__ = ("parts", "room", "cap", "deadline")

    def __init__(self, max_chars: int, cap: str, seconds: float) -> None:
        self.parts: list[str] = []
        self.room = max_chars
        self.cap = cap  # the reason given when the text is cut at `max_chars`
        self.deadline = time.monotonic() + seconds

    def add(self, text: str) -> None:
        if not text:
            return
        if len(text) > self.room:
            self.parts.append(text[: self.room])
            self.room = 0
            raise _Cut(self.cap)
        self.parts.append(text)
        self.room -= len(text)

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Cut(f"deadline: {DEADLINE_SECONDS:g} s per attachment")

    def text(self) -> str:
        return "".join(self.parts).strip()


def _pdf(content: bytes, budget: _Budget) -> None:
    import pypdfium2

    doc = pypdfium2.PdfDocument(content)
    try:
        pages = len(doc)
        for i in range(min(pages, MAX_PDF_PAGES)):
            budget.check_time()
            page = doc[i]
            try:
                textpage = page.get_textpage()
                try:
                    budget.add(textpage.get_text_range().replace("\r\n", "\n") + "\n")
                finally:
                    textpage.close()
            finally:
                page.close()
        if pages > MAX_PDF_PAGES:
            raise _Cut(f"page cap: first {MAX_PDF_PAGES} of {pages} pages read")
    finally:
        doc.close()


def _rtf(content: bytes, budget: _Budget) -> None:
    from striprtf.striprtf import rtf_to_text

    cut = len(content) > MAX_RTF_BYTES
    # RTF is 7-bit by its spec (\'hh escapes for the rest); latin-1 keeps any stray byte as one character
    budget.add(rtf_to_text(content[:MAX_RTF_BYTES].decode("latin-1"), errors="replace"))
    if cut:
        raise _Cut(f"input cap: first {MAX_RTF_BYTES >> 20} MiB of RTF read")


def _text(content: bytes, charset: str | None, budget: _Budget, html: bool) -> None:
    limit = MAX_HTML_BYTES if html else budget.room * 4  # UTF-8 needs at most 4 bytes a character
    cut = len(content) > limit
    text = decode_text(trim_utf8_tail(content[:limit]) if cut else content, charset, [])
    budget.add(html_to_text(text) if html else text)
    if cut:
        raise _Cut(f"input cap: first {limit} bytes read")


# ---------------------------------------------------------------- zip-based documents (OOXML, ODF)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ODF = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
# OOXML: the elements whose text is taken (they hold only text), and what follows the end of others.
_TEXT_TAGS = {"docx": {_W + "t"}, "pptx": {_A + "t"}, "xlsx": {_S + "t", _S + "v"}}
_BREAKS = {
    "docx": {_W + "p": "\n", _W + "tab": "\t", _W + "br": "\n", _W + "tc": "\t"},
    "pptx": {_A + "p": "\n", _A + "br": "\n"},
    "xlsx": {_S + "si": "\n", _S + "row": "\n", _S + "c": "\t"},
}
# ODF: text is mixed content of paragraphs and headings; these empty elements stand for white space.
_ODF_PARAGRAPHS = {_ODF + "p", _ODF + "h"}
_ODF_SPACES = {_ODF + "s": " ", _ODF + "tab": "\t", _ODF + "line-break": "\n"}
_SLIDE = re.compile(r"ppt/slides/slide(\d+)\.xml\Z")
_SHEET = re.compile(r"xl/worksheets/sheet(\d+)\.xml\Z")


def _numbered(names: list[str], pattern: re.Pattern[str]) -> list[str]:
    """The names matching `pattern`, by the number it captures (slide10 after slide9)."""
    found = [(int(m.group(1)), n) for n in names if (m := pattern.match(n))]
    return [n for _, n in sorted(found)]


def _members(kind: Kind, names: list[str]) -> list[str]:
    """The XML members holding a document's text, in reading order."""
    if kind == "docx":
        return [n for n in ("word/document.xml", "word/footnotes.xml", "word/endnotes.xml") if n in names]
    if kind == "pptx":
        return _numbered(names, _SLIDE)
    if kind == "xlsx":  # each distinct string once, then the numbers and inline strings of the cells
        return [n for n in ("xl/sharedStrings.xml",) if n in names] + _numbered(names, _SHEET)
    return ["content.xml"]


def _xml_events(stream: IO[bytes], budget: _Budget, read: list[int]) -> Iterator[tuple[str, Element]]:
    """(event, element) pairs of one XML member, fed in chunks: the XML byte cap and the deadline are
    checked between chunks. `read` counts bytes across the members of one document."""
    from xml.etree.ElementTree import XMLPullParser

    parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
    while True:
        budget.check_time()
        chunk = stream.read(XML_CHUNK)
        if not chunk:
            break
        read[0] += len(chunk)
        if read[0] > MAX_XML_BYTES:
            raise _Cut(f"XML cap: {MAX_XML_BYTES} bytes of XML read")
        parser.feed(chunk)
        yield from parser.read_events()  # type: ignore[misc]
    parser.close()
    yield from parser.read_events()  # type: ignore[misc]


def _ooxml_member(events: Iterator[tuple[str, Element]], kind: Kind, budget: _Budget) -> None:
    texts, breaks = _TEXT_TAGS[kind], _BREAKS[kind]
    shared_cell = False  # xlsx: a cell whose value is an index into the shared strings, read already
    for event, elem in events:
        tag = elem.tag
        if event == "start":
            if tag == _S + "c":
                shared_cell = elem.get("t") == "s"
            continue
        if tag in texts and not (shared_cell and tag == _S + "v"):
            budget.add(_number(elem.text) if tag == _S + "v" else elem.text or "")
        brk = breaks.get(tag)
        if brk is not None:
            budget.add(brk)
        elem.clear()


def _number(value: str | None) -> str:
    """An xlsx cell value as a spreadsheet shows it: 17 significant digits ("4.1399999999999997") as
    the shortest float that reads back the same ("4.14")."""
    if not value or len(value) < 16:
        return value or ""
    try:
        return repr(float(value))
    except ValueError:
        return value


def _odf_text(elem: Element) -> Iterator[str]:
    yield _ODF_SPACES.get(elem.tag, "")
    yield elem.text or ""
    for child in elem:
        yield from _odf_text(child)
        yield child.tail or ""


def _odf_member(events: Iterator[tuple[str, Element]], budget: _Budget) -> None:
    depth = 0  # inside how many paragraphs (a note's paragraphs sit inside one)
    for event, elem in events:
        if elem.tag in _ODF_PARAGRAPHS:
            depth += 1 if event == "start" else -1
            if event == "end":
                budget.add("".join(_odf_text(elem)) + "\n")
                elem.clear()
        elif event == "end" and depth == 0:
            elem.clear()


def _zip_text(content: bytes, kind: Kind, budget: _Budget) -> None:
    import zipfile

    read = [0]
    with zipfile.ZipFile(BytesIO(content)) as zf:
        for name in _members(kind, zf.namelist()):
            info = zf.getinfo(name)
            # checked before reading: a large declared size at a ratio no Office file reaches is a bomb
            # (what is read is counted too, as declared sizes can lie)
            if info.file_size > ZIP_RATIO_FROM and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
                raise ValueError(f"{name}: compression ratio over {MAX_ZIP_RATIO} (a zip bomb?)")
            with zf.open(name) as stream:
                events = _xml_events(stream, budget, read)
                if kind == "odf":
                    _odf_member(events, budget)
                else:
                    _ooxml_member(events, kind, budget)
            budget.add("\n")


# ---------------------------------------------------------------- extract


def extract(content: bytes, declared_type: str, sniffed_type: str | None, file_name: str,
            charset: str | None = None, max_chars: int = MAX_CHARS) -> Extracted | None:
    """The searchable text of one attachment, or None when it is not a kind we read. Never raises.

    `declared_type` is the part's Content-Type (lowercase type/subtype), `sniffed_type` libmagic's type of
    its first bytes, `charset` the part's declared charset (for text/*); at most `max_chars` characters
    are kept (the caller passes less when the message's room for attachment text is smaller)."""
    try:
        kind = kind_of(content, declared_type, sniffed_type, file_name)
    except Exception:  # noqa: BLE001 - deciding must not fail the message either
        return None
    if kind is None:
        return None
    if kind in ("pdf", "docx", "xlsx", "pptx", "odf") and len(content) > MAX_INPUT_BYTES:
        return Extracted("", False, f"input cap: {len(content)} bytes, over {MAX_INPUT_BYTES >> 20} MiB")
    if max_chars < MAX_CHARS:
        cap = f"message cap: {MAX_MESSAGE_CHARS} characters of attachment text per message"
        if max_chars <= 0:
            return Extracted("", "truncated", cap)
    else:
        cap = f"text cap: {MAX_CHARS} characters per attachment"
    budget = _Budget(min(max_chars, MAX_CHARS), cap, DEADLINE_SECONDS)
    try:
        if kind == "pdf":
            _pdf(content, budget)
        elif kind == "rtf":
            _rtf(content, budget)
        elif kind == "text" or kind == "html":
            _text(content, charset, budget, kind == "html")
        else:
            _zip_text(content, kind, budget)
    except _Cut as cut:
        return Extracted(budget.text(), "truncated", str(cut))
    except Exception as exc:  # noqa: BLE001 - a library's failure is this attachment's, not the message's
        return Extracted(budget.text(), False, f"{kind}: {type(exc).__name__}: {str(exc)[:80]}")
    return Extracted(budget.text(), True)

