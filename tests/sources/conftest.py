"""Writers that lay out a small mailbox of each registered source type, and the corpora path.

Each `Layout` writes a list of (folder, message bytes) into a fresh directory
the way a mail program would, and knows where a folder or a message file lives
so tests can make them vanish. Messages must end with a line break (an mbox
cannot keep a message without one apart from the separator line).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailindex.plugins import plugin_manager

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
ENVELOPE = b"From sender@example.org Thu Jan  1 00:00:00 2004\n"


@pytest.fixture
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA} (they live in ../shared/corpora beside the project)")
    return CORPORA


@pytest.fixture(scope="session")
def pm():
    return plugin_manager(entry_points=False)


def source_types() -> list[str]:
    """Every source type the registered plugins report (no entry points)."""
    types = plugin_manager(entry_points=False).hook.mailindex_source_types()
    return sorted({t for group in types for t in group})


def mboxrd_escape(msg: bytes) -> bytes:
    return re.sub(rb"(?m)^(>*From )", rb">\1", msg)


def mboxo_escape(msg: bytes) -> bytes:
    return re.sub(rb"(?m)^(From )", rb">\1", msg)


def mbox_bytes(messages: list[bytes], escape=mboxrd_escape, envelope: bytes = ENVELOPE) -> bytes:
    """An mbox as a careful writer makes it: From_ line, escaped message, blank separator line."""
    return b"".join(envelope + escape(m) + b"\n" for m in messages)


class Layout:
    """How one source type stores folders and messages on disk."""

    type: str

    def __init__(self) -> None:
        self.counter = 0

    def write(self, root: Path, messages: list[tuple[str, bytes]]) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for folder, msg in messages:
            self.add(root, folder, msg)
        return root

    def add(self, root: Path, folder: str, msg: bytes) -> None:
        raise NotImplementedError

    def folder_path(self, root: Path, folder: str) -> Path:
        raise NotImplementedError

    def message_files(self, root: Path) -> list[Path]:
        """One file per message, for types that have them ([] for mbox)."""
        return []

    def remove_folder(self, root: Path, folder: str) -> None:
        path = self.folder_path(root, folder)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


class MaildirLayout(Layout):
    """Maildir++: INBOX at the root, "Work/Project" in ".Work.Project"; every other message in new/."""

    type = "maildir"

    def folder_path(self, root: Path, folder: str) -> Path:
        return root if folder == "INBOX" else root / ("." + folder.replace("/", "."))

    def add(self, root: Path, folder: str, msg: bytes) -> None:
        d = self.folder_path(root, folder)
        for sub in ("cur", "new", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self.counter += 1
        unique = f"{1_700_000_000 + self.counter}.M{self.counter}P{os.getpid()}.test"
        if self.counter % 2:
            (d / "cur" / f"{unique}:2,S").write_bytes(msg)
        else:
            (d / "new" / unique).write_bytes(msg)

    def message_files(self, root: Path) -> list[Path]:
        return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new"))

    def remove_folder(self, root: Path, folder: str) -> None:
        assert folder != "INBOX"
        shutil.rmtree(self.folder_path(root, folder))


class MboxLayout(Layout):
    """A tree of mboxrd files: INBOX in "Inbox", "a/b" in "a/b.mbox"."""

    type = "mbox"

    def folder_path(self, root: Path, folder: str) -> Path:
        return root / "Inbox" if folder == "INBOX" else root / (folder + ".mbox")

    def add(self, root: Path, folder: str, msg: bytes) -> None:
        path = self.folder_path(root, folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.write(mbox_bytes([msg]))


class EmlLayout(Layout):
    """One file per message: INBOX at the root, "a/b" in the directory a/b."""

    type = "eml"

    def folder_path(self, root: Path, folder: str) -> Path:
        return root if folder == "INBOX" else root.joinpath(*folder.split("/"))

    def add(self, root: Path, folder: str, msg: bytes) -> None:
        d = self.folder_path(root, folder)
        d.mkdir(parents=True, exist_ok=True)
        self.counter += 1
        (d / f"{self.counter}.eml").write_bytes(msg)

    def message_files(self, root: Path) -> list[Path]:
        return sorted(p for p in root.rglob("*.eml") if p.is_file())

    def remove_folder(self, root: Path, folder: str) -> None:
        assert folder != "INBOX"
        shutil.rmtree(self.folder_path(root, folder))


LAYOUTS: dict[str, type[Layout]] = {cls.type: cls for cls in (MaildirLayout, MboxLayout, EmlLayout)}


@pytest.fixture(params=source_types())
def layout(request) -> Layout:
    """A writer for every registered source type (a plugin type without a writer is skipped)."""
    cls = LAYOUTS.get(request.param)
    if cls is None:
        pytest.skip(f"no test writer for source type {request.param!r}")
    return cls()


def scan(source) -> Iterator:
    for c in source.containers():
        yield from source.entries(c.name)
