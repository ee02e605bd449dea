"""How a user regex becomes a fast query.

Tantivy runs a regex by walking a field's whole term dictionary unless the
pattern starts with fixed text, which costs ~40 ms per 50,000 distinct
subjects. So, cheapest first:

1. `^literal` is one term of the subject-prefix field (or of the whole
   subject, with `$`): exact, no regex at all.
2. Literal text the pattern must contain gives a trigram query; when it
   selects few messages their stored subjects are checked with RE2 and the
   matching subjects become a term set.
3. Otherwise Tantivy's automaton walks the dictionary. A pattern with
   Unicode classes (`\\w`, `\\d`) takes it ~0.5 s to build, or more than its
   1,000-state limit, so those are checked term by term with RE2 instead.

RE2 and the automaton both run in linear time and read the pattern the same
way (see `patterns.UserRegex`), so every route answers alike.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, cast

import tantivy
from tantivy import Occur, Query

from mailindex.errors import QueryError
from mailindex.index import schema as S
from mailindex.query.patterns import UserRegex

# Above this many candidate messages, fetching and checking them costs more
# than the automaton's walk of the term dictionary.
CANDIDATES_MAX = 2000
_UNICODE_CLASSES = ("\\p{", "\\P{")


class TermProbe(Protocol):
    """What the planner may ask of the index before choosing a route."""

    def doc_freq(self, field: str, term: str) -> int: ...

    def stored(self, query: Query, field: str, cap: int) -> list[str] | None:
        """The stored `field` of every match, or None when there are more than `cap`."""

    def terms(self, field: str) -> list[str]: ...


def terms_query(schema: tantivy.Schema, field: str, values: Sequence[str]) -> Query:
    if not values:
        return Query.empty_query()
    if len(values) == 1:
        return Query.term_query(schema, field, values[0])
    return Query.term_set_query(schema, field, list(values))


@functools.cache
def _re2() -> tuple[Any, Any]:
    """The re2 module and its options, loaded by the first pattern that needs it (not by every question)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # errors become our QueryError, not lines on stderr
    return re2, options


def _compile_re2(pattern: str, param: str, value: str) -> Any:
    re2, options = _re2()
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        problem = exc.args[0] if exc.args else exc
        if isinstance(problem, bytes):
            problem = problem.decode("utf-8", "replace")
        raise QueryError(param, value, f"cannot be run: {problem}") from None


def automaton(schema: tantivy.Schema, probe: TermProbe | None, field: str, whole: str,
              param: str, value: str) -> Query:
    """Terms of `field` that `whole` matches entirely: Tantivy's automaton, or RE2 term by term."""
    if probe is None or not any(big in whole for big in _UNICODE_CLASSES):
        try:
            return Query.regex_query(schema, field, whole)
        except ValueError as exc:
            problem = str(exc).split("RegexQueryError:", 1)[-1].strip(" '\n")
            if probe is None or "size limit" not in problem:
                raise QueryError(param, value, f"cannot be run: {problem}") from None
    check = _compile_re2(whole, param, value)
    return terms_query(schema, field, [t for t in probe.terms(field) if check.fullmatch(t)])


def subject_query(schema: tantivy.Schema, probe: TermProbe | None, rx: UserRegex, value: str) -> Query:
    """The messages whose subject `rx` finds, by the cheapest exact route."""
    if rx.start and rx.literal and rx.prefix:
        if rx.end:
            return Query.term_query(schema, S.SUBJECT_RAW, rx.prefix)
        if len(rx.prefix) <= S.PREFIX_MAX:
            return Query.term_query(schema, S.SUBJECT_PREFIX, rx.prefix)
    if probe is not None:
        pre = _prefilter(schema, probe, rx)
        if pre is not None:
            subjects = probe.stored(pre, S.SUBJECT_RAW, CANDIDATES_MAX)
            if subjects is not None:
                check = _compile_re2(rx.search(), "subject", value)
                return terms_query(schema, S.SUBJECT_RAW, [s for s in set(subjects) if check.search(s)])
    return automaton(schema, probe, S.SUBJECT_RAW, rx.whole(), "subject", value)


def _prefilter(schema: tantivy.Schema, probe: TermProbe, rx: UserRegex) -> Query | None:
    """A query for a superset of the matches, if it is selective enough to be worth checking."""
    parts: list[tuple[Query, int]] = []
    if rx.prefix:
        head = rx.prefix[: S.PREFIX_MAX]
        parts.append((Query.term_query(schema, S.SUBJECT_PREFIX, head), probe.doc_freq(S.SUBJECT_PREFIX, head)))
    parts.extend(_requirement(schema, probe, req) for req in rx.required)
    if not parts:
        return None
    estimate = min(n for _, n in parts)
    if estimate > CANDIDATES_MAX:
        return None
    return parts[0][0] if len(parts) == 1 else Query.boolean_query([(Occur.Must, q) for q, _ in parts])


def _requirement(schema: tantivy.Schema, probe: TermProbe, req: Any) -> tuple[Query, int]:
    """(query, upper bound of its hits) for a required substring or a tuple of alternatives."""
    if isinstance(req, str):
        grams = S.needle_grams(req)
        bound = min(probe.doc_freq(S.SUBJECT_GRAMS, g) for g in grams)
        if len(grams) == 1:
            return Query.term_query(schema, S.SUBJECT_GRAMS, grams[0]), bound
        return Query.phrase_query(schema, S.SUBJECT_GRAMS, cast("list[str | tuple[int, str]]", grams)), bound
    alternatives = [_all_of(schema, probe, alt) for alt in req]
    query = Query.boolean_query([(Occur.Should, q) for q, _ in alternatives])
    return query, sum(n for _, n in alternatives)


def _all_of(schema: tantivy.Schema, probe: TermProbe, reqs: Iterable[Any]) -> tuple[Query, int]:
    parts = [_requirement(schema, probe, r) for r in reqs]
    if len(parts) == 1:
        return parts[0]
    return Query.boolean_query([(Occur.Must, q) for q, _ in parts]), min(n for _, n in parts)
