"""Threads: which messages belong together, and in what order to show them.

Two separate jobs live here.

`ThreadStore` keeps thread *membership* in SQLite, incrementally, the way
notmuch does: a message is a node linked to its own Message-ID and to every id
in its References and In-Reply-To; two messages share a thread when they are
connected through those ids, including ids of messages we do not have ("ghost"
ids), so a missing parent never splits a thread. Exceptions:

* a message with a Gmail thread id belongs to the thread ``gm-<id>`` only, and
  its ids link nothing: Gmail has already decided its thread;
* a message with no Message-ID is a thread of its own;
* subjects never merge anything.

`jwz_tree` orders *one* thread's messages for display with Jamie Zawinski's
algorithm (https://www.jwz.org/doc/threading.html), without its subject
grouping step.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mailindex.identity import sha256_hex
from mailindex.index import tables

GMAIL_PREFIX = "gm-"

# Every id list is passed to SQLite as one JSON array, read with json_each: one
# fixed statement per query, whatever the number of ids.
_IN_JSON = "IN (SELECT value FROM json_each(?))"


def _thread_nodes(email_message_id: str | None, refs: Iterable[str]) -> list[str]:
    """The ids a non-Gmail message links, its own first, without repeats or empty ids."""
    if not email_message_id:
        return []
    return [n for n in dict.fromkeys((email_message_id, *refs)) if n]


class ThreadStore:
    """Thread membership of every message, kept in SQLite tables named ``thread_*``.

    The caller owns transactions: nothing here begins or commits one, and
    nothing is cached in memory, so a rollback leaves the store consistent.

    Thread ids are stable: ``gm-<Gmail thread id>`` for Gmail messages,
    otherwise 24 hex digits. When threads merge, the largest keeps its id, so
    the fewest messages change thread; `add` and `remove` return the messages
    whose thread id changed so the caller can re-index exactly those.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        # Only when missing, so a read-only connection can use existing tables; one execute per statement
        # because executescript would commit the caller's open transaction.
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'thread_node'").fetchone():
            tables.create_threads(db)

    # -- writing ------------------------------------------------------------
    def add(self, key: str, email_message_id: str | None, refs: Sequence[str],
            gmail_thread_id: str | None = None) -> dict[str, str]:
        """Record message `key` with its Message-ID and the ids it references.

        `refs` is everything the message points at: its References and its
        In-Reply-To. Returns ``{key: new thread id}`` for every other message
        whose thread changed because this one joined two or more threads; adding
        a key already present changes nothing and returns ``{}``.
        """
        db = self.db
        if db.execute("SELECT 1 FROM thread_message WHERE key = ?", (key,)).fetchone():
            return {}
        if gmail_thread_id:
            (thread,) = db.execute(
                "INSERT INTO thread_info (name, size) VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET size = size + 1 RETURNING id",
                (GMAIL_PREFIX + gmail_thread_id,)).fetchone()
            db.execute("INSERT INTO thread_message (key, thread, nodes) VALUES (?, ?, '[]')", (key, thread))
            return {}
        nodes = _thread_nodes(email_message_id, refs)
        found = {node: (nid, thread) for nid, node, thread in db.execute(
            f"SELECT id, node, thread FROM thread_node WHERE node {_IN_JSON}", (json.dumps(nodes),))}
        changed: dict[str, str] = {}
        joined = {thread for _, thread in found.values()}
        if not joined:
            thread = self._new_thread(key, 1)[0]
        elif len(joined) == 1:
            (thread,) = joined
            db.execute("UPDATE thread_info SET size = size + 1 WHERE id = ?", (thread,))
        else:
            # the largest thread survives, so the fewest messages are re-indexed
            threads = sorted((-size, name, tid) for tid, size, name in db.execute(
                f"SELECT id, size, name FROM thread_info WHERE id {_IN_JSON}", (json.dumps(sorted(joined)),)))
            _, name, thread = threads[0]
            size = 1
            for minus_size, _, other in threads:
                size -= minus_size
                if other != thread:
                    changed.update(self._move(other, thread, name))
            db.execute("UPDATE thread_info SET size = ? WHERE id = ?", (size, thread))
        new = "INSERT INTO thread_node (node, thread) VALUES (?, ?) RETURNING id"
        ids = [found[n][0] if n in found else db.execute(new, (n, thread)).fetchone()[0] for n in nodes]
        db.execute("INSERT INTO thread_message (key, thread, nodes) VALUES (?, ?, ?)", (key, thread, json.dumps(ids)))
        return changed

    def _move(self, source: int, target: int, target_name: str) -> dict[str, str]:
        """Move every message and id of thread `source` into `target`, and forget `source`."""
        db = self.db
        moved = db.execute("SELECT key, nodes FROM thread_message WHERE thread = ?", (source,)).fetchall()
        nodes = json.dumps(sorted({n for _, ns in moved for n in json.loads(ns)}))
        db.execute("UPDATE thread_message SET thread = ? WHERE thread = ?", (target, source))
        db.execute(f"UPDATE thread_node SET thread = ? WHERE id {_IN_JSON}", (target, nodes))
        db.execute("DELETE FROM thread_info WHERE id = ?", (source,))
        return dict.fromkeys((k for k, _ in moved), target_name)

    def remove(self, key: str) -> dict[str, str]:
        """Forget message `key`; see `remove_many`."""
        return self.remove_many([key])

    def remove_many(self, keys: Iterable[str]) -> dict[str, str]:
        """Forget messages; unknown keys are ignored.

        A thread that loses the only messages bridging its parts splits: the
        largest part keeps the thread id, the others get new ones. Returns
        ``{key: new thread id}`` for the remaining messages that moved. Each
        touched thread is recomputed once from its remaining members, so the
        cost is the size of the threads touched, however many keys go.
        """
        db = self.db
        touched: dict[int, set[int]] = {}  # thread -> node ids the removed messages linked
        for k in dict.fromkeys(keys):
            row = db.execute("DELETE FROM thread_message WHERE key = ? RETURNING thread, nodes", (k,)).fetchone()
            if row is not None:
                touched.setdefault(row[0], set()).update(json.loads(row[1]))
        changed: dict[str, str] = {}
        for thread, dropped in touched.items():
            changed.update(self._recompute(thread, dropped))
        return changed

    def _recompute(self, thread: int, dropped: set[int]) -> dict[str, str]:
        """Split `thread` into its connected parts after some members left; delete ids nobody links now."""
        db = self.db
        members = {k: json.loads(n) for k, n in
                   db.execute("SELECT key, nodes FROM thread_message WHERE thread = ?", (thread,))}
        linked = {n for nodes in members.values() for n in nodes}
        if dropped - linked:  # every id is linked by a member of its thread: ids no member links go
            db.execute(f"DELETE FROM thread_node WHERE id {_IN_JSON}", (json.dumps(sorted(dropped - linked)),))
        if not members:
            db.execute("DELETE FROM thread_info WHERE id = ?", (thread,))
            return {}
        (name,) = db.execute("SELECT name FROM thread_info WHERE id = ?", (thread,)).fetchone()
        # Gmail's threads never split: their members link no ids
        parts = [sorted(members)] if name.startswith(GMAIL_PREFIX) else _components(members)
        parts.sort(key=lambda keys: (-len(keys), keys[0]))  # the largest part keeps the id
        db.execute("UPDATE thread_info SET size = ? WHERE id = ?", (len(parts[0]), thread))
        changed: dict[str, str] = {}
        for keys in parts[1:]:
            new, name = self._new_thread(keys[0], len(keys))
            nodes = json.dumps(sorted({n for k in keys for n in members[k]}))
            db.execute(f"UPDATE thread_message SET thread = ? WHERE key {_IN_JSON}", (new, json.dumps(keys)))
            db.execute(f"UPDATE thread_node SET thread = ? WHERE id {_IN_JSON}", (new, nodes))
            changed.update(dict.fromkeys(keys, name))
        return changed

    def _new_thread(self, seed: str, size: int) -> tuple[int, str]:
        """Register a thread with a 24-hex id derived from `seed` (a member's key), skipping ids in use."""
        n = 0
        while True:
            name = sha256_hex(f"thread/{seed}/{n}".encode())[:24]
            cur = self.db.execute("INSERT OR IGNORE INTO thread_info (name, size) VALUES (?, ?)", (name, size))
            if cur.rowcount:
                return int(cur.lastrowid or 0), name
            n += 1  # the seed's message created a thread earlier that outlived it

    # -- reading ------------------------------------------------------------
    def thread_of(self, key: str) -> str:
        """Thread id of message `key`; KeyError when the message is unknown."""
        row = self.db.execute("SELECT i.name FROM thread_message m JOIN thread_info i ON i.id = m.thread "
                              "WHERE m.key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return str(row[0])

    def members(self, thread_id: str) -> list[str]:
        """Keys of the messages of a thread, sorted; [] for an unknown thread."""
        return [k for (k,) in self.db.execute(
            "SELECT m.key FROM thread_info i JOIN thread_message m ON m.thread = i.id WHERE i.name = ? "
            "ORDER BY m.key", (thread_id,))]

    def size(self, thread_id: str) -> int:
        """Number of messages in a thread; 0 for an unknown thread."""
        row = self.db.execute("SELECT size FROM thread_info WHERE name = ?", (thread_id,)).fetchone()
        return int(row[0]) if row else 0

    def sizes(self, thread_ids: Iterable[str]) -> dict[str, int]:
        """Sizes of many threads in one query (one result page at a time); unknown threads are left out."""
        ids = json.dumps(list(dict.fromkeys(thread_ids)))
        return dict(self.db.execute(f"SELECT name, size FROM thread_info WHERE name {_IN_JSON}", (ids,)))

    def mates_of(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """{message key: keys of every message of its thread, itself included} in one query; unknown keys
        are left out."""
        ids = json.dumps(list(dict.fromkeys(keys)))
        out: dict[str, list[str]] = {}
        for key, mate in self.db.execute(
                f"SELECT a.key, b.key FROM thread_message a JOIN thread_message b ON b.thread = a.thread "
                f"WHERE a.key {_IN_JSON}", (ids,)):
            out.setdefault(key, []).append(mate)
        return out


def _components(members: dict[str, list[int]]) -> list[list[str]]:
    """Message keys grouped by connectivity through shared ids (union-find over node ids and keys)."""
    parent: dict[str | int, str | int] = {}

    def find(x: str | int) -> str | int:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for key, nodes in members.items():
        k = find(key)  # keys (text) and node ids (integers) live in one union-find
        for n in nodes:
            parent[find(n)] = k  # k stays a root: only other roots are hung under it
    groups: dict[str | int, list[str]] = {}
    for key in members:
        groups.setdefault(find(key), []).append(key)
    return [sorted(keys) for keys in groups.values()]


# ---------------------------------------------------------------- display order

class ThreadMessage(Protocol):
    """What `jwz_tree` reads of a message; `mailindex.record.Record` has it."""

    @property
    def message_id(self) -> str: ...  # our key
    @property
    def email_message_id(self) -> str | None: ...
    @property
    def in_reply_to(self) -> str | None: ...
    @property
    def references(self) -> Sequence[str]: ...
    @property
    def date(self) -> int: ...


@dataclass(slots=True)
class ThreadNode:
    """One message of a displayed thread, or a ghost (key None) standing for a missing message.

    `date` is the message's date, or for a ghost the earliest date below it;
    `children` are sorted by date then key.
    """

    key: str | None
    email_message_id: str | None
    date: int
    children: list[ThreadNode] = field(default_factory=list)


class _Container:
    """JWZ's container: a message, or a ghost for an id only referenced."""

    __slots__ = ("key", "mid", "date", "parent", "children")

    def __init__(self, key: str | None, mid: str | None, date: int) -> None:
        self.key = key
        self.mid = mid
        self.date = date
        self.parent: _Container | None = None
        self.children: list[_Container] = []

    def adopt(self, child: _Container) -> bool:
        """Make `child` (which has no parent) a child of self, unless that closes a loop."""
        up: _Container | None = self
        while up is not None:
            if up is child:
                return False
            up = up.parent
        child.parent = self
        self.children.append(child)
        return True


def jwz_tree(messages: Iterable[ThreadMessage]) -> list[ThreadNode]:
    """The reply tree of one thread's messages, roots sorted by date then key.

    JWZ threading with two changes that make the result independent of input
    order and robust to broken headers: each message is first hung under its
    own parent — its In-Reply-To when that message is present (as notmuch
    trusts it), else the last of its References that is present, else its
    last Reference or In-Reply-To as a ghost — and only then do References
    chains link the parents still missing. A link that would close a loop is
    skipped. A second message with an already seen Message-ID keeps its own
    place (never dropped). Ghosts with no children vanish; other ghosts give
    their children to their parent, except a root ghost with several
    children, which stays as their common root. There is no subject grouping:
    it merges unrelated mail.
    """
    unique = {m.message_id: m for m in messages}
    ordered = sorted(unique.values(), key=lambda m: (m.date, m.message_id))
    by_id: dict[str, _Container] = {}
    every: list[_Container] = []

    def container(mid: str) -> _Container:
        c = by_id.get(mid)
        if c is None:
            c = by_id[mid] = _Container(None, mid, 0)
            every.append(c)
        return c

    own: list[tuple[_Container, ThreadMessage, list[str]]] = []
    for m in ordered:
        c = _Container(m.message_id, m.email_message_id or None, m.date)
        every.append(c)
        if c.mid is not None:
            by_id.setdefault(c.mid, c)  # a duplicate stays out of the table: replies hang under the first
        refs = [r for r in dict.fromkeys(m.references) if r and r != c.mid]
        own.append((c, m, refs))

    # Each message under the parent its own headers name; newest first, so that in a reference
    # cycle the oldest message ends up on top, as notmuch does.
    for c, m, refs in reversed(own):
        irt = m.in_reply_to if m.in_reply_to and m.in_reply_to != c.mid else None
        present = [r for r in (irt, *reversed(refs)) if r is not None and r in by_id and by_id[r].key is not None]
        # present messages first (In-Reply-To, then the latest References), then ghosts; the next
        # candidate is tried when one would close a loop
        for pid in (*present, *refs[-1:], *([irt] if irt else [])):
            if container(pid).adopt(c):
                break

    for c, m, refs in own:  # References chains fill in the parents still unknown (ghosts, mostly)
        for above, below in zip(refs, refs[1:]):
            child = container(below)
            if child.parent is None:
                container(above).adopt(child)

    roots = [c for c in every if c.parent is None]
    order = _preorder(roots)
    for c in reversed(order):  # children before parents: a ghost's children are final when it is dropped
        kids: list[_Container] = []
        for child in c.children:
            if child.key is None:
                kids.extend(child.children)
            else:
                kids.append(child)
        c.children = kids
    top: list[_Container] = []
    for r in roots:
        if r.key is None and len(r.children) < 2:
            top.extend(r.children)
        else:
            top.append(r)

    built: dict[int, ThreadNode] = {}
    for c in reversed(_preorder(top)):
        children = sorted((built.pop(id(ch)) for ch in c.children), key=_display_order)
        date = c.date if c.key is not None else min(ch.date for ch in children)
        built[id(c)] = ThreadNode(c.key, c.mid, date, children)
    return sorted((built[id(r)] for r in top), key=_display_order)


def _preorder(roots: list[_Container]) -> list[_Container]:
    out: list[_Container] = []
    stack = list(roots)
    while stack:  # iterative: reply chains can be deeper than Python's recursion limit
        c = stack.pop()
        out.append(c)
        stack.extend(c.children)
    return out


def _display_order(node: ThreadNode) -> tuple[int, bool, str]:
    return (node.date, node.key is None, node.key or node.email_message_id or "")


def flatten(tree: Sequence[ThreadNode]) -> list[str]:
    """Message keys in depth-first display order (ghosts have no key and are skipped)."""
    out: list[str] = []
    stack = list(reversed(tree))
    while stack:
        node = stack.pop()
        if node.key is not None:
            out.append(node.key)
        stack.extend(reversed(node.children))
    return out
