"""The main test of the product: the index answers every filter combination like the reference."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mailindex.query import regex_plan
from tests import boxes, reference
from tests.strategies import SUBJECT_REGEXES, Spec, mailboxes, queries


def _resolve(q: dict[str, object], now: int) -> dict[str, object]:
    out = dict(q)
    for k, v in q.items():
        if isinstance(v, str) and v.startswith("now"):
            out[k] = now + int(v[3:] or 0)
    return out


@given(mailboxes(), st.data())
def test_list_equals_reference(box: list[Spec], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mx = boxes.index(box, Path(tmp))
        try:
            now = mx.messages.list(limit=1)[0]["date_indexed"]
            for _ in range(8):
                q = _resolve(data.draw(queries(box)), now)
                got = [m["message_id"] for m in mx.messages.list(**q)]
                assert got == reference.answer(box, q, now), repr(q)
                filters = {k: v for k, v in q.items() if k not in ("limit", "offset", "sort_order")}
                everything = reference.answer(box, {**filters, "limit": 10**6}, now)
                assert mx.messages.count(**filters) == len(everything), repr(q)
        finally:
            mx.close()


@given(mailboxes())
def test_every_regex_route_answers_like_the_reference(box: list[Spec]) -> None:
    """Candidates checked with RE2, the automaton, and RE2 term by term must all agree."""
    with tempfile.TemporaryDirectory() as tmp:
        mx = boxes.index(box, Path(tmp))
        default = regex_plan.CANDIDATES_MAX
        try:
            now = mx.messages.list(limit=1)[0]["date_indexed"]
            for cap in (default, 0):
                regex_plan.CANDIDATES_MAX = cap
                for pattern in SUBJECT_REGEXES:
                    q = {"subject": pattern, "limit": 100}
                    got = [m["message_id"] for m in mx.messages.list(**q)]
                    assert got == reference.answer(box, q, now), (cap, pattern)
        finally:
            regex_plan.CANDIDATES_MAX = default
            mx.close()
