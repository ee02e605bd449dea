"""The Backend contract, run once for every registered source type (cf. CPython's test_mailbox)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailindex.errors import SourceNotFound
from mailindex.folders import FLAG_NAMES
from mailindex.sources.base import Backend, Container, Entry
from tests.budget import examples

from .conftest import LAYOUTS, Layout, scan, source_types

TRICKY_LINES = [
    b"From here on it is plain text",
    b"From someone@example.org Mon Jan  1 00:00:00 2001",
    b"From -",
    b">From quoted once",
    b">>From quoted twice",
    b"From: not a header, just a body line",
    b"",
    b"plain line",
]


def message(n: int, body_lines: list[bytes] = (), eol: bytes = b"\n", subject: bytes = b"") -> bytes:
    head = [b"From: alice@example.org", b"To: bob@example.org",
            b"Subject: message %d %s" % (n, subject), b"Message-ID: <m%d@test.example>" % n]
    return eol.join([*head, b"", *(body_lines or [b"body %d" % n])]) + eol


MESSAGES = [
    ("INBOX", message(1)),
    ("INBOX", message(2, TRICKY_LINES)),
    ("Sent", message(3, [b"From me to you", b""])),
    ("Work/Project", message(4, TRICKY_LINES, eol=b"\r\n")),
    ("Work/Project", message(5)),
]


def open_source(pm, location: Path, source_type: str | None) -> Backend:
    source = pm.hook.mailindex_open_source(location=str(location), source_type=source_type, options={})
    assert source is not None, f"no source claims {location} (type {source_type})"
    return source


def listing(source: Backend) -> Counter:
    """(folders, bytes) of every entry, read back through read_bytes."""
    out: Counter = Counter()
    for e in scan(source):
        data = source.read_bytes(e.locator)
        if e.data is not None:
            assert e.data == data
        out[(e.folders, data)] += 1
    return out


def expected(messages: list[tuple[str, bytes]]) -> Counter:
    return Counter(((folder,), msg) for folder, msg in messages)


def stamps(source: Backend) -> dict[str, str]:
    return {c.name: c.stamp for c in source.containers()}


@pytest.fixture
def mailbox(layout: Layout, tmp_path: Path) -> Path:
    return layout.write(tmp_path / "mail", MESSAGES)


def test_detected_and_named(pm, layout: Layout, mailbox: Path) -> None:
    detected = open_source(pm, mailbox, None)
    named = open_source(pm, mailbox, layout.type)
    assert detected.type == named.type == layout.type
    assert type(detected) is type(named)
    # Detection is unambiguous: no other built-in format claims this mailbox.
    claims = [t for t in source_types() if type(open_source(pm, mailbox, t)).looks_like(mailbox)]
    assert claims == [layout.type]


def test_every_message_listed_once_with_exact_bytes(pm, layout: Layout, mailbox: Path) -> None:
    source = open_source(pm, mailbox, None)
    assert listing(source) == expected(MESSAGES)


def test_entries_are_well_formed(pm, layout: Layout, mailbox: Path) -> None:
    source = open_source(pm, mailbox, None)
    containers = list(source.containers())
    assert all(isinstance(c, Container) for c in containers)
    assert len({c.name for c in containers}) == len(containers)
    for c in containers:
        keys = []
        for e in source.entries(c.name):
            assert isinstance(e, Entry)
            assert e.container == c.name
            assert e.folders and all(isinstance(f, str) and f for f in e.folders)
            assert set(e.flags) <= set(FLAG_NAMES)
            assert json.loads(json.dumps(dict(e.locator))) == dict(e.locator)
            assert set(source.read_flags(e.locator)) <= set(FLAG_NAMES)
            keys.append(e.key)
        assert len(keys) == len(set(keys)), "keys are unique within a container"


def test_stamps_unchanged_until_a_message_is_added(pm, layout: Layout, mailbox: Path) -> None:
    source = open_source(pm, mailbox, None)
    first = stamps(source)
    keys_first = {(e.container, e.key) for e in scan(source)}
    assert stamps(source) == first
    assert {(e.container, e.key) for e in scan(source)} == keys_first, "keys are stable across scans"
    time.sleep(0.05)  # past the filesystem clock's granularity
    new = message(99)
    layout.add(mailbox, "Sent", new)
    second = stamps(source)
    assert second != first
    changed = {name for name in second if second[name] != first.get(name)}
    assert changed, "the container that received a message has a new stamp"
    assert listing(source) == expected([*MESSAGES, ("Sent", new)])


def test_fresh_containers_are_unstable_old_ones_stable(pm, layout: Layout, mailbox: Path) -> None:
    source = open_source(pm, mailbox, None)
    assert not any(c.stable for c in source.containers())
    past = time.time() - 3600
    for p in [mailbox, *mailbox.rglob("*")]:
        os.utime(p, (past, past), follow_symlinks=False)
    assert all(c.stable for c in source.containers())


def test_folder_vanishing_between_listing_and_scan(pm, layout: Layout, mailbox: Path) -> None:
    source = open_source(pm, mailbox, None)
    containers = list(source.containers())
    layout.remove_folder(mailbox, "Work/Project")
    remaining = Counter()
    for c in containers:
        for e in source.entries(c.name):  # no error for the vanished ones
            remaining[(e.folders, source.read_bytes(e.locator))] += 1
    assert remaining == expected([m for m in MESSAGES if m[0] != "Work/Project"])


def test_folder_vanishing_while_containers_are_listed(pm, layout: Layout, mailbox: Path) -> None:
    source = open_source(pm, mailbox, None)
    it = source.containers()
    first = next(it)
    for folder in ("Sent", "Work/Project"):
        layout.remove_folder(mailbox, folder)
    rest = list(it)
    names = [first.name, *(c.name for c in rest)]
    assert len(names) == len(set(names))
    for name in names:
        list(source.entries(name))


@pytest.mark.parametrize("layout", ["maildir", "eml"], indirect=True)  # one message per file
def test_files_vanishing_mid_scan_are_skipped(pm, layout: Layout, mailbox: Path) -> None:
    files = layout.message_files(mailbox)
    assert files
    source = open_source(pm, mailbox, None)
    seen = []
    removed = False
    for c in source.containers():
        for e in source.entries(c.name):
            seen.append(e)
            if not removed:
                for f in files:
                    f.unlink()
                removed = True
    assert len(seen) < len(MESSAGES)
    for e in seen:
        with pytest.raises(SourceNotFound):
            source.read_bytes(e.locator)


def test_missing_location(pm, layout: Layout, tmp_path: Path) -> None:
    assert pm.hook.mailindex_open_source(location=str(tmp_path / "nope"), source_type=None, options={}) is None
    source = open_source(pm, tmp_path / "nope", layout.type)
    with pytest.raises(SourceNotFound):
        list(source.containers())


FOLDER_PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- ",
                      min_size=1, max_size=8).map(str.strip).filter(
    lambda s: s and s.lower() not in {"cur", "new", "tmp", "inbox"} and not s.startswith("-"))
FOLDERS = st.one_of(st.just("INBOX"), st.lists(FOLDER_PART, min_size=1, max_size=2).map("/".join))
BODY = st.lists(st.one_of(st.sampled_from(TRICKY_LINES),
                          st.binary(max_size=30).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" "))),
                max_size=6)
MAILBOXES = st.lists(st.tuples(FOLDERS, BODY, st.sampled_from([b"\n", b"\r\n"])), min_size=1, max_size=6)


@pytest.mark.parametrize("source_type", sorted(LAYOUTS))
@settings(max_examples=examples(0.6), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=MAILBOXES)
def test_round_trip(pm, source_type: str, spec) -> None:
    if source_type not in source_types():
        pytest.skip(f"{source_type} is not registered")
    messages = [(folder, message(i, body, eol)) for i, (folder, body, eol) in enumerate(spec)]
    with tempfile.TemporaryDirectory() as tmp:
        root = LAYOUTS[source_type]().write(Path(tmp) / "mail", messages)
        source = open_source(pm, root, None)
        assert source.type == source_type
        assert listing(source) == expected(messages)
