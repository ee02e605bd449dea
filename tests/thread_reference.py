"""Brute-force thread membership, the obviously correct way, to check ThreadStore against.

Every message is a vertex, and so is every Message-ID it names (its own, its
References, its In-Reply-To); a message is joined to each of those ids. A
thread is a connected component, found by a plain breadth-first search over
the whole graph. A Gmail message joins only the other messages of its Gmail
thread, and a message without a Message-ID is alone.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Mail:
    """What threading reads of one message."""

    key: str
    mid: str | None
    references: tuple[str, ...] = ()
    irt: str | None = None
    gmail: str | None = None
    date: int = 0

    @property
    def links(self) -> tuple[str, ...]:
        """Every id the message points at: its References and its In-Reply-To."""
        return self.references + ((self.irt,) if self.irt else ())


def reference_threads(mails: Iterable[Mail]) -> set[frozenset[str]]:
    """The partition of the messages' keys into threads."""
    mails = list(mails)
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def join(a: tuple[str, str], b: tuple[str, str]) -> None:
        edges.setdefault(a, set()).add(b)
        edges.setdefault(b, set()).add(a)

    for m in mails:
        me = ("message", m.key)
        edges.setdefault(me, set())
        if m.gmail is not None:
            join(me, ("gmail", m.gmail))
        elif m.mid is not None:
            join(me, ("id", m.mid))
            for r in m.links:
                join(me, ("id", r))

    threads: set[frozenset[str]] = set()
    seen: set[tuple[str, str]] = set()
    for m in mails:
        start = ("message", m.key)
        if start in seen:
            continue
        seen.add(start)
        queue = deque([start])
        keys = set()
        while queue:
            vertex = queue.popleft()
            if vertex[0] == "message":
                keys.add(vertex[1])
            for other in edges[vertex]:
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
        threads.add(frozenset(keys))
    return threads


def read_mail(path: Path, key: str) -> Mail:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)

    def ids(name: str) -> list[str]:
        return MSGID.findall(" ".join(str(v) for v in msg.get_all(name, [])))

    def first(name: str) -> str | None:
        return next(iter(ids(name)), None)

    parsed = email.utils.parsedate_to_datetime(msg["Date"]) if msg["Date"] else None
    return Mail(key, first("Message-ID"), tuple(ids("References")), first("In-Reply-To"), msg["X-GM-THRID"],
                int(parsed.timestamp()) if parsed else 0)
