"""Message identity against a line-by-line reference: the same bytes give the same id, store headers aside."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailindex.identity import identity_bytes
from tests.reference import identity_bytes as reference

PIECES = [b"Status: RO", b"X-Status: A", b"Lines: 3", b"status:x", b"X-Mozilla-Status2: 0", b"Subject: hi",
          b" cont", b"\tcont", b"\r", b"\n", b"\r\n", b"From: a", b"Content-Length: 5", b"x", b" ", b"LINES:",
          b"Xstatus: no", b"X-Keywords:", b"\n\n", b"body Status: no\n"]


@given(st.lists(st.sampled_from(PIECES), max_size=16).map(b"".join))
def test_identity_drops_exactly_the_store_fields(raw: bytes) -> None:
    assert identity_bytes(raw) == reference(raw)


@given(st.binary(max_size=200))
def test_identity_of_any_bytes(raw: bytes) -> None:
    assert identity_bytes(raw) == reference(raw)
