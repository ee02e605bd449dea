"""The main test of the product: the index answers every filter combination like the reference."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mailindex.query import regex_plan
from tests import boxes, reference
from tests.strategies import DATES, FOLDERS, OWNER, SPECIAL_USE_NAMES, SUBJECT_REGEXES, Spec, mailboxes, queries

QUERIES_PER_BOX = 25  # a box costs ~100 ms to build, a query ~1 ms: ask many of each


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
            # Every box answers the whole listing both ways and each folder question; then random combinations.
            folders = sorted({f for s in box for f in s.folders}) + SPECIAL_USE_NAMES
            systematic = [{"sort_order": o, "limit": 100} for o in ("asc", "desc")] + \
                         [{"folder": f, "limit": 100} for f in folders]
            for q in systematic + [_resolve(data.draw(queries(box)), now) for _ in range(QUERIES_PER_BOX)]:
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


def test_every_folder_and_special_use_name_answers_like_the_reference(tmp_path: Path) -> None:
    """One message in each generated folder: every name, in any case, and every RFC 6154 name."""
    box = [Spec(n=i, subject=f"in {f}", sender="alice@example.com", to=[OWNER], cc=[], bcc=[],
                date=DATES[i % len(DATES)], folders=[f], flagged=i % 4 == 0) for i, f in enumerate(FOLDERS)]
    mx = boxes.index(box, tmp_path)
    try:
        now = mx.messages.list(limit=1)[0]["date_indexed"]
        for value in FOLDERS + [f.lower() for f in FOLDERS] + SPECIAL_USE_NAMES:
            q = {"folder": value, "limit": 100}
            assert [m["message_id"] for m in mx.messages.list(**q)] == reference.answer(box, q, now), value
        for spec in box:
            [folder] = mx.messages.folders(reference.message_id(spec.to_bytes()))
            assert folder == {"name": spec.folders[0], **({"symbolic_name": reference.symbolic_name(spec.folders[0])}
                                                         if reference.symbolic_name(spec.folders[0]) else {})}
    finally:
        mx.close()
