"""Contacts: figures relative to the owner, checked against a brute-force reference."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailindex import ContactNotFound, MailIndex, QueryError
from mailindex.plugins import plugin_manager
from tests import boxes, reference
from tests.strategies import ADDRESSES, OWNER, Spec, mailboxes


def expected_contacts(box: list[Spec], owners: list[str]) -> dict[str, dict[str, Any]]:
    """Every contact's figures, the simple way (see mailindex.index.contacts for what they mean)."""
    out: dict[str, dict[str, Any]] = {}
    for s in box:
        rcpts = {a.lower() for a in [*s.to, *s.cc, *s.bcc]}
        by_owner = s.sender.lower() in owners
        exchanged = not owners or by_owner or bool(rcpts & set(owners))
        for a in {s.sender.lower(), *rcpts} - set(owners):
            received = a == s.sender.lower()
            sent = a in rcpts and exchanged
            c = out.setdefault(a, {"email": a, "name": "", "count": 0, "sent_count": 0, "received_count": 0,
                                   "sent_from_account_count": 0, "last_sent": None, "last_received": None})
            c["count"] += received or sent
            c["received_count"] += received
            c["sent_count"] += sent
            c["sent_from_account_count"] += a in rcpts and by_owner
            if received:
                c["last_received"] = max(c["last_received"] or s.date, s.date)
            if sent:
                c["last_sent"] = max(c["last_sent"] or s.date, s.date)
    return {a: c for a, c in out.items() if c["count"]}


def _listed(mx: MailIndex, **params: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k != "thumbnail"} for m in mx.contacts.list(**params)["matches"]]


def _sorted(contacts: list[dict[str, Any]], sort_by: str, desc: bool) -> list[dict[str, Any]]:
    return sorted(contacts, key=lambda c: (c[sort_by], c["email"]), reverse=desc)


@given(mailboxes(), st.sampled_from(["email", "count", "received_count", "sent_count"]),
       st.sampled_from(["asc", "desc"]), st.integers(1, 100), st.integers(0, 5), st.data())
def test_contacts_equal_the_reference(box: list[Spec], sort_by: str, order: str, limit: int, offset: int,
                                      data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mx = boxes.index(box, Path(tmp))
        try:
            want = expected_contacts(box, [OWNER])
            got = _listed(mx, sort_by=sort_by, sort_order=order, limit=limit, offset=offset)
            assert got == _sorted(list(want.values()), sort_by, order == "desc")[offset:offset + limit]
            needle = data.draw(st.sampled_from(["example", "bob", ".org", "zzz", "e+t"]))
            assert [c["email"] for c in _listed(mx, search=needle, sort_by="email")] == \
                sorted(a for a in want if needle in a)
            when = data.draw(st.sampled_from([978307200, 1_600_000_000, 1_600_000_001]))
            active = {a: max(c["last_sent"] or 0, c["last_received"] or 0) for a, c in want.items()}
            assert [c["email"] for c in _listed(mx, active_after=when, sort_by="email")] == \
                sorted(a for a, t in active.items() if t > when)
            assert [c["email"] for c in _listed(mx, active_before=when, sort_by="email")] == \
                sorted(a for a, t in active.items() if t < when)
            for address in list(want)[:3]:
                assert {k: v for k, v in mx.contacts.get(address).items() if k != "thumbnail"} == want[address]
                got_ids = [m["message_id"] for m in mx.contacts.messages(address, limit=100)]
                assert got_ids == reference.answer(box, {"email": address, "limit": 100}, 0)
        finally:
            mx.close()


@given(mailboxes(), st.data())
def test_contacts_follow_removals_and_owner_changes(box: list[Spec], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mx = boxes.index(box, Path(tmp))
        mx.close()
        kept = data.draw(st.lists(st.sampled_from(box), unique_by=lambda s: s.n)) if box else []
        shutil.rmtree(Path(tmp) / "md")
        boxes.write(kept, Path(tmp) / "md")
        with MailIndex(Path(tmp) / "idx", pm=plugin_manager(entry_points=False)) as mx:
            mx.sync("box")
            assert _listed(mx, sort_by="email") == _sorted(list(expected_contacts(kept, [OWNER]).values()),
                                                           "email", False)
        nobody: list[str] = []
        with MailIndex(Path(tmp) / "idx", pm=plugin_manager(entry_points=False), owner=nobody) as mx:
            assert _listed(mx, sort_by="email") == _sorted(list(expected_contacts(kept, nobody).values()),
                                                           "email", False)


@pytest.mark.parametrize("params,param", [
    ({"sort_by": "name"}, "sort_by"), ({"sort_order": "up"}, "sort_order"), ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"), ({"offset": -1}, "offset"), ({"search": " "}, "search"),
    ({"active_after": "soon"}, "active_after"), ({"colour": "red"}, "colour"),
])
def test_bad_contacts_parameters_are_named(tmp_path: Path, params: dict[str, Any], param: str) -> None:
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        with pytest.raises(QueryError) as err:
            mx.contacts.list(**params)
        assert err.value.param == param


def test_unknown_contact_is_not_found(tmp_path: Path) -> None:
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        with pytest.raises(ContactNotFound) as err:
            mx.contacts.get(ADDRESSES[0])
        assert ADDRESSES[0] in str(err.value)
