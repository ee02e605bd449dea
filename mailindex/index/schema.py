"""Field names, the Tantivy schema, and how a message becomes a Tantivy document.

Every Context.IO filter maps to one field chosen so the filter is one cheap
query: raw lowercase address fields per role, domain suffixes, folders and
sources as raw terms, dates as fast integers, attachment name and size kept
together in one term so both must hold for the same file, subject trigrams
for case-insensitive substring search, and a unique integer sort key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import tantivy

from mailindex.record import Record

SCHEMA_VERSION = 6

MESSAGE_ID = "message_id"
SORT_KEY = "sort_key"
DATE = "date"
DATE_INDEXED = "date_indexed"
SUBJECT = "subject"  # tokenized words, for full-text search
SUBJECT_RAW = "subject_raw"  # the whole subject as one term, for regexes; stored to check candidates
SUBJECT_PREFIX = "subject_prefix"  # the subject's first 1..PREFIX_MAX characters, for `^literal`
SUBJECT_GRAMS = "subject_grams"  # casefolded trigrams with positions, for substrings
SUBJECT_SHORT = "subject_short"  # casefolded 1- and 2-character substrings, for short needles
ROLE_FIELDS = {"from": "from", "to": "to", "cc": "cc", "bcc": "bcc"}
RECIPIENT = "recipient"  # to + cc + bcc
FROM_DOMAIN = "from_domain"
RECIPIENT_DOMAIN = "recipient_domain"
FOLDER = "folder"
SYMBOLIC = "symbolic"
SOURCE = "source"  # the source's row id: labels are only unique within an account
ACCOUNT = "account"  # ids of the accounts whose sources hold the message
FILE_NAME = "file_name"
FILE_EXT = "file_ext"  # lowercase text after the name's last dot: `*.pdf` is one term
FILE_SIZE = "file_size"
FILE_KEY = "file_key"  # "<lowercase name>\x1f<size, 12 digits>" per attachment
FILE_KEY_REV = "file_key_rev"  # the same with the name reversed, for patterns with a fixed end (*.pdf)
EMAIL_MESSAGE_ID = "email_message_id"
TEXT = "text"

FILE_KEY_SEP = "\x1f"
SIZE_DIGITS = 12
# Sentinels around a subject so that every character, even in a one-letter
# subject, sits inside at least one trigram.
GRAM_START, GRAM_END, GRAM_SPACE = "\x02", "\x03", "\u2423"
SORT_TIE_BITS = 20
PREFIX_MAX = 24
# Tokenizers Tantivy runs for us (one add_text instead of dozens); registered on every open.
PREFIX_TOKENIZER, SHORT_TOKENIZER = "mailindex_prefix", "mailindex_short"


def register_tokenizers(index: tantivy.Index) -> None:
    """Subject prefixes of 1..PREFIX_MAX characters, and every 1- and 2-character substring."""
    for name, tokenizer in ((PREFIX_TOKENIZER, tantivy.Tokenizer.ngram(1, PREFIX_MAX, True)),
                            (SHORT_TOKENIZER, tantivy.Tokenizer.ngram(1, 2, False))):
        index.register_tokenizer(name, tantivy.TextAnalyzerBuilder(tokenizer).build())


def build_schema() -> tantivy.Schema:
    """The one schema of a mailindex Tantivy index."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field(MESSAGE_ID, stored=True, tokenizer_name="raw")
    sb.add_integer_field(SORT_KEY, stored=False, indexed=True, fast=True)
    sb.add_integer_field(DATE, indexed=True, fast=True)
    sb.add_integer_field(DATE_INDEXED, indexed=True, fast=True)
    sb.add_text_field(SUBJECT, tokenizer_name="default", index_option="position")
    sb.add_text_field(SUBJECT_RAW, stored=True, tokenizer_name="raw")
    sb.add_text_field(SUBJECT_GRAMS, tokenizer_name="whitespace", index_option="position")
    sb.add_text_field(SUBJECT_SHORT, tokenizer_name=SHORT_TOKENIZER, index_option="basic")
    sb.add_text_field(SUBJECT_PREFIX, tokenizer_name=PREFIX_TOKENIZER, index_option="basic")
    for name in (*ROLE_FIELDS.values(), RECIPIENT, FROM_DOMAIN, RECIPIENT_DOMAIN, FOLDER, SYMBOLIC, SOURCE,
                 ACCOUNT, FILE_NAME, FILE_EXT, FILE_KEY, FILE_KEY_REV, EMAIL_MESSAGE_ID):
        sb.add_text_field(name, tokenizer_name="raw")
    sb.add_integer_field(FILE_SIZE, indexed=True, fast=True)
    sb.add_text_field(TEXT, tokenizer_name="default", index_option="freq")
    return sb.build()


def gram_text(text: str) -> str:
    """Casefolded, with whitespace made visible so the whitespace tokenizer keeps it inside grams."""
    return "".join(GRAM_SPACE if c.isspace() else c for c in text.casefold())


def subject_grams(text: str) -> list[str]:
    """Casefolded character trigrams of `text`, sentinels included, in order."""
    s = GRAM_START + gram_text(text) + GRAM_END
    return [s[i : i + 3] for i in range(len(s) - 2)]


def needle_grams(needle: str) -> list[str]:
    """Trigrams of a search string (no sentinels): consecutive in any subject containing it."""
    s = gram_text(needle)
    return [s[i : i + 3] for i in range(len(s) - 2)]


def domain_suffixes(email: str) -> list[str]:
    """"a@mail.example.com" -> ["mail.example.com", "example.com", "com"]."""
    domain = email.rpartition("@")[2]
    parts = domain.split(".")
    return [".".join(parts[i:]) for i in range(len(parts)) if parts[i]]


def file_key(name: str, size: int, *, reverse: bool = False) -> str:
    name = name.lower()
    return f"{name[::-1] if reverse else name}{FILE_KEY_SEP}{min(size, 10**SIZE_DIGITS - 1):0{SIZE_DIGITS}d}"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a message is and what the index adds to it beyond its Record."""

    folders: tuple[str, ...]
    symbolic: tuple[str, ...]
    sources: tuple[str, ...]  # source row ids, as text
    accounts: tuple[str, ...]
    date_indexed: int
    sort_key: int


def _add_all(doc: tantivy.Document, field: str, values: Iterable[str]) -> None:
    for v in dict.fromkeys(values):
        if v:
            doc.add_text(field, v)


def build_document(record: Record, place: Placement) -> tantivy.Document:
    """The Tantivy document of one message: searchable fields only, nothing to display."""
    doc = tantivy.Document()
    doc.add_text(MESSAGE_ID, record.message_id)
    doc.add_integer(SORT_KEY, place.sort_key)
    doc.add_integer(DATE, record.date)
    doc.add_integer(DATE_INDEXED, place.date_indexed)
    doc.add_text(SUBJECT, record.subject)
    doc.add_text(SUBJECT_RAW, record.subject)
    doc.add_text(SUBJECT_PREFIX, record.subject)
    doc.add_text(SUBJECT_GRAMS, " ".join(subject_grams(record.subject)))
    doc.add_text(SUBJECT_SHORT, gram_text(record.subject))
    recipients: list[str] = []
    for role, field in ROLE_FIELDS.items():
        emails = record.emails(role)
        _add_all(doc, field, emails)
        if role != "from":
            recipients.extend(emails)
    _add_all(doc, RECIPIENT, recipients)
    _add_all(doc, FROM_DOMAIN, (d for e in record.emails("from") for d in domain_suffixes(e)))
    _add_all(doc, RECIPIENT_DOMAIN, (d for e in recipients for d in domain_suffixes(e)))
    _add_all(doc, FOLDER, place.folders)
    _add_all(doc, SYMBOLIC, place.symbolic)
    _add_all(doc, SOURCE, place.sources)
    _add_all(doc, ACCOUNT, place.accounts)
    for f in record.files:
        doc.add_text(FILE_NAME, f.file_name.lower())
        if "." in f.file_name:
            doc.add_text(FILE_EXT, f.file_name.lower().rpartition(".")[2])
        doc.add_integer(FILE_SIZE, f.size)
        doc.add_text(FILE_KEY, file_key(f.file_name, f.size))
        doc.add_text(FILE_KEY_REV, file_key(f.file_name, f.size, reverse=True))
    if record.email_message_id:
        doc.add_text(EMAIL_MESSAGE_ID, record.email_message_id)
    if record.text:
        doc.add_text(TEXT, record.text)
    return doc
