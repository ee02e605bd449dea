"""mailindex.parse on hostile headers: every string of a Record is valid Unicode, the stored form round-trips,
and split or 8-bit headers decode to what they say, on the fast path and on the compat32 fallback alike."""

from __future__ import annotations

import binascii
import dataclasses
import encodings
import encodings.aliases
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from mailindex import MailIndex
from mailindex.index.store import decode_record, encode_record
from mailindex.parse import parse
from mailindex.parse_headers import codec_for, decode_text, header_fields
from mailindex.record import Record
from mailindex.sources.base import RawMessage
from tests import mail
from tests.parse_reference import eight_bit
from tests.strategies import BOGUS_CHARSETS, HEADER_NAMES, hostile_file_param, hostile_value, split_words

# ---------------------------------------------------------------- the contract


def strings(value: object) -> Iterator[str]:
    """Every string inside a Record: fields, dict keys, list items, attachment and address fields."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from strings(getattr(value, f.name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings(v)


def checked(data: bytes) -> Record:
    """parse(data), asserting the contract: no internal failure, valid Unicode in every string, and a
    stored form (encode_record) that decodes to the same record (minus the searchable text, not stored)."""
    rec = parse(RawMessage(data))
    assert not (rec.parse_error or "").startswith("parser failure"), rec.parse_error
    for s in strings(rec):
        s.encode("utf-8")  # raises on a lone surrogate
    assert decode_record(encode_record(rec)) == dataclasses.replace(rec, text="", attachment_text="")
    return rec


def uuencoded(name: bytes, content: bytes) -> bytes:
    return b"begin 644 " + name + b"\n" + binascii.b2a_uu(content) + b"`\nend\n"


def with_attachment(name: bytes, cte: bytes, content: bytes = b"hello") -> bytes:
    """A two-part message whose second part is the file `name` (raw bytes) in transfer encoding `cte`."""
    body = uuencoded(name, content) if cte == b"x-uuencode" else binascii.b2a_base64(content)
    return (b"From: a@example.com\nSubject: files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
            b"--b\nContent-Type: text/plain\n\nsee the file\n--b\n"
            b'Content-Type: application/octet-stream; name="' + name + b'"\n'
            b'Content-Disposition: attachment; filename="' + name + b'"\n'
            b"Content-Transfer-Encoding: " + cte + b"\n\n" + body + b"--b--\n")


# ---------------------------------------------------------------- generated hostile messages

_CTES = [b"base64", b"x-uuencode", b"quoted-printable", b"7bit", b"8bit", b"b\xe9se64"]
_CTYPES = [b"application/octet-stream", b"image/p\xe9ng", b"text/plain", b"text/html", b"message/rfc822"]


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    """A multipart message with hostile values in its headers, its file part's parameters, Content-ID and
    nested message, a text part in a bogus charset, and a file part whose encoding is often uuencode
    (which sends the whole message down the compat32 fallback)."""
    v = lambda fold=False: draw(hostile_value(fold))  # noqa: E731
    names = draw(st.lists(st.sampled_from(HEADER_NAMES), min_size=1, max_size=8))
    heads = b"".join(n.encode() + b": " + v(True) + b"\n" for n in names)
    charset = draw(st.sampled_from(BOGUS_CHARSETS)).encode("latin-1")
    cte, ctype = draw(st.sampled_from(_CTES)), draw(st.sampled_from(_CTYPES))
    param = draw(hostile_file_param())
    nested = b"Subject: " + v() + b"\nFrom: " + v() + b"\n\n" + draw(st.binary(max_size=20)) + b"\n"
    content = {b"base64": binascii.b2a_base64(b"hello"), b"x-uuencode": uuencoded(v(), b"hello")}.get(cte, b"hello\n")
    data = (heads + b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
            b"--b\nContent-Type: text/" + draw(st.sampled_from([b"plain", b"html"])) + b"; charset=" + charset +
            b"\n\n" + draw(st.binary(max_size=30)) + b"\n"
            b"--b\nContent-Type: " + ctype + param + b"\nContent-Disposition: attachment" + param +
            b"\nContent-ID: " + v() + b"\nContent-Transfer-Encoding: " + cte + b"\n\n" +
            (nested if ctype == b"message/rfc822" else content) +
            b"--b\nContent-Type: message/rfc822\n\n" + nested + b"--b--\n")
    return data.replace(b"\n", b"\r\n") if draw(st.booleans()) else data


@given(hostile_messages())
@example(b"From: =?utf-7?q?+2D0-?= <a@b.c>\nSubject: =?utf-7?b?KzJEMC0=?=\n\nx\n")  # lone high surrogate
@example(b"To: list: =?utf-8?b?5p0=?= =?utf-8?b?pQ==?= <a@b.c>;\n\nx\n")  # the lore spam: split, stdlib path
@example(b"Content-Type: text/plain; charset=unicode_escape\n\n\\ud800 \xe9\n")
@example(b"From: a@b.c\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: image/p\xe9ng;"
         b" name*=utf-7''%2B2D0-\nContent-ID: <\xe9@x>\nContent-Transfer-Encoding: x-uuencode\n\n"
         b"begin 644 x\n`\nend\n--b--\n")
def test_hostile_messages_give_valid_records(data: bytes) -> None:
    checked(data)


@given(st.sampled_from(HEADER_NAMES), hostile_value(fold=True))
def test_hostile_header_values_give_valid_records(name: str, value: bytes) -> None:
    checked(name.encode() + b": " + value + b"\nMessage-ID: <" + value + b">\nReferences: <" + value +
            b">\n\nbody\n")


# ---------------------------------------------------------------- split encoded-words against the text


@given(split_words())
def test_words_split_inside_characters_decode_to_the_text(split: tuple[str, str]) -> None:
    text, words = split
    assume("?q?=2c?=" not in words.lower())  # a word that is only a comma separates addresses (the stdlib's bug)
    rec = checked(f"Subject: Re: {words} end\nFrom: {words} <a@example.com>\n"
                  f"Cc: team: {words} <b@example.com>;\n\nbody\n".encode("ascii"))
    assert rec.subject == f"Re: {text} end"
    name = " ".join(text.split()) or None
    assert rec.addresses["from"][0].name == name  # the fast path
    assert rec.addresses["cc"][0].name == name  # a group: the stdlib's parser


@given(split_words(), st.sampled_from([b"base64", b"x-uuencode"]))
def test_file_names_in_split_words_decode_to_the_text(split: tuple[str, str], cte: bytes) -> None:
    text, words = split
    assume('"' not in text)  # a decoded quote inside the name: fast-mail-parser cuts it there, undetectably
    assume("?==?" not in words)  # words without a blank between (not RFC 2047): it reads them as one word
    # it decodes word by word, losing the state of a stateful charset (a utf-7 shift, an iso-2022 escape)
    assume("?utf-7?" not in words and "?iso-2022-jp?" not in words)
    name = words.replace("\r\n", "").replace("\n", "").encode("ascii")
    (f,) = checked(with_attachment(name, cte)).files
    assert f.file_name == text.lstrip("\ufeff").strip() and f.size == 5


def test_words_split_across_address_tokens_keep_every_address() -> None:
    # the lore spam's shape: words inside local parts, a character cut at the "@" (no neighbour to join)
    rec = checked(b"To: list@example.org,\r\n =?utf-8?Q?=D0=97=D0=B4=D1=80=D0?=@localhost,\r\n"
                  b" =?utf-8?Q?_=D0=B8=D0=BD?=@localhost\r\n\r\nbody\r\n")
    assert rec.emails("to") == ["list@example.org", "здр\ufffd@localhost", '" ин"@localhost']


@pytest.mark.parametrize("raw, text", [
    (b"\xb2\xd1\x83\xd0", "\ufffdу\ufffd"),  # UTF-8 cut at both ends: the cut bytes are U+FFFD
    (b"caf\xe9", "café"),  # mislabelled latin-1 is no cut UTF-8: the cp1252 fallback
    (b"ab\xd0", "abÐ"),  # nothing but ASCII besides the cut: no evidence of UTF-8
])
def test_declared_utf8_with_a_cut_character(raw: bytes, text: str) -> None:
    defects: list[str] = []
    assert decode_text(raw, "utf-8", defects) == text
    assert defects == ([] if "\ufffd" in text else ["charset fallback: utf-8"])


# ---------------------------------------------------------------- 8-bit headers and file names

_EIGHT_BIT = st.binary(min_size=1, max_size=12).map(
    lambda b: bytes(c for c in b if c >= 0x80 or 0x30 <= c <= 0x7A and c not in b"=\\"))


@pytest.mark.parametrize("raw, name", [
    (b"Fr\xf6sche.txt", "Frösche.txt"),  # latin-1
    (b"\x80uro \x8aa.txt", "€uro Ša.txt"),  # windows-1252 (latin-1 would give C1 controls)
    (b"\x81x\xf6.txt", "\x81xö.txt"),  # not cp1252 either: latin-1
    (b"Fr\xc3\xb6sche.txt", "Frösche.txt"),  # raw UTF-8
])
@pytest.mark.parametrize("cte", [b"base64", b"x-uuencode"])
def test_eight_bit_file_names(raw: bytes, name: str, cte: bytes) -> None:
    rec = checked(with_attachment(raw, cte))
    assert [(f.file_name, f.size) for f in rec.files] == [(name, 5)]
    assert ("fallback: part 2: uuencoded" in rec.defects) == (cte == b"x-uuencode")


@given(_EIGHT_BIT, st.sampled_from([b"base64", b"x-uuencode"]))
def test_eight_bit_file_names_read_like_eight_bit_headers(raw: bytes, cte: bytes) -> None:
    # UTF-8 for a C1 control reads, from fast-mail-parser, like a latin-1 byte (taken as cp1252: far likelier)
    assume(not (eight_bit(raw) == raw.decode("utf-8", "replace") and re.search("[\x80-\x9f]", eight_bit(raw))))
    rec = checked(with_attachment(raw, cte).replace(b"Subject: files", b"Subject: " + raw))
    assert rec.subject == eight_bit(raw).strip()
    assert [f.file_name for f in rec.files] == [eight_bit(raw).lstrip("\ufeff").strip()]


def test_uuencoded_part_with_a_latin1_name_in_a_nested_message() -> None:
    inner = with_attachment(b"r\xe9sum\xe9.doc", b"x-uuencode").replace(b"Subject: files", b"Subject: R\xe9sum\xe9")
    rec = checked(b"From: b@example.com\nSubject: fwd\nContent-Type: message/rfc822\n\n" + inner)
    assert [f.file_name for f in rec.files] == ["résumé.doc"] and "Résumé" in rec.text


def test_rfc2231_name_not_in_its_charset_falls_back_and_says_so() -> None:
    data = with_attachment(b"x", b"x-uuencode").replace(b'filename="x"', b"filename*=utf-8''caf%E9.txt")
    rec = checked(data)
    assert [f.file_name for f in rec.files] == ["café.txt"] and "charset fallback: utf-8" in rec.defects


# ---------------------------------------------------------------- charsets that emit surrogates

_LABELS = sorted({m.name for m in pkgutil.iter_modules(encodings.__path__)} | set(encodings.aliases.aliases))
_SAMPLES = [b"+2D0-", b"+3gA-", b"+2D0-+3gA-", b"\\ud800", b"\\U0000dc80", b"\x00\xd8", b"\x00\xdc\x41\x00",
            b"\xff\xfe\x00\xd8", b"\x00\x00\xd8\x00", b"\xed\xa0\x80", b"caf\xe9", bytes(range(256))]


@pytest.mark.parametrize("label", [lb for lb in _LABELS if codec_for(lb)[0] is not None])
def test_every_accepted_codec_decodes_to_valid_text(label: str) -> None:
    for sample in _SAMPLES:
        decode_text(sample, label).encode("utf-8")


@given(st.sampled_from(_LABELS), st.binary(max_size=40))
def test_decode_text_is_valid_for_any_label_and_bytes(label: str, data: bytes) -> None:
    decode_text(data, label, []).encode("utf-8")


def test_utf7_halves_are_joined_and_lone_ones_replaced() -> None:
    rec = checked(b"Subject: =?utf-7?q?+2D0-?= =?utf-7?q?+3gA-?= and =?utf-7?q?+2D0-?=\n\nx\n")
    assert rec.subject == "\U0001f600 and \ufffd"
    body = checked(b"Subject: t\nContent-Type: text/plain; charset=utf-7\n\nsmile +2D0-+3gA- half +3gA-\n").text
    assert body.strip() == "smile \U0001f600 half \ufffd"


def test_escape_codecs_are_not_charsets() -> None:
    assert codec_for("unicode_escape") == (None, True) and codec_for("raw-unicode-escape") == (None, True)
    rec = checked(b"Subject: =?unicode_escape?q?=5Cud800=E9?=\nContent-Type: text/plain; charset=unicode_escape\n\n"
                  b"\\ud800 \xe9\n")
    assert rec.subject == "\\ud800é" and rec.text.strip() == "\\ud800 é"
    assert "charset fallback: unicode_escape" in rec.defects


def test_exception_text_with_escaped_bytes_stays_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    import mailindex.parse as parse_module

    def broken(*_: object) -> None:
        raise LookupError("unknown encoding: x\udce9")

    monkeypatch.setattr(parse_module, "_headers_into", broken)
    rec = parse(RawMessage(b"Subject: x\n\nbody\n"))
    assert rec.parse_error == "parser failure: LookupError: unknown encoding: xé"


# ---------------------------------------------------------------- one header decoder: headers() agrees with get()


def test_header_fields_are_decoded_in_order() -> None:
    data = (b"From nobody Mon Jan  1 00:00:00 2024\nSubject: caf\xe9\nX-Tag: =?utf-8?b?5p0=?=\n =?utf-8?b?pQ==?=\n"
            b"x-tag: two\nReceived: from a\n\tby b\n\nSubject: body, not a header\n")
    assert header_fields(data) == {"Subject": ["café"], "X-Tag": ["来"], "x-tag": ["two"],
                                   "Received": ["from a by b"]}


def test_headers_and_get_show_the_same_eight_bit_subject(mx: MailIndex, tmp_path: Path) -> None:
    data = (b"From: =?iso-8859-1?q?J=F6rg?= <j@example.com>\nTo: me@example.com\nSubject: Caf\xe9 \x80 d\xe9j\xe0 vu\n"
            b"Message-ID: <latin@test.example>\nDate: Mon, 14 Sep 2020 12:26:40 +0000\n\nbody\n")
    mx.index(mail.maildir(tmp_path / "md", {"INBOX": [data]}), "box")
    headers = mx.messages.headers("<latin@test.example>")
    assert isinstance(headers, dict)
    got = mx.messages.get("<latin@test.example>", include_headers=1)
    assert headers["Subject"] == [got["subject"]] == ["Café € déjà vu"]
    assert got["headers"] == headers and list(headers) == ["From", "To", "Subject", "Message-ID", "Date"]
    assert headers["From"] == ["Jörg <j@example.com>"]
    assert mx.messages.headers("<latin@test.example>", raw=True) == data.split(b"\n\n")[0].decode("latin-1")
