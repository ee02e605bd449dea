"""mailindex.parse: fidelity on real mail, generated round trips, and every known trap and hostile case."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import html as html_lib
import random
import time
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address as HAddress
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailindex.parse import MAX_DEPTH, MAX_PARTS, MAX_TEXT_CHARS, parse
from mailindex.sources.base import RawMessage
from tests.budget import examples
from tests.mail import nested, part_bomb
from tests.parse_reference import CORPORA, corpus_messages, differences, norm, reference
from tests.reference import message_id as reference_id


def p(data: bytes, **kw: int | None):  # type: ignore[no-untyped-def]
    return parse(RawMessage(data, **kw))  # type: ignore[arg-type]


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- real corpora

# Files that are not RFC 822 messages at all (parse() must still not raise on them).
NOT_RFC822 = {
    "mail-parser/mail_outlook_1": "an Outlook .msg (OLE compound file)",
    "cpython-test-email/msg_19.txt": "a message body without any header (a payload fixture of CPython's tests)",
    "stalwart-mail-parser/legacy/COPYING": "a licence text",
    "stalwart-mail-parser/malformed/COPYING": "a licence text",
    "stalwart-mail-parser/thirdparty/COPYING": "a licence text",
}

_BOM = "file starts with a UTF-8 byte order mark: the stdlib sees no header at all"
_FRO = ("first header line is 'Fro :...' (blank before the colon, RFC 5322 obs-optional): the stdlib ends the "
        "header block there, we read the To and Subject that follow")
_SMIME = [("smime18-encrypted.msg", None), ("smime.p7m", 1059)]  # the stdlib's files with the '>From ' unescaped
# Where the stdlib (either reading) is wrong and we are right: field -> (what the message says, checked by
# hand against its bytes; why the stdlib differs). Every other field must equal the reference.
IMPROVEMENTS: dict[str, dict[str, tuple[object, str]]] = {
    "mimekit/mbox/content-length.mbox#6": {"from": (["develop!nextmime@ebony@sblab.att.com"],
                                                    "UUCP bang path with two '@': the stdlib drops the mailbox, "
                                                    "we keep it as written")},
    "mimekit/mbox/content-length.mbox#15": {"files": (_SMIME, "attached message starts with an mboxrd '>From ' "
                                                              "line: the stdlib reads no headers in it")},
    "mimekit/mbox/content-length.mbox#16": {"files": (_SMIME, "same as #15")},
    "mimekit/messages/feedback-report.txt": {
        "subject": ("FW: Earn money", _BOM), "from": (["abusedesk@example.com"], _BOM),
        "to": (["abuse@example.net"], _BOM),
        "date": (int(datetime(2005, 3, 8, 21, 40, 36, tzinfo=timezone.utc).timestamp()), _BOM),  # 17:40:36 EDT
        "files": ([("", None)], _BOM + " (its message/feedback-report part is a file)")},
    "mimekit/messages/stack-overflow.txt": {"to": (["test@test.com"], "encoded-words used as address text: the "
                                                                      "stdlib invents the mailbox 'date'")},
    "notmuch/crypto/encrypted-signed.eml": {
        "date": (int(datetime(2019, 5, 29, 22, 9, 22, tzinfo=timezone.utc).timestamp()),
                 "'06:09:22 PM EDT': the stdlib ignores PM, we add 12 hours")},
    "ruby-mail/attachment_emails/attachment_with_base64_encoded_name.eml": {
        "files": ([("This is a test.pdf", 399)],
                  "unquoted encoded-word file name (name==?utf-8?B?...?=): the stdlib gives no name")},
    "ruby-mail/attachment_emails/attachment_with_unquoted_name.eml": {
        "files": ([("This is a test.txt", 11)], "unquoted file name with spaces: the stdlib keeps only the first word")},
    "ruby-mail/mime_emails/raw_email_with_binary_encoded.eml": {
        "files": ([("2013-08-13_19-08-28-1.jpg", 24)], "unquoted boundary containing '=': the stdlib finds no parts")},
    "stalwart-mail-parser/malformed/019.eml": {"subject": ("Sprint 3 multipart fixture", _FRO),
                                               "to": (["rimap-test@example.test"], _FRO)},
}
# How many corpus fields the strict stdlib reading raises on or garbles (U+FFFD, surrogate escapes), so
# that they are compared with the lenient reading: raw 8-bit and UTF-8 headers, raw bytes inside
# encoded-words, RFC 2231 names in a wrong charset, GBK in a gb2312 word, empty groups with a comment.
LENIENT_FIELDS = 21


@pytest.fixture(scope="module")
def corpora():  # type: ignore[no-untyped-def]
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA} (they live in ../shared/corpora beside the project)")
    return CORPORA


@pytest.mark.corpora
def test_every_corpus_message_parses_and_agrees_with_the_stdlib(corpora) -> None:  # type: ignore[no-untyped-def]
    seen, unexpected, lenient, stale = 0, [], [], []
    for name, data in corpus_messages(corpora):
        seen += 1
        rec = p(data)
        assert rec.size == len(data) and rec.sha256 == hashlib.sha256(data).hexdigest(), name
        if name in NOT_RFC822:
            continue
        reading = reference(data)
        lenient += [(name, f) for f in reading.lenient]
        expected = dict(reading.values)
        for field, (value, _why) in IMPROVEMENTS.get(name, {}).items():
            if reading.values[field] == value:
                stale.append((name, field))
            expected[field] = value
        for field, (ours, ref) in differences(rec, expected).items():
            how = "hand-checked" if field in IMPROVEMENTS.get(name, {}) else \
                "lenient stdlib" if field in reading.lenient else "stdlib"
            unexpected.append(f"{name}: {field}: ours {ours!r:.200} != {how} {ref!r:.200}")
    assert seen > 4000
    assert not unexpected, "\n".join(unexpected)
    assert not stale, f"hand-checked values the stdlib now reads too: {sorted(stale)}"
    assert len(lenient) == LENIENT_FIELDS, sorted(lenient)


@pytest.mark.corpora
def test_corpus_traps(corpora) -> None:  # type: ignore[no-untyped-def]
    msgs = dict(corpus_messages(corpora / "gmail-takeout-sample"))
    threads = {p(d).gmail_thread_id for d in msgs.values()}
    assert "1277085061787347926" in threads
    rec = p((corpora / "notmuch/crypto/encrypted-signed.eml").read_bytes())
    assert rec.date == int(datetime(2019, 5, 29, 22, 9, 22, tzinfo=timezone.utc).timestamp())
    rec = p((corpora / "mimekit/mbox/issue1189.mbox").read_bytes().split(b"\nFrom ", 2)[1].split(b"\n", 1)[1])
    assert [(f.file_name, f.size) for f in rec.files] == [("Attachment.zip", 3750)]  # no blank line after headers


_ATTACHED = (b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n%s\n\n"
             + b"A" * 40 + b"\n--b--\n")


# Fields the strict stdlib reading raises on or garbles, the value they must read as (by hand), and so the
# lenient reading that stands in for the strict one in the corpus test.
@pytest.mark.parametrize(("head", "field", "expected"), [
    (b"To: unlisted-recipients:; (no To-header on input)\n", "to", []),  # policy.default raises
    ("To: Zoë <zoë@exämple.net>\n".encode(), "to", ["zoë@exämple.net"]),  # raw UTF-8
    (b"Cc: J\xf6rg <j\xf6rg@x.de>, bob@x.org\n", "cc", ["jörg@x.de", "bob@x.org"]),  # raw latin-1
    (b"Subject: caf\xe9 \x80 cr\xe8me\n", "subject", "café € crème"),  # raw windows-1252
    (b"Subject: =?gb2312?B?1uzpRrv5?=\n", "subject", "朱镕基"),  # GBK's 镕 in a gb2312 word
    (b"Subject: =?x-unknown?q?d=E9j=E0?=\n", "subject", "déjà"),  # unknown charset
    (_ATTACHED % b"Content-Type: application/pdf; name*=iso-2022-jp''%E9t%E9.pdf", "files", [("été.pdf", 40)]),
    (_ATTACHED % b'Content-Disposition: attachment; filename="Fr\xf6sche.pdf"', "files", [("Frösche.pdf", 40)]),
])
def test_hostile_fields_are_compared_with_the_lenient_reading(head: bytes, field: str, expected: object) -> None:
    data = b"From: a@b.c\n" + head + (b"" if b"--b--" in head else b"\nbody\n")
    reading = reference(data)
    assert field in reading.lenient and reading.values[field] == expected
    assert differences(p(data), reading.values) == {}


# ---------------------------------------------------------------- generated round trips

SUBJECT_ALPHABET = st.sampled_from(list("abcXYZ 019.*+?()[]{}|^$\\/-:;,'\"!#&%_~<>@éÉüßçøÅ日本語中文한국ä") + ["Re: ", "☕"])
NAME_ALPHABET = st.sampled_from(list("abcdXYZ .,'\"()-éüßÅ日本") + ["Jo", "O'Brien"])
LOCAL = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_+\-]{0,8}(\.[a-zA-Z0-9_+\-]{1,5})?", fullmatch=True)
DOMAIN = st.sampled_from(["example.com", "Mail.Example.org", "sub.example.net", "x.io"])
FILE_NAME = st.builds("".join, st.lists(st.sampled_from(list("abcXYZ019 -_.()[]'éü日本") + [".pdf", ".tar.gz"]),
                                        min_size=1, max_size=20))
FILE_TYPES = st.sampled_from([("application", "octet-stream"), ("application", "pdf"), ("image", "png"),
                              ("application", "zip"), ("audio", "mpeg"), ("application", "x-msdownload")])
CHARSETS = {"utf-8": "abc xyz éü日本語 ☕ 123 .,;\n", "iso-8859-1": "abc xyz éüßÅ 123 .,;\n",
            "iso-2022-jp": "abc xyz 日本語のテキスト 123\n", "us-ascii": "abc xyz 123 .,;()\n"}


@st.composite
def mailboxes(draw: st.DrawFn) -> tuple[str, str]:
    name = " ".join("".join(draw(st.lists(NAME_ALPHABET, max_size=8))).split())
    return name, f"{draw(LOCAL)}@{draw(DOMAIN)}"


@st.composite
def generated_messages(draw: st.DrawFn) -> dict:
    spec: dict = {
        "subject": " ".join("".join(draw(st.lists(SUBJECT_ALPHABET, max_size=25))).split()),
        "from": draw(mailboxes()),
        "to": draw(st.lists(mailboxes(), min_size=1, max_size=4)),
        "cc": draw(st.lists(mailboxes(), max_size=3)),
        "date": draw(st.integers(0, 4_102_444_800)),
        "zone": draw(st.integers(-12 * 60, 14 * 60)),
    }
    charset = draw(st.sampled_from(sorted(CHARSETS)))
    spec["charset"] = charset
    spec["body"] = "".join(draw(st.lists(st.sampled_from(list(CHARSETS[charset])), min_size=1, max_size=200)))
    spec["html"] = draw(st.booleans())
    spec["files"] = draw(st.lists(st.tuples(FILE_NAME, st.integers(0, 3000), FILE_TYPES), max_size=3))
    spec["nested"] = draw(st.none() | st.tuples(st.text(st.sampled_from("abcdefgh "), min_size=1, max_size=20),
                                                  st.booleans()))
    spec["seed"] = draw(st.integers(0, 2**32))
    return spec


def build(spec: dict) -> bytes:
    m = EmailMessage()
    m["Subject"] = spec["subject"]
    m["From"] = HAddress(spec["from"][0], addr_spec=spec["from"][1])
    m["To"] = [HAddress(n, addr_spec=a) for n, a in spec["to"]]
    if spec["cc"]:
        m["Cc"] = [HAddress(n, addr_spec=a) for n, a in spec["cc"]]
    zone = timezone(timedelta(minutes=spec["zone"]))
    m["Date"] = email.utils.format_datetime(datetime.fromtimestamp(spec["date"], zone))
    m.set_content(spec["body"], charset=spec["charset"])
    if spec["html"]:
        m.add_alternative(f"<html><body><p>{html_lib.escape(spec['body'])}</p>"
                          f"<script>var hidden = 'scriptword';</script></body></html>", subtype="html")
    rng = random.Random(spec["seed"])
    for name, size, (maintype, subtype) in spec["files"]:
        m.add_attachment(rng.randbytes(size), maintype=maintype, subtype=subtype, filename=name)
    if spec["nested"] is not None:
        words, multipart = spec["nested"]
        inner = EmailMessage()
        inner["Subject"] = f"inner {words}"
        inner["From"] = "inner@example.org"
        inner.set_content(f"inner body {words}\n")
        if multipart:
            inner.add_attachment(b"inner file bytes", maintype="application", subtype="octet-stream",
                                 filename="inner.bin")
        m.add_attachment(inner)
    return bytes(m)


@settings(max_examples=examples(0.75), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(generated_messages())
def test_generated_messages_round_trip(spec: dict) -> None:
    data = build(spec)
    rec = p(data)
    assert rec.parse_error is None
    assert rec.subject == spec["subject"]
    assert rec.addresses["from"][0].email == spec["from"][1].lower()
    assert [a.email for a in rec.addresses["to"]] == [a.lower() for _, a in spec["to"]]
    assert [a.name for a in rec.addresses["to"]] == [n or None for n, _ in spec["to"]]
    assert rec.addresses["from"][0].name == (spec["from"][0] or None)
    assert [a.email for a in rec.addresses.get("cc", [])] == [a.lower() for _, a in spec["cc"]]
    assert "bcc" not in rec.addresses and "sender" not in rec.addresses
    assert (rec.date, rec.date_source) == (spec["date"], "header")
    assert norm(spec["body"]) in norm(rec.text)
    assert "scriptword" not in rec.text
    expected = [(name.strip(), size, f"{mt}/{st_}") for name, size, (mt, st_) in spec["files"]]
    got = [(f.file_name, f.size, f.type) for f in rec.files]
    if spec["nested"] is not None:
        words, multipart = spec["nested"]
        k = str(len(spec["files"]) + 2)
        assert norm(f"inner body {words}") in norm(rec.text) and norm(f"inner {words}") in norm(rec.text)
        assert rec.files[len(expected)].type == "message/rfc822"
        assert rec.files[len(expected)].body_section == k
        if multipart:
            assert (rec.files[-1].file_name, rec.files[-1].body_section) == ("inner.bin", f"{k}.2")
        got = got[: len(expected)]
    assert got == expected
    assert [f.body_section for f in rec.files[: len(expected)]] == [str(i + 2) for i in range(len(expected))]
    assert all(not f.is_embedded and f.content_disposition == "attachment" for f in rec.files)


@settings(max_examples=examples(1.5), deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 5))
def test_parse_never_raises(data: bytes, splice: int) -> None:
    base = crlf("From: a@b.c\nTo: x@y.z\nSubject: s\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\n"
                "Content-Type: text/plain; charset=utf-8\n\nhello\n--zz\nContent-Type: application/pdf; name=a.pdf\n"
                "Content-Transfer-Encoding: base64\n\nJVBERi0=\n--zz--\n")
    cut = len(base) * splice // 5
    for blob in (data, base[:cut] + data + base[cut:]):
        rec = p(blob)
        assert rec.size == len(blob)
        assert rec.message_id == reference_id(blob)  # README rule


# ---------------------------------------------------------------- hostile input




def test_empty_bytes() -> None:
    rec = p(b"")
    assert rec.parse_error and rec.size == 0
    assert rec.sha256 == hashlib.sha256(b"").hexdigest() and rec.message_id == hashlib.sha256(b"").hexdigest()[:24]
    assert (rec.date, rec.date_source) == (0, "none") and rec.files == [] and rec.text == ""
    assert p(b"\r\n\r\n", mtime=5).parse_error and p(b"\r\n\r\n", mtime=5).date_source == "mtime"


def test_binary_garbage() -> None:
    data = random.Random(7).randbytes(200_000)
    rec = p(data, envelope_date=77)
    assert rec.parse_error and rec.size == len(data) and rec.text == ""
    assert (rec.date, rec.date_source) == (77, "envelope")


def test_part_bomb_is_capped() -> None:
    started = time.monotonic()
    rec = p(part_bomb(MAX_PARTS + 500, named=True))
    assert rec.subject == "part bomb"
    assert 0 < len(rec.files) <= MAX_PARTS
    assert rec.files[0].file_name == "p0.txt" and rec.files[0].body_section == "1"
    assert any("part cap" in d for d in rec.defects) and rec.parse_error
    assert len(rec.text) <= MAX_TEXT_CHARS
    assert time.monotonic() - started < 60  # generous: only guards against a hang


def test_deep_nesting_is_capped() -> None:
    rec = p(nested(500))
    assert rec.subject == "wrap 499" and rec.emails("from") == ["wrap@example.com"]
    assert any("depth cap" in d for d in rec.defects) and rec.parse_error
    assert "wrap 498" in rec.text and "innermost words" not in rec.text
    shallow = p(nested(20))
    assert shallow.parse_error is None and "innermost words" in shallow.text and "the core" in shallow.text
    assert MAX_DEPTH >= 20


def test_fifty_megabytes() -> None:
    chunk = base64.b64encode(bytes(range(57))) + b"\r\n"  # one full 76-character line
    payload = chunk * (50 * 2**20 // len(chunk))
    data = (b"From: big@example.com\r\nSubject: fifty megabytes\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b"--z\r\nContent-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=big.bin\r\n\r\n" + payload + b"--z--\r\n")
    rec = p(data)
    assert rec.subject == "fifty megabytes" and rec.parse_error is None
    assert [(f.file_name, f.body_section) for f in rec.files] == [("big.bin", "2")]
    assert rec.files[0].size == 57 * (50 * 2**20 // len(chunk))
    assert rec.text.strip() == "see attached"


def test_huge_text_is_capped() -> None:
    data = b"Subject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + ("wörd " * 3_000_000).encode()
    rec = p(data)
    assert MAX_TEXT_CHARS - 10 <= len(rec.text) <= MAX_TEXT_CHARS
    assert rec.text.startswith("wörd wörd") and "\ufffd" not in rec.text
    assert any("text cap" in d for d in rec.defects) and rec.parse_error is None
    html = b"Subject: h\r\nContent-Type: text/html\r\n\r\n" + b"<p>word</p>" * 2_000_000
    assert len(p(html).text) <= MAX_TEXT_CHARS


@pytest.mark.parametrize("data", [
    b"Subject: " + b"=?a?q?x " * 200_000 + b"\r\nTo: " + b"=?a?q?x " * 100_000 + b"\r\n\r\nbody",  # quadratic bait
    b"Subject: s\r\nContent-Type: message/rfc822\r\n\r\nSubject: " + b"=?utf-8?q?x?= " * 100_000 + b"\r\n\r\nb",
    b"To: " + b"<a@b.c>" * 100_000 + b"\r\n\r\nx",
    b"To: " + b"(" * 50_000 + b"\r\n\r\nx",
    b"From: " + b'"a' * 50_000 + b"\r\n\r\nx",
    b"From: " + b"<" * 30_000 + b"\r\n\r\nx",
    b"Subject: s\r\nContent-Type: text/plain; " + b"a=1; " * 100_000 + b"\r\n\r\nbody",
    b"X-A: b\r\n" * 300_000 + b"\r\nbody",
    b"Date: " + b"1 " * 500_000 + b"\r\n\r\nbody",
])
def test_hostile_headers_stay_bounded(data: bytes) -> None:
    started = time.monotonic()
    rec = p(data)
    assert rec.size == len(data)
    assert len(rec.subject) <= 64 * 1024 and all(len(v) <= 10_000 for v in rec.addresses.values())
    assert time.monotonic() - started < 20  # each takes well under a second; this only catches a blow-up


# ---------------------------------------------------------------- dates

BASE = "From: a@example.com\nSubject: d\n{headers}\nbody\n"
RECEIVED = ("Received: from mx2 by mx3; Tue, 2 Jan 2001 10:00:00 +0000\n"
            "Received: from mx1 by mx2; Mon, 1 Jan 2001 10:00:00 +0000\n")


@pytest.mark.parametrize(("date", "expected"), [
    ("Tue, 1 Jan 2002 10:00:00 +0100", datetime(2002, 1, 1, 9, tzinfo=timezone.utc)),
    ("Tue, 1 Jan 2002 10:00:00", datetime(2002, 1, 1, 10, tzinfo=timezone.utc)),  # no zone: UTC
    ("1 Jan 2002 10:00:00 -0000", datetime(2002, 1, 1, 10, tzinfo=timezone.utc)),
    ("Tue, 1 Jan 2002 10:00:00 PM EDT", datetime(2002, 1, 2, 2, tzinfo=timezone.utc)),
    ("Tue, 1 Jan 2002 12:15 AM GMT", datetime(2002, 1, 1, 0, 15, tzinfo=timezone.utc)),
    ("Tue Jan  1 10:00:00 2002", datetime(2002, 1, 1, 10, tzinfo=timezone.utc)),  # asctime
    ("Tue, 1 Jan 2002 10:00:00 +01:00", datetime(2002, 1, 1, 9, tzinfo=timezone.utc)),
    ("Tue, 01 Jan 02 10:00:00 GMT (comment)", datetime(2002, 1, 1, 10, tzinfo=timezone.utc)),
    ("2002-01-01T10:00:00Z", datetime(2002, 1, 1, 10, tzinfo=timezone.utc)),
])
def test_date_header_forms(date: str, expected: datetime) -> None:
    rec = p(BASE.format(headers=f"Date: {date}").encode())
    assert (rec.date, rec.date_source) == (int(expected.timestamp()), "header")


@pytest.mark.parametrize("bad", ["Mon, 1 Jan 99999 10:00:00 +0000", "garbage", "", "Thu, 31 Feb 2001 10:00:00 +0000",
                                 "Fri, 1 Jan 1800 10:00:00 +0000", "Fri, 1 Jan 2300 10:00:00 +0000",
                                 "Fri, 13 Sep 2024 25:61:00 +0000"])
def test_unparseable_date_falls_back_in_order(bad: str) -> None:
    jan1 = int(datetime(2001, 1, 2, 10, tzinfo=timezone.utc).timestamp())
    rec = p(BASE.format(headers=f"Date: {bad}\n{RECEIVED}").encode(), envelope_date=5, mtime=6)
    assert (rec.date, rec.date_source) == (jan1, "received")  # the topmost Received
    rec = p(BASE.format(headers=f"Date: {bad}").encode(), envelope_date=5, mtime=6)
    assert (rec.date, rec.date_source) == (5, "envelope")
    rec = p(BASE.format(headers=f"Date: {bad}").encode(), mtime=6)
    assert (rec.date, rec.date_source) == (6, "mtime")
    rec = p(BASE.format(headers=f"Date: {bad}").encode())
    assert (rec.date, rec.date_source) == (0, "none")


def test_missing_date_uses_received() -> None:
    rec = p(BASE.format(headers="Received: from a by b;\n\tMon, 1 Jan 2001 10:00:00 -0500").encode(), mtime=1)
    assert (rec.date, rec.date_source) == (int(datetime(2001, 1, 1, 15, tzinfo=timezone.utc).timestamp()),
                                           "received")
    rec = p(BASE.format(headers="Received: from a by b (no date)").encode(), mtime=1)
    assert rec.date_source == "mtime"


# ---------------------------------------------------------------- headers


def test_address_groups_and_garbage() -> None:
    rec = p(b"From: Alice <ALICE@Example.COM>\nTo: undisclosed-recipients:;\n"
            b"Cc: Team: a@x.org, \"Doe, John\" <J@X.org>;, c@z.org\nBcc: ,,,@@@<<>>\"\n"
            b"Reply-To: list@example.org (The List)\nSender: <>\nSubject: g\n\nbody\n")
    assert rec.addresses["from"][0].email == "alice@example.com" and rec.addresses["from"][0].name == "Alice"
    assert rec.addresses["to"] == []  # the header exists: the role is present, with no members
    assert rec.emails("cc") == ["a@x.org", "j@x.org", "c@z.org"]
    assert rec.addresses["cc"][1].name == "Doe, John"
    assert "bcc" in rec.addresses  # garbage: whatever it is, no crash
    assert rec.emails("reply_to") == ["list@example.org"]
    assert rec.addresses["sender"] == []
    assert list(rec.addresses) == ["from", "to", "cc", "bcc", "reply_to", "sender"]
    assert "to" not in p(b"From: a@b.c\nSubject: x\n\nbody\n").addresses


def test_repeated_address_headers_are_merged_in_order() -> None:
    rec = p(b"From: a@b.c\nTo: one@x.org\nTo: two@x.org, three@x.org\nSubject: x\n\nbody\n")
    assert rec.emails("to") == ["one@x.org", "two@x.org", "three@x.org"]


def test_eight_bit_and_encoded_headers() -> None:
    latin1 = "Subject: caf\xe9 na\xefve\nFrom: J\xf6rg <j@x.de>\n\nb\n".encode("latin-1")
    rec = p(latin1)
    assert rec.subject == "café naïve" and rec.addresses["from"][0].name == "Jörg"
    assert "8-bit header bytes" in rec.defects
    utf8 = "Subject: Café crème ✓\nFrom: Zoë Ångström <zoe@x.se>\nTo: märy@exämple.net\n\nb\n".encode()
    rec = p(utf8)
    assert rec.subject == "Café crème ✓" and rec.addresses["from"][0].name == "Zoë Ångström"
    assert rec.emails("to") == ["märy@exämple.net"]
    # "Grüße" with the ü split across two encoded-words, and a name encoded in B
    split = (b"Subject: =?utf-8?q?Gr=C3?= =?utf-8?q?=BC=C3=9Fe?= aus =?UTF-8?B?TcO8bmNoZW4=?=\n"
             b"From: =?utf-8?b?Wm/Dqw==?= <zoe@x.se>\n\nb\n")
    rec = p(split)
    assert rec.subject == "Grüße aus München" and rec.addresses["from"][0].name == "Zoë"
    raw_in_word = b"Subject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr\xf6sche?=\n\nb\n"
    assert p(raw_in_word).subject == "Die Hasen und die Frösche"
    folded = b"Subject: a long\r\n\tsubject  that\r\n  folds\r\nTo: x@y.z\r\n\r\nb\r\n"
    assert p(folded).subject == "a long subject  that  folds"


def test_identifier_headers() -> None:
    rec = p(b"From: a@b.c\nSubject: x\nMessage-ID:\n <abc@\n host.example>\nIn-Reply-To: <p1@x> (note) <p2@x>\n"
            b"References: <r1@x>\n <r2@x>\t<r3@x>\nX-GM-MSGID: 1277085061787347926\nX-GM-THRID: 1277085061787347000\n"
            b"List-Unsubscribe: <mailto:leave@lists.example.org>,\n <https://lists.example.org/u>\n"
            b"List-Help: <mailto:help@lists.example.org>\n\nbody\n")
    assert rec.email_message_id == "<abc@host.example>"
    assert rec.in_reply_to == "<p1@x>" and rec.references == ["<r1@x>", "<r2@x>", "<r3@x>"]
    assert (rec.gmail_message_id, rec.gmail_thread_id) == ("1277085061787347926", "1277085061787347000")
    assert rec.list_unsubscribe == "<mailto:leave@lists.example.org>, <https://lists.example.org/u>"
    assert rec.list_help == "<mailto:help@lists.example.org>"
    bare = p(b"From: a@b.c\nMessage-ID: bare-id@host\n\nbody\n")
    assert bare.email_message_id == "<bare-id@host>" and bare.in_reply_to is None and bare.references == []
    assert p(b"From: a@b.c\n\nbody\n").email_message_id is None


def test_mbox_from_line_and_bom_are_not_headers() -> None:
    rec = p(b"From someone@example.com Mon Jan  1 00:00:00 2001\nFrom: a@b.c\nSubject: s\n\nbody\n")
    assert rec.subject == "s" and rec.emails("from") == ["a@b.c"]
    rec = p(b"\xef\xbb\xbfFrom: a@b.c\r\nSubject: bom\r\n\r\nbody\r\n")
    assert rec.subject == "bom" and rec.parse_error is None and "body" in rec.text


def test_non_header_line_ends_the_header_block() -> None:
    rec = p(b"From: a@b.c\nSubject: s\nthis is body text without a blank line\nTo: not@a.header\n\nmore\n")
    assert rec.subject == "s" and "to" not in rec.addresses
    assert "missing header/body separator" in rec.defects


def test_no_headers_is_a_parse_error() -> None:
    rec = p(b"just some text\nwithout any header\n")
    assert rec.parse_error and "just some text" in rec.text


# ---------------------------------------------------------------- bodies and charsets


@pytest.mark.parametrize(("charset", "raw", "expected"), [
    ("y", "naïve ☕".encode(), "naïve ☕"),  # bogus label, UTF-8 bytes
    ("y", "naïve".encode("latin-1"), "naïve"),  # bogus label, latin-1 bytes
    ("windows-874", "สวัสดี".encode("cp874"), "สวัสดี"),
    ("x-unknown-charset", "déjà".encode("cp1252"), "déjà"),
    ("us-ascii", "8-bit in ascii: é".encode(), "8-bit in ascii: é"),
    ("utf-8", "wrong label: \xe9t\xe9".encode("latin-1"), "wrong label: été"),
    ("iso-2022-jp", "日本語".encode("iso-2022-jp"), "日本語"),
    ('"UTF-8"', "quoted label ✓".encode(), "quoted label ✓"),
    ("base64", b"not a text codec", "not a text codec"),
])
def test_charsets(charset: str, raw: bytes, expected: str) -> None:
    data = f"From: a@b.c\nSubject: cs\nContent-Type: text/plain; charset={charset}\n\n".encode() + raw + b"\n"
    rec = p(data)
    assert expected in rec.text and rec.parse_error is None
    html = data.replace(b"text/plain", b"text/html")
    assert expected in p(html).text


def test_html_is_reduced_to_text() -> None:
    rec = p(b"From: a@b.c\nSubject: h\nContent-Type: text/html; charset=utf-8\n\n<html><head><style>.x{color:red}"
            b"</style><title>Page</title></head><body><p>Hello&nbsp;<b>world</b> &amp; more</p>"
            b"<script>var secret = 1;</script></body></html>\n")
    assert "Hello world & more" in " ".join(rec.text.split())
    assert "secret" not in rec.text and "color" not in rec.text and rec.files == []


MIXED = """From: a@b.c
Subject: files
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: multipart/alternative; boundary="YY"

--YY
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

plain caf=C3=A9
--YY
Content-Type: multipart/related; boundary="ZZ"

--ZZ
Content-Type: text/html; charset=utf-8

<p>html words <img src="cid:logo@x"></p>
--ZZ
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--ZZ--
--YY--
--XX
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAECAwQF
--XX
Content-Type: application/pdf; name="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="
Content-Disposition: attachment; filename*0*=utf-8''%C3%9Cbersicht%20Q3%20%E2;
 filename*1*=%80%93%20Pr%C3%A4sentation.pdf
Content-Transfer-Encoding: base64

TVqQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
--XX
Content-Type: text/plain; name=notes.txt
Content-Disposition: inline; filename="notes.txt"

inline named text part
--XX
Content-Type: image/gif; name="=?utf-8?q?a=E6=97?= =?utf-8?q?=A5.gif?="
Content-Disposition: inline

GIF89a
--XX
Content-Type: application/zip; name=broken.zip
Content-Disposition: attachment
Content-Transfer-Encoding: base64

UEsDBAo*!AAAAAA
--XX--
"""


def test_files_sections_sizes_and_names() -> None:
    rec = p(crlf(MIXED))
    got = [(f.file_name, f.size, f.type, f.body_section, f.is_embedded, f.content_disposition, f.content_id)
           for f in rec.files]
    assert got == [
        ("", 8, "image/png", "1.2.2", True, None, "<logo@x>"),
        ("", 6, "application/octet-stream", "2", False, None, None),  # no name, no disposition: kept
        ("Übersicht Q3 – Präsentation.pdf", 64, "application/pdf", "3", False, "attachment", None),
        ("notes.txt", len(b"inline named text part"), "text/plain", "4", False, "inline", None),
        ("a日.gif", 6, "image/gif", "5", True, "inline", None),  # encoded-word split inside a character
        ("broken.zip", 9, "application/zip", "6", False, "attachment", None),  # lenient base64
    ]
    assert rec.files[2].sniffed_type == "application/x-dosexec"  # a renamed executable
    assert rec.files[0].sniffed_type and rec.files[1].sniffed_type
    assert "plain café" in rec.text and "html words" in rec.text and "inline named text part" in rec.text
    assert any(d.startswith("fallback:") for d in rec.defects)  # broken base64 sent it to the stdlib path
    assert rec.parse_error is None


def test_fast_and_stdlib_paths_agree() -> None:
    """The same message read by the fast path, then forced onto the stdlib path (an undecodable part)."""
    gif = MIXED.index("--XX\nContent-Type: image/gif")
    clean = MIXED[:gif] + MIXED[MIXED.index("--XX\nContent-Type: application/zip"):]
    clean = clean.replace("%E2;\n filename*1*=%80%93", "%E2%80%93;\n filename*1*=")  # no character split
    fast = p(crlf(clean.replace("UEsDBAo*!AAAAAA", "UEsDBAoAAAAAAA==")))
    assert not any(d.startswith("fallback:") for d in fast.defects)
    slow = p(crlf(clean.replace("UEsDBAo*!AAAAAA", "UEsDBAoAAAAAAA")))  # missing padding: fast parser refuses
    assert any(d.startswith("fallback:") for d in slow.defects)
    assert [(f.file_name, f.size, f.type, f.body_section, f.is_embedded, f.content_disposition, f.content_id,
             f.sniffed_type) for f in fast.files] == \
           [(f.file_name, f.size, f.type, f.body_section, f.is_embedded, f.content_disposition, f.content_id,
             f.sniffed_type) for f in slow.files]
    assert norm(fast.text) == norm(slow.text)
    assert (fast.subject, fast.addresses, fast.date) == (slow.subject, slow.addresses, slow.date)


def test_single_part_attachment_is_section_one() -> None:
    rec = p(b"From: a@b.c\nSubject: s\nContent-Type: application/pdf\nContent-Disposition: attachment\n"
            b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n")
    assert [(f.file_name, f.size, f.body_section, f.sniffed_type) for f in rec.files] == \
           [("", 9, "1", "application/pdf")]
    plain = p(b"From: a@b.c\nSubject: s\n\nhello\n")
    assert plain.files == [] and plain.text.strip() == "hello"


def test_quoted_printable_attachment_keeps_line_ends() -> None:
    body = "line one =\nstill one\nline two\n"
    for nl in ("\n", "\r\n"):
        data = (f"From: a@b.c\nSubject: qp\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nt\n--b\n"
                f"Content-Type: text/x-diff; name=a.diff\nContent-Transfer-Encoding: quoted-printable\n\n{body}--b--\n")
        rec = p(data.replace("\n", nl).encode())
        # the line end before the boundary belongs to the boundary
        assert rec.files[0].size == len("line one still one\nline two".replace("\n", nl))


NESTED = """From: outer@example.com
Subject: Fwd: Budget approved
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="OUT"

--OUT
Content-Type: text/plain

see below
--OUT
Content-Type: message/rfc822

From: Inner Person <inner@example.com>
Subject: Budget approved for Zanzibar offsite
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="IN"

--IN
Content-Type: text/plain

the secret word is quokkaberry
--IN
Content-Type: application/pdf; name=budget.pdf

%PDF-1.4 budget
--IN--
--OUT
Content-Type: message/rfc822
Content-Disposition: attachment; filename="forwarded.eml"

From: second@example.com
Subject: second inner

single part inner body
--OUT--
"""


def test_nested_messages_are_searchable_and_numbered() -> None:
    rec = p(crlf(NESTED))
    assert rec.subject == "Fwd: Budget approved" and rec.emails("from") == ["outer@example.com"]
    for words in ("quokkaberry", "Budget approved for Zanzibar offsite", "inner@example.com", "single part inner body",
                  "second inner", "see below"):
        assert words in rec.text
    assert [(f.file_name, f.type, f.body_section) for f in rec.files] == [
        ("budget.pdf", "application/pdf", "2.2"),
        ("forwarded.eml", "message/rfc822", "3"),  # a named attached message is also a file
    ]
    assert rec.files[1].size == len(crlf("From: second@example.com\nSubject: second inner\n\nsingle part inner body"))


@pytest.mark.parametrize("zip_b64", ["UEsDBAoAAAAAAA==", "UEsDBAoAAAAAAA"])  # fast path, stdlib path
def test_transfer_encoded_attached_message(zip_b64: str) -> None:
    inner = crlf("From: i@x.org\nSubject: inner b64\n\nhidden words\n")
    data = (crlf("From: a@b.c\nSubject: s\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                 "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n"
                 "Content-Disposition: attachment\n\n") + base64.encodebytes(inner).replace(b"\n", b"\r\n")
            + crlf(f"--b\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\n{zip_b64}\n--b--\n"))
    rec = p(data)
    assert norm(rec.text) == "inner b64 i@x.org hidden words"
    assert [(f.type, f.size, f.body_section) for f in rec.files] == [("message/rfc822", len(inner), "1"),
                                                                      ("application/zip", 10, "2")]


def test_digest_parts_default_to_messages() -> None:
    data = crlf("From: list@x.org\nSubject: digest\nContent-Type: multipart/digest; boundary=D\n\n--D\n\n"
                "From: one@x.org\nSubject: first post\n\nfirst body\n--D\n\nFrom: two@x.org\nSubject: second post\n\n"
                "second body\n--D--\n")
    rec = p(data)
    assert rec.files == [] and all(w in rec.text for w in ("first post", "first body", "second body"))


def test_multipart_without_boundary_is_text() -> None:
    rec = p(b"From: a@b.c\nSubject: nb\nContent-Type: multipart/mixed\n\nthe body is plain words\n")
    assert "the body is plain words" in rec.text and rec.parse_error is None


def test_uuencoded_attachment() -> None:
    import binascii

    line = binascii.b2a_uu(b"hello uu")
    data = (b"From: a@b.c\nSubject: uu\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\ntext\n--b\n"
            b"Content-Type: application/octet-stream; name=h.bin\nContent-Transfer-Encoding: x-uuencode\n\n"
            b"begin 644 h.bin\n" + line + b"`\nend\n--b--\n")
    rec = p(data)
    assert [(f.file_name, f.size) for f in rec.files] == [("h.bin", 8)]


def test_same_bytes_same_record() -> None:
    data = crlf(MIXED)
    assert p(data) == p(data)
