"""Message identity against a line-by-line reference: the same bytes give the same id, store headers aside."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mailindex.record import identity_bytes

# Written from the README's rule, not from the implementation: fold CRLF to LF, split the header
# into fields (a line and its continuation lines), drop the fields mail stores rewrite.
STORE_FIELDS = re.compile(rb"(status|x-status|x-keywords|x-uid|x-imap|x-imapbase|x-mozilla-status|"
                          rb"x-mozilla-status2|content-length|lines|x-gmail-labels|x-evolution|x-mozilla-keys):",
                          re.IGNORECASE)


def reference(raw: bytes) -> bytes:
    data = raw.replace(b"\r\n", b"\n")
    end = data.find(b"\n\n")
    head, body = (data, b"") if end < 0 else (data[: end + 1], data[end + 1 :])
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    return b"".join(f for f in fields if not STORE_FIELDS.match(f)) + body


PIECES = [b"Status: RO", b"X-Status: A", b"Lines: 3", b"status:x", b"X-Mozilla-Status2: 0", b"Subject: hi",
          b" cont", b"\tcont", b"\r", b"\n", b"\r\n", b"From: a", b"Content-Length: 5", b"x", b" ", b"LINES:",
          b"Xstatus: no", b"X-Keywords:", b"\n\n", b"body Status: no\n"]


@given(st.lists(st.sampled_from(PIECES), max_size=16).map(b"".join))
def test_identity_drops_exactly_the_store_fields(raw: bytes) -> None:
    assert identity_bytes(raw) == reference(raw)


@given(st.binary(max_size=200))
def test_identity_of_any_bytes(raw: bytes) -> None:
    assert identity_bytes(raw) == reference(raw)
