"""Pattern translation, checked against brute-force references."""

from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailindex.errors import QueryError
import re2

from mailindex.query.patterns import glob_to_regex, int_range_regex, parse_regex

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
    rx = parse_regex("subject", pattern)
    assert bool(re2.fullmatch(rx.whole(), value)) == found
    assert bool(re2.search(rx.search(), value)) == found
    assert bool(re.search(pattern, value)) == found  # the reference meaning


@pytest.mark.parametrize("pattern,problem", [
    ("(unclosed", "position 0"), (r"(a)\1", "backreferences"), ("(?<=a)b", "lookahead/lookbehind"),
    ("a^b", "anchors"), (r"\bword", "anchors"), ("x{2,1}", "invalid"), ("a**", "invalid"),
])
def test_bad_regexes_are_refused_with_the_problem(pattern: str, problem: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_regex("subject", pattern)
    assert err.value.param == "subject" and problem in str(err.value)


ATOMS = ["a", "b", "A", "é", "日", " ", "\\.", ".", "[ab]", "[^a]", "[a-c]", "\\d", "\\w", "\\s", "\\W", "\\D",
         "\\S", "[\\w.]", "[\\W]", "[^\\W]"]
TEXT = st.text(st.sampled_from(list("abcABé日 .\n_-1٣")), max_size=12)


@st.composite
def regex_bodies(draw: st.DrawFn, depth: int = 2) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 9 if depth else 5))
        atom = draw(st.sampled_from(ATOMS))
        if kind >= 8:
            atom = f"({draw(regex_bodies(depth - 1))}|{draw(regex_bodies(depth - 1))})"
        elif kind >= 6:
            atom = f"(?{draw(st.sampled_from(['', 'i', 's']))}:{draw(regex_bodies(depth - 1))})"
        parts.append(atom + draw(st.sampled_from(["", "", "*", "+", "?", "{1,2}", "{2}", "*?"])))
    return "".join(parts)


@st.composite
def regexes(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["", "(?i)", "(?s)", "^", "(?i)^"]))
    return head + draw(regex_bodies()) + draw(st.sampled_from(["", "$"]))


def _holds(req: object, text: str) -> bool:
    """Whether `text` satisfies a `required` item (substrings compared casefolded)."""
    if isinstance(req, str):
        return req.casefold() in text.casefold()
    return any(all(_holds(r, text) for r in alternative) for alternative in req)  # type: ignore[attr-defined]


@given(regexes(), st.lists(TEXT, min_size=1, max_size=8))
def test_translation_finds_what_python_finds(pattern: str, texts: list[str]) -> None:
    rx = parse_regex("subject", pattern)
    back = parse_regex("subject", pattern, reverse=True)
    python = pattern[:-1] + "\\Z" if pattern.endswith("$") else pattern  # `$` is the very end, as in RE2
    for text in texts:
        want = re.search(python, text) is not None
        assert (re2.search(rx.search(), text) is not None) == want, (pattern, rx.body, text)
        assert (re2.fullmatch(rx.whole(), text) is not None) == want, (pattern, text)
        assert (re2.search(back.search(), text[::-1]) is not None) == want, (pattern, back.body, text)
        if want:
            assert all(_holds(r, text) for r in rx.required), (pattern, rx.required, text)
            assert text.startswith(rx.prefix)
        if rx.start and rx.literal:
            assert want == (text.startswith(rx.prefix) and (not rx.end or text == rx.prefix))


@pytest.mark.parametrize("pattern,prefix,fixed,literal,required", [
    ("^Re: \\[PATCH", "Re: [PATCH", 10, True, ("Re: [PATCH",)),
    ("word.*(fix|bug)", "", 0, False, ("word", (("fix",), ("bug",)))),
    ("(?i)^abc", "", 3, False, ("abc",)),
    ("^ab[cd]ef", "ab", 5, False, ()),
    ("^.*\\.(pdf|png)$", "", 0, False, ()),
    ("x(ab|c)yz", "", 0, False, ()),
])
def test_what_the_planner_learns_from_a_pattern(pattern: str, prefix: str, fixed: int, literal: bool,
                                                required: tuple[object, ...]) -> None:
    rx = parse_regex("subject", pattern)
    assert (rx.prefix, rx.fixed, rx.literal, rx.required) == (prefix, fixed, literal, required)


def test_a_fixed_end_becomes_a_fixed_start_when_reversed() -> None:
    rx = parse_regex("file_name", "(?i)^.*\\.pdf$", reverse=True)
    assert rx.start and rx.end and rx.fixed == 4
    assert re2.fullmatch(rx.whole(), "FDP.tropeR") and not re2.fullmatch(rx.whole(), "fdpx.troper")


def test_an_alternation_at_the_end_counts_as_fixed_when_reversed() -> None:
    assert parse_regex("file_name", "(?i)\\.(pdf|png)$", reverse=True).fixed == 2


def test_the_spelled_out_whitespace_is_pythons() -> None:
    """`\\s` is written out as ranges; they must be exactly the characters str.isspace accepts."""
    from mailindex.query.patterns import _SPACE

    spaces = [cp for cp in range(0x110000) if chr(cp).isspace()]
    assert [cp for lo, hi in _SPACE for cp in range(lo, hi + 1)] == spaces
