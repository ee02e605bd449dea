"""Field names, the Tantivy schema, and how a message becomes a Tantivy document.

Every Context.IO filter maps to one field chosen so the filter is one cheap
query: raw lowercase address fields per role, domain suffixes, folders and
sources as raw terms, dates as fast integers, attachment name and size kept
together in one term so both must hold for the same file, subject trigrams
for case-insensitive substring search, and a unique integer sort key.

The full-text fields (subject, body, attachment text, and the words of each
role's addresses and names) share one analyzer, WORDS: runs of letters and
digits, lowercased, accents folded, never stemmed; the query language runs the
same analyzer over what the user typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import tantivy

if TYPE_CHECKING:
    from mailindex.record import Record


SCHEMA_VERSION = 10

MESSAGE_ID = "message_id"
SORT_KEY = "sort_key"
SORT_BUCKET = "sort_bucket"  # the sort key's high bits (~24 days of dates) as a term: see bucket_term
DATE = "date"
DATE_INDEXED = "date_indexed"
SUBJECT = "subject"  # words, with positions for phrases
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
FLAGS = "flags"  # the flags any of its locations has, where the source keeps them: "seen", ...
FILE_NAME = "file_name"
FILE_EXT = "file_ext"  # lowercase text after the name's last dot: `*.pdf` is one term
FILE_SIZE = "file_size"
FILE_KEY = "file_key"  # "<lowercase name>\x1f<size, 12 digits>" per attachment
FILE_KEY_REV = "file_key_rev"  # the same with the name reversed, for patterns with a fixed end (*.pdf)
EMAIL_MESSAGE_ID = "email_message_id"
SIZE = "size"  # of the message, bytes
BODY = "body"  # words of the text parts, nested messages included
ATTACHMENT = "attachment"  # words of the attachments' extracted text
# Words of each role's addresses and display names, for `from:lynn`.
ROLE_WORDS = {role: f"{role}_words" for role in ROLE_FIELDS}
TEXT_FIELDS = (SUBJECT, BODY, ATTACHMENT)  # where a bare word of a query is looked for

FILE_KEY_SEP = "\x1f"
SIZE_DIGITS = 12
# Sentinels around a subject so that every character, even in a one-letter
# subject, sits inside at least one trigram.
GRAM_START, GRAM_END, GRAM_SPACE = "\x02", "\x03", "\u2423"
SORT_TIE_BITS = 20
BUCKET_SHIFT = SORT_TIE_BITS + 21  # 2**21 seconds of dates per bucket
_BUCKET_BIAS = 1 << 24  # keeps the buckets of dates before 1970 positive, so terms sort as numbers
PREFIX_MAX = 24
# Tokenizers Tantivy runs for us (one add_text instead of dozens); registered on every open.
PREFIX_TOKENIZER, SHORT_TOKENIZER, WORDS = "mailindex_prefix", "mailindex_short", "mailindex_words"
WORD_BYTES_MAX = 100  # a longer run of letters is no word anyone types (base64, hashes): left out


def words_analyzer() -> tantivy.TextAnalyzer:
    """The analyzer of the full-text fields, and of the words of a query."""
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(WORD_BYTES_MAX))
            .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.ascii_fold()).build())


def register_tokenizers(index: tantivy.Index) -> None:
    """Subject prefixes of 1..PREFIX_MAX characters, every 1- and 2-character substring, and WORDS."""
    for name, tokenizer in ((PREFIX_TOKENIZER, tantivy.Tokenizer.ngram(1, PREFIX_MAX, True)),
                            (SHORT_TOKENIZER, tantivy.Tokenizer.ngram(1, 2, False))):
        index.register_tokenizer(name, tantivy.TextAnalyzerBuilder(tokenizer).build())
    index.register_tokenizer(WORDS, words_analyzer())


def build_schema() -> tantivy.Schema:
    """The one schema of a mailindex Tantivy index."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field(MESSAGE_ID, stored=True, tokenizer_name="raw")
    sb.add_integer_field(SORT_KEY, stored=False, indexed=True, fast=True)
    sb.add_integer_field(DATE, indexed=True, fast=True)
    sb.add_integer_field(DATE_INDEXED, indexed=True, fast=True)
    for name in (*TEXT_FIELDS, *ROLE_WORDS.values()):
        sb.add_text_field(name, tokenizer_name=WORDS, index_option="position")
    sb.add_text_field(SUBJECT_RAW, stored=True, tokenizer_name="raw")
    sb.add_text_field(SUBJECT_GRAMS, tokenizer_name="whitespace", index_option="position")
    sb.add_text_field(SUBJECT_SHORT, tokenizer_name=SHORT_TOKENIZER, index_option="basic")
    sb.add_text_field(SUBJECT_PREFIX, tokenizer_name=PREFIX_TOKENIZER, index_option="basic")
    for name in (SORT_BUCKET, *ROLE_FIELDS.values(), RECIPIENT, FROM_DOMAIN, RECIPIENT_DOMAIN, FOLDER, SYMBOLIC, SOURCE,
                 ACCOUNT, FLAGS, FILE_NAME, FILE_EXT, FILE_KEY, FILE_KEY_REV, EMAIL_MESSAGE_ID):
        sb.add_text_field(name, tokenizer_name="raw")
    sb.add_integer_field(FILE_SIZE, indexed=True, fast=True)
    sb.add_integer_field(SIZE, indexed=True, fast=True)
    return sb.build()


# Every code point str.isspace() accepts (a fixed set in Unicode 15), for one str.translate per subject.
_SPACES = {c: GRAM_SPACE for c in (*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680,
                                   *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)}


def gram_text(text: str) -> str:
    """Casefolded, with whitespace made visible so the whitespace tokenizer keeps it inside grams."""
    return text.casefold().translate(_SPACES)


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


def bucket_term(sort_key: int) -> str:
    """The bucket of a sort key, as a term that sorts like the keys: the messages of the newest buckets
    are a window a page can be looked for in first (`Searcher.page`), one cheap term set to match."""
    return f"{(sort_key >> BUCKET_SHIFT) + _BUCKET_BIAS:08d}"


class Placement(NamedTuple):
    """Where a message is and what the index adds to it beyond its Record."""

    folders: tuple[str, ...]
    symbolic: tuple[str, ...]
    sources: tuple[str, ...]  # source row ids, as text
    accounts: tuple[str, ...]
    flags: tuple[str, ...]
    date_indexed: int
    sort_key: int


def _unique(values: Iterable[str]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v]


def placement_fields(place: Placement) -> dict[str, Any]:
    """The document fields that say where a message is (they change when it moves; its Record does not)."""
    return {FOLDER: _unique(place.folders), SYMBOLIC: _unique(place.symbolic), SOURCE: _unique(place.sources),
            ACCOUNT: _unique(place.accounts), FLAGS: _unique(place.flags),
            DATE_INDEXED: place.date_indexed, SORT_KEY: place.sort_key, SORT_BUCKET: bucket_term(place.sort_key)}


def record_fields(record: Record) -> dict[str, Any]:
    """The document fields that come from the message itself."""
    subject = record.subject
    fields: dict[str, Any] = {MESSAGE_ID: record.message_id, DATE: record.date, SIZE: record.size, SUBJECT: subject,
                              SUBJECT_RAW: subject, SUBJECT_PREFIX: subject,
                              SUBJECT_GRAMS: " ".join(subject_grams(subject)), SUBJECT_SHORT: gram_text(subject)}
    recipients: list[str] = []
    for role, field in ROLE_FIELDS.items():
        emails = record.emails(role)
        fields[field] = _unique(emails)
        fields[ROLE_WORDS[role]] = [f"{a.name} {a.email}" if a.name else a.email for a in record.addresses.get(role, ())]
        if role != "from":
            recipients.extend(emails)
    fields[RECIPIENT] = _unique(recipients)
    fields[FROM_DOMAIN] = _unique(d for e in record.emails("from") for d in domain_suffixes(e))
    fields[RECIPIENT_DOMAIN] = _unique(d for e in recipients for d in domain_suffixes(e))
    if record.files:
        names = [f.file_name.lower() for f in record.files]
        fields[FILE_NAME] = names
        fields[FILE_EXT] = [n.rpartition(".")[2] for n in names if "." in n]
        fields[FILE_SIZE] = [f.size for f in record.files]
        fields[FILE_KEY] = [file_key(f.file_name, f.size) for f in record.files]
        fields[FILE_KEY_REV] = [file_key(f.file_name, f.size, reverse=True) for f in record.files]
    if record.email_message_id:
        fields[EMAIL_MESSAGE_ID] = record.email_message_id
    if record.text:
        fields[BODY] = record.text
    if record.attachment_text:
        fields[ATTACHMENT] = record.attachment_text
    return fields


def document_json(record: Record, place: Placement) -> str:
    """The Tantivy document of one message, as the JSON `IndexWriter.add_json` takes
    (searchable fields only, nothing to display). Raises TypeError on a string that is not valid Unicode."""
    import orjson  # the ingest's; a question never loads it here

    return orjson.dumps({**record_fields(record), **placement_fields(place)}).decode()


def replace_placement(doc: str, place: Placement) -> str:
    """A document made by `document_json` with its placement fields replaced."""
    import orjson

    return orjson.dumps({**orjson.loads(doc), **placement_fields(place)}).decode()
