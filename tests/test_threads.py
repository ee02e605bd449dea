"""Threads: ThreadStore against the brute-force reference, jwz_tree's shape, and real mail."""

from __future__ import annotations

import mailbox
import random
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailindex.record import Record
from mailindex.threads import GMAIL_PREFIX, ThreadNode, ThreadStore, flatten, jwz_tree
from tests.thread_reference import MSGID, Mail, read_mail, reference_threads

HEX24 = re.compile(r"[0-9a-f]{24}")


def mid(n: int) -> str:
    return f"<m{n}@test.example>"


def new_store() -> tuple[sqlite3.Connection, ThreadStore]:
    db = sqlite3.connect(":memory:", isolation_level=None)
    return db, ThreadStore(db)


def record(m: Mail) -> Record:
    return Record(message_id=m.key, sha256="", size=0, email_message_id=m.mid, in_reply_to=m.irt,
                  references=list(m.references), gmail_thread_id=m.gmail, date=m.date)


class Replay:
    """Thread ids as a caller sees them: read once on add, then updated only from the returned dicts."""

    def __init__(self) -> None:
        self.db, self.store = new_store()
        self.mails: dict[str, Mail] = {}
        self.view: dict[str, str] = {}

    def add(self, m: Mail) -> None:
        before = dict(self.view)
        sizes_before = Counter(before.values())
        changed = self.store.add(m.key, m.mid, m.links, m.gmail)
        self.mails[m.key] = m
        self.view.update(changed)
        self.view[m.key] = self.store.thread_of(m.key)
        assert m.key not in changed
        assert all(before[k] != t for k, t in changed.items())
        survivor = self.view[m.key]
        # the merged threads were no larger than the one that kept its id
        assert all(sizes_before[before[k]] <= sizes_before[survivor] for k in changed)
        self.check()

    def remove(self, keys: list[str]) -> None:
        before = dict(self.view)
        changed = self.store.remove_many(keys)
        for k in keys:
            del self.mails[k], self.view[k]
        assert set(changed) <= set(self.view)
        assert all(before[k] != t for k, t in changed.items())
        self.view.update(changed)
        self.check()

    def check(self) -> None:
        assert {k: self.store.thread_of(k) for k in self.view} == self.view
        assert partition(self.view) == reference_threads(self.mails.values())
        counts = Counter(self.view.values())
        assert self.store.sizes([*counts, "unknown"]) == counts
        for thread, n in counts.items():
            assert self.store.size(thread) == n
            assert self.store.members(thread) == sorted(k for k, t in self.view.items() if t == thread)
        for k, thread in self.view.items():
            gmail = self.mails[k].gmail
            assert thread == GMAIL_PREFIX + gmail if gmail else HEX24.fullmatch(thread)
        # nothing leaks: exactly the ids present messages link, exactly the live threads
        linked = {n for m in self.mails.values() if m.mid and not m.gmail for n in (m.mid, *m.links)}
        assert {n for (n,) in self.db.execute("SELECT node FROM thread_node")} == linked
        assert self.db.execute("SELECT count(*) FROM thread_info").fetchone()[0] == len(counts)


def partition(view: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for k, t in view.items():
        groups.setdefault(t, set()).add(k)
    return {frozenset(g) for g in groups.values()}


# ---------------------------------------------------------------- generated conversations

@st.composite
def conversations(draw: st.DrawFn, messy: bool = True) -> list[Mail]:
    """Reply trees with every defect real mail has (when messy): missing, duplicated or absent
    Message-IDs, only In-Reply-To or only References, trimmed References, references to later
    messages (cycles), a bogus id shared by unrelated mail (`<yes>`), Gmail threads, equal dates."""
    n = draw(st.integers(1, 24))
    parents: list[int | None] = [None]
    for i in range(1, n):
        parents.append(draw(st.none() | st.integers(0, i - 1)))
    mails = []
    for i in range(n):
        chain: list[int] = []
        p = parents[i]
        while p is not None:
            chain.insert(0, p)
            p = parents[p]
        refs = [mid(a) for a in chain]
        irt = refs[-1] if refs else None
        own: str | None = mid(i)
        gmail = None
        if messy:
            style = draw(st.sampled_from(["full", "full", "irt", "refs", "trimmed", "irt-elsewhere"]))
            if style == "irt":
                refs = []
            elif style == "refs":
                irt = None
            elif style == "trimmed":
                refs = refs[:1] + refs[-2:] if len(refs) > 3 else refs
            elif style == "irt-elsewhere":
                irt = draw(st.sampled_from([mid(j) for j in range(n)] + ["<yes>", "<lost@x>"]))
            refs += draw(st.lists(st.sampled_from([mid(j) for j in range(n)] + ["<yes>"]), max_size=1))
            kind = draw(st.sampled_from(["own"] * 6 + ["none", "duplicate"]))
            own = None if kind == "none" else mid(draw(st.integers(0, n - 1))) if kind == "duplicate" else own
            gmail = draw(st.sampled_from([None] * 6 + ["111", "222"]))
        date = draw(st.integers(0, 4))
        mails.append(Mail(f"k{i:02}", own, tuple(refs), irt, gmail, date))
    kept = draw(st.lists(st.booleans(), min_size=n, max_size=n)) if messy else [True] * n
    if messy and not any(kept):
        kept[0] = True
    return [m for m, keep in zip(mails, kept) if keep]


@given(conversations(), st.data())
def test_store_matches_reference_through_adds_removes_and_readds(mails: list[Mail], data: st.DataObject) -> None:
    replay = Replay()
    for m in data.draw(st.permutations(mails), label="ingest order"):
        replay.add(m)
    gone = data.draw(st.lists(st.sampled_from([m.key for m in mails]), unique=True), label="removed")
    replay.remove(gone)
    back = [m for m in mails if m.key in gone]
    for m in data.draw(st.permutations(back), label="re-ingest order"):
        replay.add(m)
    assert partition(replay.view) == reference_threads(mails)
    replay.remove([m.key for m in mails])
    assert replay.db.execute("SELECT count(*) FROM thread_node").fetchone()[0] == 0


@given(conversations(), st.data())
def test_removing_one_at_a_time_reports_every_split(mails: list[Mail], data: st.DataObject) -> None:
    replay = Replay()
    for m in mails:
        replay.add(m)
    for key in data.draw(st.permutations([m.key for m in mails])):
        replay.remove([key])
    assert replay.view == {}


# ---------------------------------------------------------------- ThreadStore examples

def test_a_missing_parent_does_not_split_its_replies() -> None:
    _, store = new_store()
    store.add("a", mid(1), [mid(0)])
    store.add("b", mid(2), [mid(0)])
    store.add("c", mid(3), [mid(0), mid(2)])
    assert store.thread_of("a") == store.thread_of("b") == store.thread_of("c")
    assert store.size(store.thread_of("a")) == 3


def test_the_larger_thread_keeps_its_id_when_threads_merge() -> None:
    _, store = new_store()
    store.add("big1", mid(1), [])
    store.add("big2", mid(2), [mid(1)])
    store.add("big3", mid(3), [mid(2)])
    store.add("small", mid(9), [])
    big, small = store.thread_of("big1"), store.thread_of("small")
    assert store.add("bridge", mid(10), [mid(9), mid(3)]) == {"small": big}
    assert store.members(big) == ["big1", "big2", "big3", "bridge", "small"]
    assert store.size(small) == 0 and store.members(small) == []


def test_removing_the_only_bridge_splits_the_thread_and_the_larger_part_keeps_the_id() -> None:
    _, store = new_store()
    store.add("a1", mid(1), [])
    store.add("a2", mid(2), [mid(1)])
    store.add("b1", mid(5), [])
    store.add("bridge", mid(6), [mid(2), mid(5)])
    thread = store.thread_of("a1")
    assert store.size(thread) == 4
    changed = store.remove("bridge")
    assert set(changed) == {"b1"} and changed["b1"] != thread and HEX24.fullmatch(changed["b1"])
    assert store.thread_of("a1") == store.thread_of("a2") == thread
    assert store.sizes([thread, changed["b1"]]) == {thread: 2, changed["b1"]: 1}
    assert store.remove("bridge") == {}


def test_a_reference_cycle_is_one_thread() -> None:
    _, store = new_store()
    store.add("a", mid(1), [mid(2)])
    store.add("b", mid(2), [mid(1)])
    store.add("c", mid(3), [mid(3)])  # refers to itself
    assert store.thread_of("a") == store.thread_of("b") != store.thread_of("c")
    assert store.remove("a") == {} and store.size(store.thread_of("b")) == 1


def test_duplicate_message_ids_share_a_thread() -> None:
    _, store = new_store()
    store.add("copy1", mid(1), [])
    store.add("copy2", mid(1), [mid(0)])
    assert store.thread_of("copy1") == store.thread_of("copy2")
    assert store.remove("copy2") == {}
    assert store.size(store.thread_of("copy1")) == 1


def test_a_message_without_message_id_is_alone_and_adding_twice_changes_nothing() -> None:
    _, store = new_store()
    store.add("parent", mid(1), [])
    assert store.add("anonymous", None, [mid(1)]) == {}
    assert store.add("anonymous", None, [mid(1)]) == {}
    assert store.add("parent", mid(1), [mid(7)]) == {}
    assert store.thread_of("anonymous") != store.thread_of("parent")
    assert store.size(store.thread_of("anonymous")) == 1 and store.size(store.thread_of("parent")) == 1


def test_gmail_decides_gmail_threads() -> None:
    _, store = new_store()
    store.add("plain", mid(1), [])
    store.add("g1", mid(2), [mid(1)], gmail_thread_id="1529553825574740118")
    store.add("g2", mid(3), [], gmail_thread_id="1529553825574740118")
    store.add("reply", mid(4), [mid(2)])
    assert store.thread_of("g1") == store.thread_of("g2") == "gm-1529553825574740118"
    assert store.thread_of("plain") != store.thread_of("reply")  # Gmail's references link nothing
    assert store.remove("g1") == {} and store.size("gm-1529553825574740118") == 1
    store.remove("g2")
    assert store.size("gm-1529553825574740118") == 0


def test_a_thread_id_is_not_reused_while_its_thread_lives() -> None:
    _, store = new_store()
    store.add("first", mid(1), [])
    thread = store.thread_of("first")
    store.add("reply", mid(2), [mid(1)])
    store.remove("first")
    store.add("first", None, [])  # the same key comes back, alone this time
    assert store.thread_of("reply") == thread
    assert store.thread_of("first") != thread and HEX24.fullmatch(store.thread_of("first"))


def test_a_rollback_leaves_the_store_as_it_was() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("BEGIN")
    store = ThreadStore(db)
    assert db.in_transaction  # creating the tables did not commit the caller's transaction
    db.execute("COMMIT")
    store.add("a", mid(1), [])
    db.execute("BEGIN")
    store.add("b", mid(2), [mid(1)])
    store.add("c", mid(3), [])
    store.remove("a")
    db.execute("ROLLBACK")
    assert store.members(store.thread_of("a")) == ["a"]
    with pytest.raises(KeyError):
        store.thread_of("b")


def test_a_read_only_connection_can_read_threads(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    ThreadStore(db).add("a", mid(1), [])
    db.close()
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    assert ThreadStore(ro).members(ThreadStore(ro).thread_of("a")) == ["a"]
    ro.close()


# ---------------------------------------------------------------- jwz_tree

def walk(tree: list[ThreadNode]) -> Iterator[tuple[ThreadNode, ThreadNode | None]]:
    """Every node with its parent, failing on a node reached twice (a loop or a shared child)."""
    seen: set[int] = set()
    stack: list[tuple[ThreadNode, ThreadNode | None]] = [(n, None) for n in tree]
    while stack:
        node, parent = stack.pop()
        assert id(node) not in seen
        seen.add(id(node))
        yield node, parent
        stack.extend((c, node) for c in node.children)


def order_key(n: ThreadNode) -> tuple[int, bool, str]:
    return (n.date, n.key is None, n.key or n.email_message_id or "")


def shape(tree: list[ThreadNode]) -> list:
    """The tree as nested lists of keys (None for a ghost), for exact comparisons."""
    return [[n.key, shape(n.children)] if n.children else n.key for n in tree]


def check_tree(tree: list[ThreadNode], mails: list[Mail]) -> None:
    keys = flatten(tree)
    assert sorted(keys) == sorted(m.key for m in mails)  # every message exactly once
    assert len(keys) == len(set(keys))
    for node, parent in walk(tree):
        siblings = parent.children if parent else tree
        assert siblings == sorted(siblings, key=order_key)
        if node.key is None:  # ghosts survive only as the common root of several messages
            assert parent is None and len(node.children) >= 2
            assert node.date == min(c.date for c in node.children)


@given(conversations())
def test_jwz_tree_keeps_every_message_once_in_a_sorted_loop_free_tree(mails: list[Mail]) -> None:
    check_tree(jwz_tree(record(m) for m in mails), mails)


@given(conversations(messy=False), st.data())
def test_jwz_tree_follows_consistent_headers(mails: list[Mail], data: st.DataObject) -> None:
    """With consistent References and In-Reply-To, a message's displayed parent is its nearest
    present ancestor; a message with none is at the top (alone or under a ghost)."""
    kept = data.draw(st.lists(st.sampled_from(mails), min_size=1, unique=True), label="kept")
    by_mid = {m.mid: m.key for m in kept}
    tree = jwz_tree(record(m) for m in kept)
    check_tree(tree, kept)
    shown_parent = {}
    for node, parent in walk(tree):
        if node.key is not None:
            shown_parent[node.key] = parent.key if parent else None
    for m in kept:
        present = [by_mid[r] for r in m.references if r in by_mid]
        assert shown_parent[m.key] == (present[-1] if present else None)


def test_jwz_tree_ghosts_duplicates_and_cycles() -> None:
    mails = [
        Mail("root", mid(0), date=1),
        Mail("reply", mid(1), (mid(0),), mid(0), date=2),
        Mail("reply-copy", mid(1), (mid(0),), mid(0), date=2),  # same Message-ID, another message
        Mail("under-reply", mid(2), (mid(0), mid(1)), mid(1), date=3),
        Mail("orphan-a", mid(3), (mid(9),), mid(9), date=5),  # two replies to a message we lack
        Mail("orphan-b", mid(4), (mid(9),), mid(9), date=4),
        Mail("lonely", mid(5), (mid(8),), mid(8), date=6),  # the only reply to a missing message
        Mail("loop-a", mid(6), (mid(7),), mid(7), date=7),
        Mail("loop-b", mid(7), (mid(6),), mid(6), date=8),
    ]
    tree = jwz_tree(record(m) for m in mails)
    check_tree(tree, mails)
    assert shape(tree) == [
        ["root", [["reply", ["under-reply"]], "reply-copy"]],
        [None, ["orphan-b", "orphan-a"]],
        "lonely",
        ["loop-a", ["loop-b"]],
    ]
    assert tree[1].email_message_id == mid(9) and tree[1].date == 4
    assert jwz_tree([]) == []


def test_jwz_tree_uses_the_last_present_reference_when_in_reply_to_is_unknown() -> None:
    # notmuch's T510 cases: a dodgy In-Reply-To, and an In-Reply-To not among the References
    mails = [Mail("one", mid(1)), Mail("other", mid(2)),
             Mail("reply", mid(3), (mid(1), "<bogus@x>"), "<mumble>"),
             Mail("reply2", mid(4), ("<baz@x>", mid(2)), "<baz@x>")]
    assert shape(jwz_tree(record(m) for m in mails)) == [["one", ["reply"]], ["other", ["reply2"]]]


def test_jwz_tree_survives_a_chain_deeper_than_the_recursion_limit() -> None:
    mails = [Mail(f"k{i:05}", mid(i), (mid(i - 1),) if i else (), date=i) for i in range(3000)]
    random.Random(0).shuffle(mails)
    assert flatten(jwz_tree(record(m) for m in mails)) == [f"k{i:05}" for i in range(3000)]


# ---------------------------------------------------------------- real mail

def read_dir(folder: Path) -> list[Mail]:
    return [read_mail(p, p.name) for p in sorted(folder.iterdir()) if p.is_file()]


def store_partition(mails: Iterable[Mail]) -> set[frozenset[str]]:
    _, store = new_store()
    mails = list(mails)
    for m in mails:
        store.add(m.key, m.mid, m.links, m.gmail)
    return partition({m.key: store.thread_of(m.key) for m in mails})


@pytest.mark.corpora
def test_notmuch_ghost_root(corpora: Path) -> None:
    mails = read_dir(corpora / "notmuch" / "threading" / "ghost-root")
    rt = {"1529425589.M615261P21663.len:2,S", "1532672447.R3166642290392477575.len:2,S",
          "1532672447.R6968667928580738175.len:2,S"}
    example = {"real-root", "child", "fake-root", "grand-child", "grand-child2", "great-grand-child"}
    assert store_partition(mails) == {frozenset(rt), frozenset(example)} == reference_threads(mails)
    # the trees notmuch's T510 "reply to ghost" tests expect
    tree = jwz_tree(record(m) for m in mails if m.key in example)
    assert shape(tree) == [["real-root", [["child", ["fake-root", ["grand-child", ["great-grand-child"]],
                                                     "grand-child2"]]]]]
    tree = jwz_tree(record(m) for m in mails if m.key in rt)
    fyi, auto_reply, resolved = ("1529425589.M615261P21663.len:2,S", "1532672447.R3166642290392477575.len:2,S",
                                 "1532672447.R6968667928580738175.len:2,S")
    assert shape(tree) == [[None, [[fyi, [auto_reply]], resolved]]]
    assert (tree[0].email_message_id or "").startswith("<RT-Ticket-33575@")


@pytest.mark.corpora
def test_notmuch_parent_priority_trusts_in_reply_to(corpora: Path) -> None:
    mails = read_dir(corpora / "notmuch" / "threading" / "parent-priority" / "cur")
    # child's References name a mistyped root (<B00--root@...>); grand-child's list root last
    assert store_partition(mails) == {frozenset({"root", "child", "grand-child"})}
    assert shape(jwz_tree(record(m) for m in mails)) == [["root", [["child", ["grand-child"]]]]]


@pytest.mark.corpora
def test_notmuch_lkml(corpora: Path) -> None:
    mails = read_dir(corpora / "notmuch" / "lkml" / "cur")
    assert len(mails) == 210
    expected = reference_threads(mails)
    assert sorted(map(len, expected), reverse=True) == [100, 80, 12, 10, 4, 3, 1]
    rng = random.Random(210)
    for _ in range(3):
        order = mails[:]
        rng.shuffle(order)
        assert store_partition(order) == expected
    replay = Replay()
    for m in mails:
        replay.add(m)
    replay.remove([m.key for m in mails if rng.random() < 0.5])  # checks against the reference again
    thread_of = {k: t for t in store_partition(mails) for k in t}
    by_mid = {m.mid: m.key for m in mails}
    for m in mails:  # a reply shares the thread of every message it names
        for r in m.links:
            if r in by_mid:
                assert by_mid[r] in thread_of[m.key]
    # git send-email's "In-Reply-To: <yes>" joins a notmuch patch and a cifs series, as notmuch does
    assert "1382298587.001730:2," in thread_of["1354585346.000261:2,"]
    # 34 messages are stored twice (identical bytes, two file names): each pair shares a thread
    copies = Counter(m.mid for m in mails)
    assert sum(c == 2 for c in copies.values()) == 34
    for m in mails:
        assert all(o.key in thread_of[m.key] for o in mails if o.mid == m.mid)


@pytest.mark.corpora
def test_notmuch_lkml_display_trees(corpora: Path) -> None:
    mails = read_dir(corpora / "notmuch" / "lkml" / "cur")
    by_key = {m.key: m for m in mails}
    for thread in reference_threads(mails):
        members = [by_key[k] for k in thread]
        tree = jwz_tree(record(m) for m in members)
        check_tree(tree, members)
        shown = {node.key: parent for node, parent in walk(tree)}
        present = {m.mid for m in members}
        for m in members:  # In-Reply-To is trusted whenever it names a message we have
            if m.irt in present:
                parent = shown[m.key]
                assert parent is not None and parent.email_message_id == m.irt
    # gmane rewrote In-Reply-To (…sjayaraman-l3A5Bk7waGM@public.gmane.org) but not References, whose
    # last entry is the bogus <yes>: the reply still shows under the patch it answers
    tree = jwz_tree(record(m) for m in mails if m.mid and "sjayaraman" in " ".join((m.mid, *m.links)))
    parent = {node.key: parent for node, parent in walk(tree)}["1382298587.002189:2,"]
    assert parent is not None
    assert parent.email_message_id == "<1277220189-3485-1-git-send-email-sjayaraman@suse.de>"


@pytest.mark.corpora
def test_gmail_takeout_threads_are_gmails(corpora: Path) -> None:
    _, store = new_store()
    box = mailbox.mbox(corpora / "gmail-takeout-sample" / "small.gmail.mbox", create=False)
    gmail = {}
    for i, msg in enumerate(box):
        links = msg.get_all("References", []) + msg.get_all("In-Reply-To", [])
        ids = MSGID.findall(" ".join(str(v) for v in links))
        own = MSGID.findall(str(msg.get("Message-ID", "")))
        store.add(f"m{i}", own[0] if own else None, ids, msg["X-GM-THRID"])
        gmail[f"m{i}"] = msg["X-GM-THRID"]
    assert sum(t is not None for t in gmail.values()) == 4
    for key, thrid in gmail.items():
        thread = store.thread_of(key)
        assert thread == f"gm-{thrid}" if thrid else HEX24.fullmatch(thread)
        assert store.size(thread) == 1
