"""RFC 822 bytes, without parsing: where a message's header block ends, and its fields with their
continuation lines. Shared by the identity rule, the mbox backend and the message objects."""

from __future__ import annotations

import re

_BLANK_LINE = re.compile(rb"\n\r?\n")


def header_end(raw: bytes) -> int | None:
    """The offset just past the header block's last line ending (the blank line starts there); None if
    the message has no blank line, so that all of it is header."""
    m = _BLANK_LINE.search(raw)
    return None if m is None else m.start() + 1


def fields(head: bytes) -> list[bytes]:
    """Header fields with their continuation lines joined (line endings kept)."""
    out: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if out and line[:1] in (b" ", b"\t"):
            out[-1] += line
        else:
            out.append(line)
    return out
