"""Filters -> one Tantivy query. Comma-separated values OR, parameters AND.

Bounds: `date_after`/`indexed_after` are exclusive (strictly after) and
`date_before`/`indexed_before` exclusive (strictly before), as the words say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import cast

import tantivy
from tantivy import Occur, Query

from mailindex.folders import normalize_folder
from mailindex.index import schema as S
from mailindex.query.filters import Filters
from mailindex.query.patterns import glob_to_regex, int_range_regex, is_regex, parse_regex
from mailindex.query.regex_plan import TermProbe, automaton, subject_query, terms_query

FLAGGED_NAMES = ("\\Flagged", "\\Starred")
_STAR_DOT_EXT = re.compile(r"^\*\.([^*?\[\]./]+)$")  # `*.pdf`: the commonest attachment pattern


def _or(queries: Sequence[Query]) -> Query:
    return queries[0] if len(queries) == 1 else Query.boolean_query([(Occur.Should, q) for q in queries])


def _and(queries: Sequence[Query]) -> Query:
    return queries[0] if len(queries) == 1 else Query.boolean_query([(Occur.Must, q) for q in queries])


def _contact(schema: tantivy.Schema, values: Sequence[str], owners: Sequence[str]) -> Query:
    """`email`: received from X, sent to X, or sent by anyone to both X and the owner."""
    addrs = [v for v in values if "@" in v and not v.startswith("@")]
    domains = [v.lstrip("@") for v in values if v not in addrs]
    sender, recipient = [], []
    if addrs:
        sender.append(terms_query(schema, S.ROLE_FIELDS["from"], addrs))
        recipient.append(terms_query(schema, S.RECIPIENT, addrs))
    if domains:
        sender.append(terms_query(schema, S.FROM_DOMAIN, domains))
        recipient.append(terms_query(schema, S.RECIPIENT_DOMAIN, domains))
    to_x = _or(recipient)
    if owners:
        owner = _or([terms_query(schema, S.ROLE_FIELDS["from"], owners), terms_query(schema, S.RECIPIENT, owners)])
        to_x = _and([to_x, owner])
    return _or([*sender, to_x])


def _subject(schema: tantivy.Schema, value: str, probe: TermProbe | None) -> Query:
    if is_regex(value):
        return subject_query(schema, probe, parse_regex("subject", value[1:-1]), value)
    grams = S.needle_grams(value)
    if len(grams) == 1:
        return Query.term_query(schema, S.SUBJECT_GRAMS, grams[0])
    if grams:
        return Query.phrase_query(schema, S.SUBJECT_GRAMS, cast("list[str | tuple[int, str]]", grams))
    return Query.term_query(schema, S.SUBJECT_SHORT, S.gram_text(value))


def _files(schema: tantivy.Schema, f: Filters, probe: TermProbe | None) -> Query | None:
    lo, hi = f.file_size_min, f.file_size_max
    if f.file_name is None:
        if lo is None and hi is None:
            return None
        return Query.range_query(schema, S.FILE_SIZE, tantivy.FieldType.Integer, lower_bound=lo, upper_bound=hi)
    extension = _STAR_DOT_EXT.match(f.file_name)
    if extension and lo is None and hi is None:
        return Query.term_query(schema, S.FILE_EXT, extension.group(1).lower())
    if is_regex(f.file_name):
        pattern = f"(?i){f.file_name[1:-1]}"
    else:
        pattern = f"(?i)^{glob_to_regex('file_name', f.file_name)}$"
    ahead = parse_regex("file_name", pattern, shown=f.file_name)
    if lo is None and hi is None:  # names alone: far fewer distinct terms than name+size keys
        return automaton(schema, probe, S.FILE_NAME, ahead.whole(), "file_name", f.file_name)
    # A fixed end (`*.pdf`) prunes the walk of the reversed keys; a fixed start that of the keys.
    behind = parse_regex("file_name", pattern, reverse=True, shown=f.file_name)
    field, rx = (S.FILE_KEY_REV, behind) if behind.fixed > ahead.fixed else (S.FILE_KEY, ahead)
    size = int_range_regex(lo or 0, min(hi if hi is not None else 10**S.SIZE_DIGITS - 1,
                                        10**S.SIZE_DIGITS - 1), S.SIZE_DIGITS)
    name = rx.whole(filler=f"[^{S.FILE_KEY_SEP}]*")
    return automaton(schema, probe, field, f"{name}\\x1f{size}", "file_name", f.file_name)


def _folder(schema: tantivy.Schema, value: str) -> Query:
    if value.startswith("\\"):
        names = FLAGGED_NAMES if value.lower() in ("\\flagged", "\\starred") else (value,)
        return terms_query(schema, S.SYMBOLIC, names)
    return Query.term_query(schema, S.FOLDER, normalize_folder(value))


def _range(schema: tantivy.Schema, field: str, after: int | None, before: int | None) -> Query | None:
    if after is None and before is None:
        return None
    if after is not None and before is not None and before - after < 2:
        return Query.empty_query()
    return Query.range_query(
        schema, field, tantivy.FieldType.Integer,
        lower_bound=None if after is None else after + 1,
        upper_bound=None if before is None else before - 1,
    )


def compile_filters(f: Filters, schema: tantivy.Schema, owners: Sequence[str] = (),
                    probe: TermProbe | None = None, account: str | None = None,
                    sources: Mapping[str, str] | None = None) -> Query:
    """One Tantivy query for all filters, within `account` when given (else over the whole index).

    `owners` are the account's addresses (the `email` filter's meaning) and
    `sources` maps the account's source labels to their indexed terms; a
    label it lacks matches nothing. With a `probe` of the index, regexes take
    the cheapest exact route (see regex_plan); without one they all run on
    Tantivy's automaton.
    """
    clauses: list[Query] = []
    if account is not None:
        clauses.append(Query.term_query(schema, S.ACCOUNT, account))
    if f.email:
        clauses.append(_contact(schema, f.email, owners))
    for role, values in (("from", f.from_), ("to", f.to), ("cc", f.cc), ("bcc", f.bcc)):
        if values:
            clauses.append(terms_query(schema, S.ROLE_FIELDS[role], values))
    if f.subject is not None:
        clauses.append(_subject(schema, f.subject, probe))
    if f.folder is not None:
        clauses.append(_folder(schema, f.folder))
    if f.source is not None:
        term = (sources or {}).get(f.source)
        clauses.append(Query.term_query(schema, S.SOURCE, term) if term else Query.empty_query())
    files = _files(schema, f, probe)
    if files is not None:
        clauses.append(files)
    for field, after, before in ((S.DATE, f.date_after, f.date_before),
                                 (S.DATE_INDEXED, f.indexed_after, f.indexed_before)):
        q = _range(schema, field, after, before)
        if q is not None:
            clauses.append(q)
    return _and(clauses) if clauses else Query.all_query()
