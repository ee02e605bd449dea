"""Targeted filter semantics and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailindex import MailIndex, QueryError
from mailindex.plugins import plugin_manager
from tests import mail


@pytest.fixture
def mx(tmp_path: Path) -> MailIndex:
    to = "me@home.org"
    root = mail.maildir(tmp_path / "md", {"INBOX": [
        mail.message("big and tiny", msgid="<both@t>", date=1000, to=to,
                     attachments=[("big.pdf", b"%" * 5_000_000), ("tiny.txt", b"x" * 10)]),
        mail.message("small pdf", msgid="<small@t>", date=2000, to=to, attachments=[("small.PDF", b"%" * 500)]),
        mail.message("from a subdomain", msgid="<sub@t>", sender="carol@mail.example.com", date=3000, to=to),
        mail.message("from elsewhere", msgid="<other@t>", sender="dave@notexample.com", date=4000, to=to),
        mail.message("(a+)+$ literal", msgid="<meta@t>", date=5000, to=to),
        mail.message("a" * 40 + "b", msgid="<evil@t>", date=6000, to=to),  # (a+)+$ backtracks 2^40 on it
    ]})
    index = MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False))
    index.index(root, "p")
    return index


def _ids(mx: MailIndex, **q: object) -> list[str]:
    return sorted(m["email_message_id"] for m in mx.messages.iter(**q))


def test_name_and_size_must_hold_for_the_same_attachment(mx: MailIndex) -> None:
    assert _ids(mx, file_name="*.pdf", file_size_max=1000) == ["<small@t>"]
    assert _ids(mx, file_name="*.pdf") == ["<both@t>", "<small@t>"]
    assert _ids(mx, file_name="*.txt", file_size_min=1000) == []
    assert _ids(mx, file_size_min=100, file_size_max=1000) == ["<small@t>"]


def test_domain_matches_subdomains_but_not_lookalikes(mx: MailIndex) -> None:
    # alice@example.com (the default sender) and carol@mail.example.com; not dave@notexample.com
    assert _ids(mx, email="example.com") == _ids(mx, email="@example.com") == \
        ["<both@t>", "<evil@t>", "<meta@t>", "<small@t>", "<sub@t>"]
    assert _ids(mx, email="mail.example.com") == ["<sub@t>"]
    assert _ids(mx, email="notexample.com") == ["<other@t>"]
    assert len(_ids(mx, email="home.org")) == 6  # every message was sent to that domain
    assert _ids(mx, email="com") == ["<both@t>", "<evil@t>", "<meta@t>", "<other@t>", "<small@t>", "<sub@t>"]


def test_pathological_regex_runs_in_linear_time(mx: MailIndex) -> None:
    # Catastrophic for a backtracking engine on "a"*40 + "b". The automaton answers the first; the
    # second has a literal, so its candidates are checked with RE2; both must find nothing.
    assert _ids(mx, subject="/(a+)+$/") == []
    assert _ids(mx, subject="/aaa(a+)+c$/") == []
    assert _ids(mx, subject="/^(a+)+b$/") == ["<evil@t>"]
    assert _ids(mx, subject="(a+)+$") == ["<meta@t>"]  # not a regex: a literal substring


def test_date_bounds_are_exclusive(mx: MailIndex) -> None:
    assert _ids(mx, date_after=2000, date_before=4000) == ["<sub@t>"]
    assert _ids(mx, date_after=1999, date_before=2001) == ["<small@t>"]
    assert _ids(mx, date_after=2000, date_before=2001) == []


@pytest.mark.parametrize("params,param", [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"), ({"limit": True}, "limit"),
    ({"offset": -1}, "offset"), ({"sort_order": "up"}, "sort_order"), ({"subject": ""}, "subject"),
    ({"subject": "/(/"}, "subject"), ({"subject": "/a(?=b)/"}, "subject"), ({"subject": "//"}, "subject"),
    ({"file_name": "[a"}, "file_name"), ({"file_name": "/x\\1/"}, "file_name"), ({"from": "a@b,,c@d"}, "from"),
    ({"to": "nobody"}, "to"), ({"date_after": "yesterday"}, "date_after"), ({"unknown": 1}, "unknown"),
    ({"include_headers": "2"}, "include_headers"), ({"file_size_min": -5}, "file_size_min"),
    ({"folder": 3}, "folder"),
])
def test_bad_input_names_the_parameter(mx: MailIndex, params: dict[str, object], param: str) -> None:
    with pytest.raises(QueryError) as err:
        mx.messages.list(**params)
    assert err.value.param == param and param in str(err.value)


def test_thread_size_must_be_a_flag(mx: MailIndex) -> None:
    with pytest.raises(QueryError) as err:
        mx.messages.list(include_thread_size=2)
    assert err.value.param == "include_thread_size"
    assert "thread_size" not in mx.messages.list(include_thread_size=0, limit=1)[0]
