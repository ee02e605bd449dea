"""The query language written the simple way: generated query trees, their text, and their answer.

Queries are drawn as trees, rendered to the text a user would type, and
evaluated here on the generated Specs with the standard library, so the
index's parser and compiler are checked against the README's words, not
against themselves.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from typing import Any, Union

from hypothesis import strategies as st

from tests import reference
from tests.strategies import DATES, Spec

# Words in the README's sense: runs of letters and digits, lowercased, accents folded, never stemmed.
VOCABULARY = ["alpha", "Alpha", "BETA", "beta", "gamma", "café", "cafe", "Naïve", "naive", "e-mail", "mail", "x1",
              "日本", "2001", "re", "Re:"]
STEMS = ["al", "ca", "na", "e", "be", "x", "日", "ga", "20"]
NAMES = ["Lynn Blair", "Zoë Alpha", "Mail Room", "Beta"]
Tree = Union[tuple[Any, ...]]


def words(text: str) -> list[str]:
    out = []
    for run in re.findall(r"[^\W_]+", text):
        folded = "".join(c for c in unicodedata.normalize("NFKD", run.lower()) if not unicodedata.combining(c))
        out.append(folded)
    return out


def _has(tokens: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(tokens[i : i + n] == phrase for i in range(len(tokens) - n + 1))


def _places(spec: Spec, place: str | None) -> list[list[str]]:
    places = {"subject": words(spec.subject), "body": words(spec.body or ""),
              "attachment": words(spec.attachment or "")}
    if place == "from":
        return [words(f"{spec.sender_name or ''} {spec.sender}")]
    return [places[place]] if place else list(places.values())


def holds(tree: Tree, spec: Spec) -> bool:
    kind = tree[0]
    if kind == "and":
        return all(holds(t, spec) for t in tree[1])
    if kind == "or":
        return any(holds(t, spec) for t in tree[1])
    if kind == "not":
        return not holds(tree[1], spec)
    if kind == "text":
        _, place, text, _quoted = tree
        return any(_has(tokens, words(text)) for tokens in _places(spec, place))
    if kind == "prefix":
        _, place, stem = tree
        return any(t.startswith(words(stem)[0]) for tokens in _places(spec, place) for t in tokens)
    if kind == "from_address":
        return spec.sender == tree[1]
    if kind == "date":
        _, lo, hi, _text = tree
        return lo <= spec.date < hi
    raise AssertionError(tree)


def render(tree: Tree, top: bool = True) -> str:
    kind = tree[0]
    if kind == "and":
        return " ".join(render(t, False) for t in tree[1])
    if kind == "or":
        text = " OR ".join(render(t, False) for t in tree[1])
        return text if top else f"({text})"
    if kind == "not":
        if tree[1][0] in ("text", "prefix", "from_address", "date"):
            return f"-{render(tree[1], False)}"
        return f"NOT ({render(tree[1])})"
    if kind == "text":
        _, place, text, quoted = tree
        value = f'"{text}"' if quoted else text
        return f"{place}:{value}" if place else value
    if kind == "prefix":
        _, place, stem = tree
        return f"{place}:{stem}*" if place else f"{stem}*"
    if kind == "from_address":
        return f"from:{tree[1]}"
    return f"date:{tree[3]}"


def _year(y: int) -> tuple[int, int]:
    return calendar.timegm((y, 1, 1, 0, 0, 0)), calendar.timegm((y + 1, 1, 1, 0, 0, 0))


def _dates() -> st.SearchStrategy[Tree]:
    """Dates as the README lets one type them, with the period each one names."""
    y2000, y2001 = _year(2000), _year(2001)
    day = calendar.timegm((2000, 12, 31, 0, 0, 0))
    forms = [("date", *y2000, "2000"), ("date", *y2001, "2001"), ("date", y2000[0], y2001[1], "2000..2001"),
             ("date", y2001[0], 2**40, "2001.."), ("date", -(2**40), y2001[0], "..2000-12-31"),
             ("date", day, day + 86400, "2000-12-31"), ("date", DATES[1], DATES[1] + 1, str(DATES[1])),
             ("date", DATES[1], DATES[1] + 60, "2001-01-01T00:00Z"), ("date", DATES[0], DATES[0] + 1,
                                                                        "2001-01-01T00:59:59+01:00"),
             ("date", calendar.timegm((2020, 9, 1, 0, 0, 0)), calendar.timegm((2020, 10, 1, 0, 0, 0)), "2020-09")]
    return st.sampled_from(forms)


def _leaves(box: list[Spec]) -> st.SearchStrategy[Tree]:
    places = st.sampled_from([None, None, "subject", "body", "attachment"])
    phrase = st.lists(st.sampled_from(VOCABULARY), min_size=2, max_size=3).map(" ".join)
    senders = sorted({s.sender for s in box})
    return st.one_of(
        st.tuples(st.just("text"), places, st.sampled_from(VOCABULARY), st.just(False)),
        st.tuples(st.just("text"), places, phrase, st.just(True)),
        st.tuples(st.just("prefix"), places, st.sampled_from(STEMS)),
        st.tuples(st.just("text"), st.just("from"), st.sampled_from(["lynn", "alpha", "zoe", "beta", "example",
                                                                     "alice"]), st.just(False)),
        st.tuples(st.just("from_address"), st.sampled_from(senders)),
        _dates(),
    )


def trees(box: list[Spec]) -> st.SearchStrategy[Tree]:
    return st.recursive(
        _leaves(box),
        lambda inner: st.one_of(
            st.tuples(st.just("and"), st.lists(inner, min_size=2, max_size=3)),
            st.tuples(st.just("or"), st.lists(inner, min_size=2, max_size=3)),
            st.tuples(st.just("not"), inner),
        ),
        max_leaves=6,
    )


@st.composite
def text_specs(draw: st.DrawFn, n: int) -> Spec:
    phrase = st.lists(st.sampled_from(VOCABULARY), max_size=6).map(" ".join)
    return Spec(n=n, subject=draw(phrase), sender=draw(st.sampled_from(["alice@example.com", "lynn.blair@enron.com",
                                                                         "beta@mail.example.org"])),
                to=["me@example.com"], cc=[], bcc=[], date=draw(st.sampled_from(DATES + [1_600_000_000])),
                folders=["INBOX"], flagged=False, body=draw(phrase) + "\n",
                sender_name=draw(st.sampled_from([None, *NAMES])), attachment=draw(st.none() | phrase))


@st.composite
def text_boxes(draw: st.DrawFn) -> list[Spec]:
    return [draw(text_specs(i)) for i in range(draw(st.integers(1, 12)))]


def answer(box: list[Spec], tree: Tree, page: dict[str, Any]) -> list[str]:
    hits = [s for s in box if holds(tree, s)]
    hits.sort(key=reference.sort_key, reverse=page.get("sort_order", "desc") == "desc")
    offset, limit = page.get("offset", 0), page.get("limit", 100)
    return [reference.message_id(s.to_bytes()) for s in hits[offset : offset + limit]]
