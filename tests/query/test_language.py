"""The query language's reader on any text: a tree or one QueryError, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailindex import QueryError
from mailindex.index.schema import build_schema
from mailindex.query.full_text import compile_query
from mailindex.query.language import FIELDS, parse_query

SCHEMA = build_schema()
PIECES = st.sampled_from([*(f"{f}:" for f in FIELDS), "(", ")", '"', "-", "*", "/", "OR", "AND", "NOT", " ", "..",
                          "a", "b1", "é", "日本", "@", "x@y.org", "2001-10", "10k", ">", "\\", "\x00", "\ud800",
                          "99999999999999999999", "@", "T23:59", "+14:00", "g"])


@given(st.one_of(st.text(), st.lists(PIECES, max_size=12).map("".join)))
def test_any_text_is_a_query_or_one_error(text: str) -> None:
    try:
        parsed = parse_query(text)
    except QueryError as exc:
        assert exc.param == "q"
        return
    try:
        compile_query(parsed, SCHEMA)
    except QueryError as exc:
        assert exc.param == "q" and "at position" in exc.problem


@pytest.mark.parametrize("text, problem", [
    ("from:(a OR b)", "from:( ... ) is not a form"), ("Re:", None), ("10:30", None), ("http://x.org", "quote"),
    ("size:99999999999999999999", "out of range"), ("date:@99999999999999999999", "out of range"),
    ("date:-99999999999999999999", "out of range"), ("x" * 101, "at most 100 bytes a word"),
])
def test_hand_picked_texts(text: str, problem: str | None) -> None:
    if problem is None:
        parse_query(text)
    else:
        with pytest.raises(QueryError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            parse_query(text)
