"""Attachment text at ingest: real documents built here, sent through `parse`, their words found in
`Record.attachment_text`; hostile ones (a zip bomb, a corrupt PDF, too much text) bounded and reported."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest
from fpdf import FPDF
from hypothesis import given
from hypothesis import strategies as st

from mailindex import attachment_text
from mailindex.attachment_text import MAX_CHARS, MAX_MESSAGE_CHARS, extract
from mailindex.cli.output import show_text
from mailindex.index.store import decode_record, decode_record_fields, encode_record
from mailindex.parse import parse
from mailindex.record import Record
from mailindex.results import file_dict, message_dict
from mailindex.sources.base import RawMessage

PDF = ("application", "pdf")
DOCX = ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
PPTX = ("application", "vnd.openxmlformats-officedocument.presentationml.presentation")
ODT = ("application", "vnd.oasis.opendocument.text")
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def pdf(*pages: str) -> bytes:
    doc = FPDF()
    doc.set_font("helvetica", size=12)
    for text in pages:
        doc.add_page()
        doc.multi_cell(0, 8, text)
    return bytes(doc.output())


def png() -> bytes:
    """A 1x1 grey PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def zipped(members: dict[str, str | bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def docx(*paragraphs: str) -> bytes:
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    return zipped({"[Content_Types].xml": "<Types/>",
                   "word/document.xml": f'<?xml version="1.0"?><w:document {W}><w:body>{body}</w:body></w:document>'})


def mail(*attachments: tuple[bytes, tuple[str, str], str], body: str = "see attached") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.com", "bob@example.com", "documents"
    msg.set_content(body)
    for data, (maintype, subtype), name in attachments:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def parsed(msg: EmailMessage | bytes) -> Record:
    return parse(RawMessage(msg if isinstance(msg, bytes) else msg.as_bytes()))


# ---------------------------------------------------------------- each kind, through parse


def test_a_pdfs_words_are_searchable_and_nowhere_else() -> None:
    rec = parsed(mail((pdf("quetzal marmalade", "second page zeppelin"), PDF, "report.pdf")))
    assert "quetzal marmalade" in rec.attachment_text and "zeppelin" in rec.attachment_text
    assert "quetzal" not in rec.text
    (f,) = rec.files
    assert (f.file_name, f.text_extracted, f.text_reason) == ("report.pdf", True, None)


def test_office_and_open_documents_and_rtf_come_out_in_reading_order() -> None:
    a = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
    s = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    slides = {f"ppt/slides/slide{i}.xml": f"<p:sld xmlns:p='urn:p' {a}><a:p><a:r><a:t>slide{i}word</a:t></a:r></a:p></p:sld>"
              for i in (1, 2, 10)}
    pptx = zipped({"ppt/presentation.xml": "<p/>", **slides})
    xlsx = zipped({
        "xl/workbook.xml": "<workbook/>",
        "xl/sharedStrings.xml": f"<sst {s}><si><t>Invoice</t></si><si><t>Walrus Ltd</t></si></sst>",
        "xl/worksheets/sheet1.xml": f'<worksheet {s}><sheetData><row><c t="s"><v>1</v></c><c><v>4.1399999999999997</v></c>'
                                    f'<c t="inlineStr"><is><t>inline narwhal</t></is></c></row></sheetData></worksheet>'})
    t = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    odt = zipped({"mimetype": "application/vnd.oasis.opendocument.text",
                  "content.xml": f'<office:document-content xmlns:office="urn:o" xmlns:text="{t}"><office:body>'
                                 f'<text:h>Heading</text:h><text:p>alpha<text:s/>beta <text:span>gamma</text:span>'
                                 f' delta</text:p></office:body></office:document-content>'})
    rtf = rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}\f0 caf\'e9 ol\u233?\par gnu}"
    rec = parsed(mail((docx("first paragraph", "second one"), DOCX, "a.docx"), (pptx, PPTX, "b.pptx"),
                      (xlsx, XLSX, "c.xlsx"), (odt, ODT, "d.odt"), (rtf, ("application", "rtf"), "e.rtf")))
    assert [f.text_extracted for f in rec.files] == [True] * 5
    text = rec.attachment_text
    assert "first paragraph\nsecond one" in text
    assert text.index("slide1word") < text.index("slide2word") < text.index("slide10word")
    assert "Walrus Ltd" in text and "4.14" in text and "inline narwhal" in text
    assert "\t1\t" not in text  # a shared-string index is not a value
    assert "Heading\nalpha beta gamma delta" in text
    assert "café olé" in text and "gnu" in text


def test_text_attachments_are_decoded_with_their_charset_and_html_reduced() -> None:
    msg = mail(("Grüße aus Köln".encode("iso-8859-1"), ("text", "plain"), "notes.txt"),
               (b"<html><script>var hidden=1</script><p>visible&nbsp;words</p></html>", ("text", "html"), "p.html"))
    # EmailMessage writes no charset for bytes: set one, as a mailer would
    msg.get_payload()[1].set_param("charset", "iso-8859-1")
    rec = parsed(msg)
    assert "Grüße aus Köln" in rec.attachment_text
    assert "visible words" in rec.attachment_text and "hidden" not in rec.attachment_text
    assert [f.text_extracted for f in rec.files] == [True, True]


def test_a_named_inline_text_part_is_counted_once() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg.set_content("body words okapi", disposition="inline", filename="body.txt")
    rec = parsed(msg)
    assert "okapi" in rec.text and "okapi" not in rec.attachment_text
    assert rec.files[0].text_extracted is True


def test_an_attachment_inside_an_attached_message_is_read() -> None:
    inner = mail((pdf("nested capybara"), PDF, "inner.pdf"), body="inner body")
    outer = mail(body="forwarding")
    outer.add_attachment(inner, filename="fwd.eml")
    rec = parsed(outer)
    assert "nested capybara" in rec.attachment_text
    eml, inner_pdf = rec.files
    assert (eml.type, eml.text_extracted) == ("message/rfc822", None)  # its text is walked as a message
    assert (inner_pdf.file_name, inner_pdf.body_section, inner_pdf.text_extracted) == ("inner.pdf", "2.2", True)


def test_images_archives_and_binaries_are_not_kinds_we_read() -> None:
    rec = parsed(mail((png(), ("image", "png"), "a.png"), (zipped({"x.txt": "hello"}), ("application", "zip"), "b.zip"),
                      (os.urandom(300), ("application", "octet-stream"), "c.bin"),
                      (png(), PDF, "fake.pdf")))  # an image claiming to be a PDF: the bytes decide
    assert [f.text_extracted for f in rec.files] == [None] * 4
    assert rec.attachment_text == ""


# ---------------------------------------------------------------- hostile attachments


def test_a_zip_bomb_docx_fails_fast_and_the_rest_is_read() -> None:
    spaces = " " * (64 << 20)  # 64 MiB of XML deflated to ~64 KiB: a ratio of ~1000
    bomb = zipped({"word/document.xml": f"<w:document {W}><w:body>{spaces}</w:body></w:document>"})
    assert len(bomb) < 1 << 20
    start = time.monotonic()
    rec = parsed(mail((bomb, DOCX, "bomb.docx"), (docx("after the bomb"), DOCX, "ok.docx")))
    assert time.monotonic() - start < 2
    bad, ok = rec.files
    assert bad.text_extracted is False and "zip bomb" in (bad.text_reason or "")
    assert ok.text_extracted is True and "after the bomb" in rec.attachment_text


def test_a_zip_member_expanding_past_the_size_it_declares_fails_fast() -> None:
    spaces = " " * (64 << 20)
    bomb = bytearray(zipped({"word/document.xml": f"<w:document {W}><w:body>{spaces}</w:body></w:document>"}))
    # declare 1,000 bytes in the local header and the central directory: no ratio to refuse it by
    struct.pack_into("<I", bomb, bomb.find(b"PK\x03\x04") + 22, 1000)
    struct.pack_into("<I", bomb, bomb.find(b"PK\x01\x02") + 24, 1000)
    start = time.monotonic()
    got = extract(bytes(bomb), DOCX[0] + "/" + DOCX[1], None, "liar.docx")
    assert time.monotonic() - start < 1
    assert got is not None and got.status is False and "Bad CRC-32" in (got.reason or "")


def test_xml_past_the_byte_cap_is_cut_though_the_ratio_looks_innocent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachment_text, "MAX_XML_BYTES", 200_000)
    got = extract(docx(*(f"para {i}" for i in range(20_000))), "", None, "big.docx")
    assert got is not None and got.status == "truncated" and got.reason == "XML cap: 200000 bytes of XML read"
    assert got.text.startswith("para 0\npara 1\n")


def test_a_corrupt_pdf_is_reported_and_the_message_still_parsed() -> None:
    corrupt = b"%PDF-1.7\n" + os.urandom(4000)
    rec = parsed(mail((corrupt, PDF, "broken.pdf"), (pdf("healthy ocelot"), PDF, "fine.pdf"), body="body lemur"))
    broken, fine = rec.files
    assert broken.text_extracted is False and (broken.text_reason or "").startswith("pdf: PdfiumError")
    assert fine.text_extracted is True and "healthy ocelot" in rec.attachment_text
    assert "body lemur" in rec.text and rec.parse_error is None and rec.subject == "documents"


def test_the_per_message_cap_truncates_the_attachments_after_it() -> None:
    words = [f"word{i:02d} " * 25_000 for i in range(7)]  # 175,000 characters each: five fit in 1 MiB
    rec = parsed(mail(*((w.encode(), ("text", "plain"), f"{i}.txt") for i, w in enumerate(words))))
    assert [f.text_extracted for f in rec.files] == [True] * 5 + ["truncated"] * 2
    cap = f"message cap: {MAX_MESSAGE_CHARS} characters of attachment text per message"
    assert [f.text_reason for f in rec.files] == [None] * 5 + [cap] * 2
    assert len(rec.attachment_text) <= MAX_MESSAGE_CHARS
    assert "word05" in rec.attachment_text and "word06" not in rec.attachment_text
    # once the room is gone, nothing more is read
    assert extract(b"more", "text/plain", None, "x.txt", max_chars=0) == \
        attachment_text.Extracted("", "truncated", rec.files[-1].text_reason)


def test_one_attachment_is_cut_at_its_own_cap() -> None:
    got = extract(b"x" * (MAX_CHARS + 10), "text/plain", "text/plain", "big.txt")
    assert got is not None and got.status == "truncated" and len(got.text) == MAX_CHARS
    assert got.reason == f"text cap: {MAX_CHARS} characters per attachment"


def test_pdf_pages_past_the_cap_and_the_deadline_truncate(monkeypatch: pytest.MonkeyPatch) -> None:
    three = pdf("page one", "page two", "page three")
    monkeypatch.setattr(attachment_text, "MAX_PDF_PAGES", 2)
    got = extract(three, "application/pdf", None, "a.pdf")
    assert got is not None and got.status == "truncated" and got.reason == "page cap: first 2 of 3 pages read"
    assert "page two" in got.text and "three" not in got.text
    monkeypatch.setattr(attachment_text, "DEADLINE_SECONDS", -1.0)
    got = extract(three, "application/pdf", None, "a.pdf")
    assert got is not None and (got.status, got.text) == ("truncated", "")
    assert got.reason is not None and got.reason.startswith("deadline")


_PREFIXES = [b"", b"%PDF-1.4\n", b"PK\x03\x04", b"{\\rtf1 ", zipped({"word/document.xml": "<w:document"})]


@given(st.sampled_from(_PREFIXES), st.binary(max_size=2000),
       st.sampled_from(["application/pdf", "text/plain", "text/html", "application/rtf", DOCX[0] + "/" + DOCX[1],
                        "application/octet-stream", "image/png"]),
       st.sampled_from([None, "text/plain", "application/octet-stream", "image/png"]),
       st.sampled_from(["", "a.pdf", "b.docx", "c.txt", "d.rtf", "e.odt"]))
def test_extract_never_raises_and_stays_in_bounds(prefix: bytes, tail: bytes, declared: str, sniffed: str | None,
                                                  name: str) -> None:
    got = extract(prefix + tail, declared, sniffed, name)
    if got is not None:
        assert got.status in (True, False, "truncated") and len(got.text) <= MAX_CHARS
        assert (got.reason is None) == (got.status is True)


@given(st.lists(st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=12), min_size=1,
                max_size=30))
def test_every_docx_paragraph_comes_out_in_order(paragraphs: list[str]) -> None:
    got = extract(docx(*paragraphs), "application/octet-stream", None, "")
    assert got is not None and got.status is True and got.text == "\n".join(paragraphs)


# ---------------------------------------------------------------- stored and shown


def test_the_store_keeps_the_status_and_leaves_the_searchable_text_out() -> None:
    rec = parsed(mail((b"%PDF-1.7 junk", PDF, "bad.pdf"), (pdf("stored yak"), PDF, "good.pdf")))
    back = decode_record(encode_record(rec))
    assert back.files == rec.files and back.files[0].text_extracted is False
    assert (back.attachment_text, back.text) == ("", "")


def test_the_message_object_and_show_name_the_status_of_read_kinds_only() -> None:
    rec = parsed(mail((b"%PDF-1.7 junk", PDF, "bad.pdf"), (pdf("fine"), PDF, "good.pdf"),
                      (png(), ("image", "png"), "pic.png")))
    bad, good, pic = (file_dict(rec.message_id, f) for f in rec.files)
    assert (bad["text_extracted"], bad["text_reason"]) == (False, rec.files[0].text_reason)
    assert good["text_extracted"] is True and "text_reason" not in good
    assert "text_extracted" not in pic and "text_reason" not in pic
    fields = decode_record_fields(encode_record(rec))
    shown = show_text(message_dict(fields, date_indexed=0, folders=["INBOX"], sources=[{"label": "s"}]))
    lines = [line for line in shown.splitlines() if line.startswith("file:")]
    assert lines[0].endswith(f"text unreadable ({rec.files[0].text_reason})")
    assert lines[1].endswith("part 3  text extracted") and lines[2].endswith("part 4")


# ---------------------------------------------------------------- real mail


@pytest.mark.corpora
def test_real_pdfs_from_the_shared_corpora(corpora: Path) -> None:
    rec = parsed((corpora / "mail-parser" / "mail_test_10").read_bytes())
    (pdf_file,) = [f for f in rec.files if f.file_name.endswith(".pdf")]
    assert pdf_file.text_extracted is True
    assert "IBM Power Systems" in rec.attachment_text and "Announcement Letter: ZWEP6227F" in rec.attachment_text
    assert "Announcement Letter" not in rec.text and "Eligible Products" not in rec.text
    broken = parsed((corpora / "ruby-mail" / "attachment_emails" / "attachment_pdf.eml").read_bytes())
    (f,) = [f for f in broken.files if f.file_name == "broken.pdf"]
    assert f.text_extracted is False and "Data format error" in (f.text_reason or "")
    scan = parsed((corpora / "mail-parser" / "mail_test_7").read_bytes())
    assert [f.text_extracted for f in scan.files if f.type == "application/pdf"] == [True]  # a scan: no text layer

