"""Pattern translation, checked against brute-force references."""

from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailindex.errors import QueryError
from mailindex.query.patterns import anywhere, glob_to_regex, int_range_regex, user_regex

DIGITS = 12
sizes = st.one_of(st.integers(0, 10**DIGITS - 1), st.integers(0, 2000), st.sampled_from([0, 9, 10, 99, 100, 10**6]))


@given(sizes, sizes, st.lists(sizes, min_size=1, max_size=20))
def test_int_range_regex_matches_exactly_the_range(lo: int, hi: int, values: list[int]) -> None:
    pattern = re.compile(int_range_regex(lo, hi, DIGITS))
    for v in [*values, lo, hi, max(lo - 1, 0), hi + 1 if hi + 1 < 10**DIGITS else hi]:
        assert bool(pattern.fullmatch(f"{v:0{DIGITS}d}")) == (lo <= v <= hi), (lo, hi, v)


glob_chars = st.sampled_from(list("ab.-_ *?[]!^x\\é"))
names = st.text(st.sampled_from(list("abx.-_ é[]!^*?\\")), max_size=10)


@given(st.text(glob_chars, max_size=8), st.lists(names, max_size=10))
def test_glob_matches_like_fnmatch(glob: str, candidates: list[str]) -> None:
    try:
        pattern = re.compile(glob_to_regex("file_name", glob))
    except QueryError as err:
        assert "[" in glob and ("unclosed" in str(err) or "character class" in str(err))
        return
    shell = glob.replace("[^", "[!")  # like bash, [^x] negates too (fnmatch reads ^ literally)
    for name in candidates:
        assert bool(pattern.fullmatch(name)) == fnmatch.fnmatchcase(name, shell), (glob, name)


@pytest.mark.parametrize("pattern,value,found", [
    ("^Re:", "Re: hi", True), ("^Re:", "Fwd: Re: hi", False), ("end$", "the end", True),
    ("end$", "end game", False), ("a|b", "xbx", True), ("^$", "", True), ("^$", "x", False),
    ("(?i)HELLO", "oh hello", True), ("(?i)^re", "RE: x", True), ("(?i)^re", "a re", False),
    (r"\d{4}", "in 2023", True),
])
def test_user_regex_searches_anywhere_unless_anchored(pattern: str, value: str, found: bool) -> None:
    body, start, end = user_regex("subject", pattern)
    assert bool(re.fullmatch(anywhere(body, start, end), value)) == found
    assert bool(re.search(pattern, value)) == found  # the reference meaning


@pytest.mark.parametrize("pattern,problem", [
    ("(unclosed", "position 0"), (r"(a)\1", "backreferences"), ("(?<=a)b", "lookahead/lookbehind"),
    ("a^b", "anchors"), (r"\bword", "anchors"), ("x{2,1}", "invalid"), ("a**", "invalid"),
])
def test_bad_regexes_are_refused_with_the_problem(pattern: str, problem: str) -> None:
    with pytest.raises(QueryError) as err:
        user_regex("subject", pattern)
    assert err.value.param == "subject" and problem in str(err.value)
