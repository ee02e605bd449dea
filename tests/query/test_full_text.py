"""The query language against its reference: random query trees over generated mailboxes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailindex import QueryError
from mailindex.index import searcher
from tests import boxes, reference, text_reference
from tests.strategies import Spec

QUERIES_PER_BOX = 25


@given(text_reference.text_boxes(), st.data())
def test_query_language_equals_reference(box: list[Spec], data: st.DataObject) -> None:
    # the searcher's first try, a window of the newest messages, too small for most pages or not
    window = data.draw(st.sampled_from([1, 2, searcher.WINDOW]), label="window")
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(searcher, "WINDOW", window):
        mx = boxes.index(box, Path(tmp))
        try:
            for _ in range(QUERIES_PER_BOX):
                tree = data.draw(text_reference.trees(box), label="tree")
                q = text_reference.render(tree)
                page = data.draw(st.fixed_dictionaries({}, optional={
                    "sort_order": st.sampled_from(["asc", "desc"]), "limit": st.integers(1, 5),
                    "offset": st.integers(0, 3)}), label="page")
                got = [m["message_id"] for m in mx.messages.list(q=q, **page)]
                assert got == text_reference.answer(box, tree, page), q
                assert mx.messages.count(q=q) == len(text_reference.answer(box, tree, {"limit": 10**6})), q
        finally:
            mx.close()


@given(text_reference.text_boxes(), st.data())
def test_query_and_filters_are_and(box: list[Spec], data: st.DataObject) -> None:
    """`q` narrows the Context.IO filters and is narrowed by them, whatever they are."""
    with tempfile.TemporaryDirectory() as tmp:
        mx = boxes.index(box, Path(tmp))
        try:
            for _ in range(10):
                tree = data.draw(text_reference.trees(box), label="tree")
                sender = data.draw(st.sampled_from(sorted({s.sender for s in box})), label="from")
                q = text_reference.render(tree)
                got = {m["message_id"] for m in mx.messages.iter(q=q, **{"from": sender})}
                want = {reference.message_id(s.to_bytes()) for s in box
                        if s.sender == sender and text_reference.holds(tree, s)}
                assert got == want, (q, sender)
        finally:
            mx.close()


def test_words_are_folded_and_whole(tmp_path: Path) -> None:
    box = [Spec(n=0, subject="Café crème", sender="a@example.com", to=["me@example.com"], cc=[], bcc=[],
                date=978307200, folders=["INBOX"], flagged=False, body="The imbalances of naïve traders\n"),
           Spec(n=1, subject="imbalance", sender="Lynn.Blair@Enron.com", to=["me@example.com"], cc=[], bcc=[],
                date=978307201, folders=["Sent"], flagged=True, body="see the e-mail\n", sender_name="Lynn Blair")]
    mx = boxes.index(box, tmp_path)
    ids = [reference.message_id(s.to_bytes()) for s in box]
    try:
        def hits(q: str) -> list[str]:
            return sorted(m["message_id"] for m in mx.messages.iter(q=q))

        assert hits("imbalance") == [ids[1]]  # no stemming: "imbalances" is another word
        assert hits("imbalance*") == sorted(ids)
        assert hits("CAFE") == hits("café") == hits("subject:cafe") == [ids[0]]
        assert hits("body:cafe") == []
        assert hits('"naive traders"') == [ids[0]] and hits('"traders naive"') == []
        assert hits("e-mail") == hits('"e mail"') == [ids[1]]
        assert hits("from:lynn") == hits("from:blair") == hits("from:enron.com") == [ids[1]]
        assert hits("from:lynn.blair@enron.com") == hits("email:@enron.com") == [ids[1]]
        assert hits("folder:Sent") == hits("is:flagged") == hits("folder:\\Flagged") == [ids[1]]
        assert hits("-is:flagged") == [ids[0]]
        assert hits("date:2001-01-01T00:00:00") == [ids[0]]
        assert hits("date:2001-01-01T00:00:01..") == [ids[1]]
        assert hits("subject:/^imb/ OR subject:/^Caf/") == sorted(ids)
        assert hits(f"size:{len(box[0].to_bytes())}") == [ids[0]]
    finally:
        mx.close()


@pytest.mark.parametrize("q, position, problem", [
    ("(alpha", 1, "never closed"), ("alpha)", 6, "opens nothing"), ("alpha OR", 7, "needs something after"),
    ("OR alpha", 1, "needs something before"), ("form:alice", 1, "unknown field 'form'"),
    ('subject:"a b', 9, "never closed"), ("subject:/a(/", 1, "subject: invalid regular expression"), ("date:2001-02-30", 1, "calendar"),
    ("date:soon", 1, "not a date"), ("size:big", 1, "not a size"), ("!!", 1, "no word to search for"),
    ("is:happy", 1, "is: takes"), ("has:pdf", 1, "has: takes"), ("a*b*", 1, "a prefix"), ("x ( )", 5, "empty"),
])
def test_a_bad_query_is_one_error_naming_where(tmp_path: Path, q: str, position: int, problem: str) -> None:
    mx = boxes.index([Spec(n=0, subject="x", sender="a@example.com", to=["me@example.com"], cc=[], bcc=[],
                           date=978307200, folders=["INBOX"], flagged=False)], tmp_path)
    try:
        with pytest.raises(QueryError) as caught:
            mx.messages.list(q=q)
        assert caught.value.param == "q"
        assert problem in str(caught.value), str(caught.value)
        assert f"at position {position}:" in str(caught.value)
    finally:
        mx.close()
