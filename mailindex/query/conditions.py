"""One Tantivy query per condition a filter or a query term can state, each with its Context.IO meaning.

Both front ends of the query layer build on these: `compiler` (the
Context.IO filters) and `full_text` (the query language), so a condition
written either way answers alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast

import tantivy
from tantivy import Occur, Query

from mailindex.folders import normalize_folder
from mailindex.index import schema as S
from mailindex.query.patterns import glob_to_regex, int_range_regex, is_regex, parse_regex
from mailindex.query.regex_plan import TermProbe, automaton, subject_query, terms_query

FLAGGED_NAMES = ("\\Flagged", "\\Starred")
_STAR_DOT_EXT = re.compile(r"^\*\.([^*?\[\]./]+)$")  # `*.pdf`: the commonest attachment pattern


def any_of(queries: Sequence[Query]) -> Query:
    """At least one of `queries` (one query as itself)."""
    return queries[0] if len(queries) == 1 else Query.boolean_query([(Occur.Should, q) for q in queries])


def all_of(queries: Sequence[Query]) -> Query:
    """Every one of `queries` (one query as itself)."""
    return queries[0] if len(queries) == 1 else Query.boolean_query([(Occur.Must, q) for q in queries])


def contact_query(schema: tantivy.Schema, values: Sequence[str], owners: Sequence[str]) -> Query:
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
    to_x = any_of(recipient)
    if owners:
        owner = any_of([terms_query(schema, S.ROLE_FIELDS["from"], owners), terms_query(schema, S.RECIPIENT, owners)])
        to_x = all_of([to_x, owner])
    return any_of([*sender, to_x])


def subject_query_for(schema: tantivy.Schema, value: str, probe: TermProbe | None) -> Query:
    if is_regex(value):
        return subject_query(schema, probe, parse_regex("subject", value[1:-1]), value)
    grams = S.needle_grams(value)
    if len(grams) == 1:
        return Query.term_query(schema, S.SUBJECT_GRAMS, grams[0])
    if grams:
        return Query.phrase_query(schema, S.SUBJECT_GRAMS, cast("list[str | tuple[int, str]]", grams))
    return Query.term_query(schema, S.SUBJECT_SHORT, S.gram_text(value))


def files_query(schema: tantivy.Schema, file_name: str | None, lo: int | None, hi: int | None,
                probe: TermProbe | None) -> Query | None:
    """Messages with one attachment whose name matches `file_name` (glob or /regex/) and whose size is in
    [lo, hi]; None when nothing is asked."""
    if file_name is None:
        if lo is None and hi is None:
            return None
        return Query.range_query(schema, S.FILE_SIZE, tantivy.FieldType.Integer, lower_bound=lo, upper_bound=hi)
    extension = _STAR_DOT_EXT.match(file_name)
    if extension and lo is None and hi is None:
        return Query.term_query(schema, S.FILE_EXT, extension.group(1).lower())
    if is_regex(file_name):
        pattern = f"(?i){file_name[1:-1]}"
    else:
        pattern = f"(?i)^{glob_to_regex('file_name', file_name)}$"
    ahead = parse_regex("file_name", pattern, shown=file_name)
    if lo is None and hi is None:  # names alone: far fewer distinct terms than name+size keys
        return automaton(schema, probe, S.FILE_NAME, ahead.whole(), "file_name", file_name)
    # A fixed end (`*.pdf`) prunes the walk of the reversed keys; a fixed start that of the keys.
    behind = parse_regex("file_name", pattern, reverse=True, shown=file_name)
    field, rx = (S.FILE_KEY_REV, behind) if behind.fixed > ahead.fixed else (S.FILE_KEY, ahead)
    size = int_range_regex(lo or 0, min(hi if hi is not None else 10**S.SIZE_DIGITS - 1,
                                        10**S.SIZE_DIGITS - 1), S.SIZE_DIGITS)
    name = rx.whole(filler=f"[^{S.FILE_KEY_SEP}]*")
    return automaton(schema, probe, field, f"{name}\\x1f{size}", "file_name", file_name)


def folder_query(schema: tantivy.Schema, value: str) -> Query:
    if value.startswith("\\"):
        names = FLAGGED_NAMES if value.lower() in ("\\flagged", "\\starred") else (value,)
        return terms_query(schema, S.SYMBOLIC, names)
    return Query.term_query(schema, S.FOLDER, normalize_folder(value))


def range_query(schema: tantivy.Schema, field: str, after: int | None, before: int | None) -> Query | None:
    if after is None and before is None:
        return None
    if after is not None and before is not None and before - after < 2:
        return Query.empty_query()
    return Query.range_query(
        schema, field, tantivy.FieldType.Integer,
        lower_bound=None if after is None else after + 1,
        upper_bound=None if before is None else before - 1,
    )
