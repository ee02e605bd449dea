"""Filters -> one Tantivy query. Comma-separated values OR, parameters AND, `q` (the query language) too.

Bounds: `date_after`/`indexed_after` are exclusive (strictly after) and
`date_before`/`indexed_before` exclusive (strictly before), as the words say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tantivy
from tantivy import Query

from mailindex.index import schema as S
from mailindex.query.conditions import (all_of, contact_query, files_query, folder_query, range_query,
                                        subject_query_for)
from mailindex.query.filters import Filters
from mailindex.query.regex_plan import TermProbe, terms_query


def compile_filters(f: Filters, schema: tantivy.Schema, owners: Sequence[str] = (),
                    probe: TermProbe | None = None, account: str | None = None,
                    sources: Mapping[str, str] | None = None, within: Query | None = None) -> Query:
    """One Tantivy query for all filters, within `account` when given (else over the whole index).

    `within` is the searcher's window (`Searcher.page`) when the question is asked of it: the query
    is then meant to be matched inside it only, and its phrases are narrowed to it.

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
        clauses.append(contact_query(schema, f.email, owners))
    for role, values in (("from", f.from_), ("to", f.to), ("cc", f.cc), ("bcc", f.bcc)):
        if values:
            clauses.append(terms_query(schema, S.ROLE_FIELDS[role], values))
    if f.subject is not None:
        clauses.append(subject_query_for(schema, f.subject, probe))
    if f.folder is not None:
        clauses.append(folder_query(schema, f.folder))
    if f.source is not None:
        term = (sources or {}).get(f.source)
        clauses.append(Query.term_query(schema, S.SOURCE, term) if term else Query.empty_query())
    files = files_query(schema, f.file_name, f.file_size_min, f.file_size_max, probe)
    if files is not None:
        clauses.append(files)
    for field, after, before in ((S.DATE, f.date_after, f.date_before),
                                 (S.DATE_INDEXED, f.indexed_after, f.indexed_before)):
        q = range_query(schema, field, after, before)
        if q is not None:
            clauses.append(q)
    if f.q is not None:
        from mailindex.query.full_text import compile_query  # the language's classes cost a question without q

        clauses.append(compile_query(f.q, schema, owners, probe, sources, within))
    return all_of(clauses) if clauses else Query.all_query()
