"""SIGKILL a sync at every registered kill point, for each backend, with one worker and with two.

A child process syncs with MAILINDEX_KILL_AT naming a point and must die there by SIGKILL (a
point never reached fails the test). The parent then syncs again and compares the index with
an independent walk of the mail, made with the standard library only (os.walk, mailbox, email,
imaplib): every message once, in exactly the folders the disk shows, Tantivy and SQLite agreeing,
no intent left, and the source not written to by a sync.

The helpers here (mail builders, walks, the index check) serve tests/test_crash_live.py too.
"""

from __future__ import annotations

import email.parser
import imaplib
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailindex import MailIndex
from mailindex.killpoints import ENV, POINTS
from mailindex.plugins import plugin_manager

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "secret"
KINDS = ("maildir", "mbox", "eml", "imap")


# -- mail, written and read back with the standard library ------------------------------------
def message(tag: str, n: int) -> bytes:
    """A small message with a unique Message-ID and a body line an mbox must quote."""
    return (f"From: sender{n}@example.com\nTo: me@example.com\nSubject: {tag} {n}\n"
            f"Date: Tue, 01 Sep 2020 12:{n % 60:02d}:00 +0000\nMessage-ID: <{tag}-{n}@crash.test>\n"
            f"\nbody of {tag} {n}\nFrom the start of a line\n").encode()


_HEADERS = email.parser.BytesHeaderParser()
_QUOTED_FROM = re.compile(rb"(?m)^>+(?=From )")
_STATUS_LINE = re.compile(rb"(?im)^(status|x-status):[^\n]*\n")


def message_id(data: bytes) -> str | None:
    """The Message-ID header, as the stdlib parses it."""
    value = _HEADERS.parsebytes(data)["Message-ID"]
    return str(value).strip() if value is not None else None


def normalized(data: bytes) -> bytes:
    """Bytes as compared across stores: LF line ends, no mbox From-quoting, no Status/X-Status fields
    (an mbox keeps flags there), no trailing blank lines."""
    data = _QUOTED_FROM.sub(b"", data.replace(b"\r\n", b"\n"))
    head, sep, body = data.partition(b"\n\n")
    return (_STATUS_LINE.sub(b"", head + b"\n").rstrip(b"\n") + sep + body).rstrip(b"\n")


@dataclass(frozen=True)
class Copy:
    """One stored copy of a message: its folder, where it is (file name, mbox From_ line, IMAP UID),
    its exact bytes and flags."""

    folder: str
    name: str
    data: bytes
    flags: frozenset[str] = frozenset()

    @property
    def mid(self) -> str | None:
        return message_id(self.data)


_MAILDIR_LETTERS = {"S": "seen", "R": "answered", "F": "flagged", "T": "deleted", "D": "draft"}
_MBOX_LETTERS = {"R": "seen", "A": "answered", "F": "flagged", "D": "deleted", "T": "draft"}
_IMAP_FLAGS = {b"\\seen": "seen", b"\\answered": "answered", b"\\flagged": "flagged", b"\\deleted": "deleted",
               b"\\draft": "draft"}


class Backend:
    """One kind of source in a temporary directory: build it, change it behind the index, walk it."""

    kind = ""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.location: str = str(tmp / self.kind)
        self.url = ""  # set for a remote source, whose password the child must be given

    def build(self, folders: dict[str, list[tuple[bytes, frozenset[str]]]]) -> None:
        for folder, items in folders.items():
            for data, flags in items:
                self.add(folder, data, flags)

    def add(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> None:
        raise NotImplementedError

    def remove(self, folder: str, mid: str) -> None:
        raise NotImplementedError

    def walk(self) -> list[Copy]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what building and changing the mail held open."""

    def open_index(self, index: Path) -> MailIndex:
        mx = MailIndex(index, pm=plugin_manager(entry_points=bool(self.url)))
        if self.url:
            mx.passwords[self.url] = PASSWORD
        return mx

    def add_source(self, mx: MailIndex) -> None:
        mx.add_source("src", self.location, self.kind, sync_all_folders=1, sync_flags=1)

    def leftovers(self) -> set[str]:
        """Files a killed writer may leave beside the mail (temporary files, dot-locks), by path."""
        root = Path(self.location)
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and (p.parent.name == "tmp" or p.name.startswith(".") or p.name.endswith(".lock"))}


class MaildirBackend(Backend):
    """Maildir++: INBOX at the root, folder F in .F; flags in the :2, info of file names."""

    kind = "maildir"
    serial = 0

    def _dir(self, folder: str) -> Path:
        root = Path(self.location)
        d = root if folder == "INBOX" else root / ("." + folder.replace("/", "."))
        for sub in ("cur", "new", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
            (root / sub).mkdir(parents=True, exist_ok=True)
        return d

    def add(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> None:
        MaildirBackend.serial += 1
        letters = "".join(sorted(k for k, v in _MAILDIR_LETTERS.items() if v in flags))
        (self._dir(folder) / "cur" / f"1600000000.M{MaildirBackend.serial}P1.crash:2,{letters}").write_bytes(data)

    def remove(self, folder: str, mid: str) -> None:
        d = self._dir(folder)
        for sub in ("cur", "new"):
            for p in (d / sub).iterdir():
                if message_id(p.read_bytes()) == mid:
                    p.unlink()

    def walk(self) -> list[Copy]:
        root = Path(self.location)
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            d = Path(dirpath)
            if d.name not in ("cur", "new"):
                continue
            rel = d.parent.relative_to(root).as_posix()
            folder = "INBOX" if rel == "." else rel.lstrip(".").replace(".", "/")
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                info = name.rpartition(":2,")[2] if ":2," in name else ""
                flags = frozenset(_MAILDIR_LETTERS[c] for c in info if c in _MAILDIR_LETTERS and d.name == "cur")
                out.append(Copy(folder, f"{d.name}/{name.partition(':2,')[0]}", (d / name).read_bytes(), flags))
        return out


class EmlBackend(Backend):
    """A tree of .eml files: INBOX at the root, folder F in directory F."""

    kind = "eml"
    serial = 0

    def add(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> None:
        EmlBackend.serial += 1
        d = Path(self.location) if folder == "INBOX" else Path(self.location) / folder
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{EmlBackend.serial:04d}.eml").write_bytes(data)

    def remove(self, folder: str, mid: str) -> None:
        for c in self.walk():
            if c.folder == folder and c.mid == mid:
                (Path(self.location) / c.name).unlink()

    def walk(self) -> list[Copy]:
        root = Path(self.location)
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
            rel = Path(dirpath).relative_to(root).as_posix()
            for name in sorted(filenames):
                if not name.startswith("."):
                    out.append(Copy("INBOX" if rel == "." else rel, f"{rel}/{name}" if rel != "." else name,
                                    (Path(dirpath) / name).read_bytes()))
        return out


class MboxBackend(Backend):
    """A directory of mbox files, one per folder (named as the folder), written mboxrd-quoted."""

    kind = "mbox"

    def _path(self, folder: str) -> Path:
        Path(self.location).mkdir(parents=True, exist_ok=True)
        return Path(self.location) / folder

    @staticmethod
    def _stored(data: bytes, flags: frozenset[str]) -> bytes:
        status = b"Status: RO\n" if "seen" in flags else b""
        x = "".join(k for k, v in _MBOX_LETTERS.items() if v in flags and k != "R").encode()
        head, _, body = data.partition(b"\n\n")
        data = head + b"\n" + status + (b"X-Status: " + x + b"\n" if x else b"") + b"\n" + body
        return b"From sender@example.com Tue Sep  1 12:00:00 2020\n" + re.sub(rb"(?m)^(>*From )", rb">\1", data) + b"\n"

    def add(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> None:
        with open(self._path(folder), "ab") as f:
            f.write(self._stored(data, flags))

    def remove(self, folder: str, mid: str) -> None:
        kept = [c for c in self.walk() if c.folder == folder and c.mid != mid]
        self._path(folder).write_bytes(b"".join(b"From " + c.name.encode() + b"\n" + c.data + b"\n" for c in kept))

    def files(self) -> list[Path]:
        return sorted(p for p in Path(self.location).iterdir()
                      if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".lock"))

    def walk(self) -> list[Copy]:
        out = []
        for path in self.files():
            box = mailbox.mbox(path, create=False)
            try:
                for key in box.iterkeys():
                    m = box.get_message(key)
                    flags = frozenset(_MBOX_LETTERS[c] for c in m.get_flags() if c in _MBOX_LETTERS)
                    out.append(Copy(path.name, m.get_from(), box.get_bytes(key), flags))
            finally:
                box.close()
        return out

    def check_whole(self) -> None:
        """No bytes of any mbox file outside its messages: each file is its From_ lines, messages and
        blank separators, as the stdlib parses them (a message cut in half or foreign bytes fail here)."""
        for path in self.files():
            copies = [c for c in self.walk() if c.folder == path.name]
            rebuilt = b"".join(b"From " + c.name.encode() + b"\n" + c.data + b"\n" for c in copies)
            assert path.read_bytes() == rebuilt, f"{path.name} holds bytes outside its messages"


class ImapBackend(Backend):
    """alice's mailbox on the test Dovecot, reached with the stdlib's imaplib."""

    kind = "imap"

    def __init__(self, tmp: Path, server: Any) -> None:
        super().__init__(tmp)
        self.server = server
        self.location = self.url = f"imap://alice@127.0.0.1:{server.port}"
        self._session: imaplib.IMAP4 | None = None
        self._made: set[str] = set()

    def add_source(self, mx: MailIndex) -> None:
        mx.add_source("src", self.url, password=PASSWORD, tls="none", sync_all_folders=1, sync_flags=1)

    def _client(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.server.port)
        c.login("alice", PASSWORD)
        return c

    def _writer(self) -> imaplib.IMAP4:
        """One session for the changes a test makes behind the index (a login per change is slow)."""
        if self._session is None:
            self._session = self._client()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.logout()
            self._session = None

    def add(self, folder: str, data: bytes, flags: frozenset[str] = frozenset()) -> None:
        c = self._writer()
        if folder not in self._made:
            c.create(folder)  # NO if it exists
            self._made.add(folder)
        wanted = " ".join(f.decode().title() for f, name in _IMAP_FLAGS.items() if name in flags)
        typ, _ = c.append(folder, f"({wanted})", None, data.replace(b"\n", b"\r\n"))
        assert typ == "OK"

    def remove(self, folder: str, mid: str) -> None:
        c = self._writer()
        c.select(folder)
        for copy in self._fetch(c, folder):
            if copy.mid == mid:
                c.uid("STORE", copy.name, "+FLAGS", "(\\Deleted)")
        c.expunge()

    @staticmethod
    def _fetch(c: imaplib.IMAP4, folder: str) -> list[Copy]:
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        out = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            uid = re.search(rb"UID (\d+)", head)
            flags = re.search(rb"FLAGS \(([^)]*)\)", head)
            assert uid is not None and flags is not None, head
            out.append(Copy(folder, uid[1].decode(), body,
                            frozenset(_IMAP_FLAGS[f.lower()] for f in flags[1].split() if f.lower() in _IMAP_FLAGS)))
        return out

    def walk(self) -> list[Copy]:
        c = self._client()
        try:
            _, rows = c.list()
            names = []
            for row in rows:
                m = re.match(rb'\((?P<attrs>[^)]*)\) (?:"[^"]*"|NIL) "?(?P<name>[^"]*)"?$', row)
                assert m is not None, row
                if b"\\noselect" not in m["attrs"].lower():
                    names.append(m["name"].decode())
            out = []
            for name in sorted(names):
                typ, count = c.select(name, readonly=True)
                assert typ == "OK", (name, count)
                if int(count[0]):
                    out.extend(self._fetch(c, name))
            return out
        finally:
            c.logout()

    def leftovers(self) -> set[str]:
        return set()


def backend(request: pytest.FixtureRequest, kind: str, tmp: Path) -> Backend:
    """A Backend of `kind`; the IMAP one gets its own Dovecot (the `dovecot` fixture)."""
    if kind == "imap":
        pytest.importorskip("mailindex_imap", reason="the IMAP plugin is not installed (make test installs it)")
        return ImapBackend(tmp, request.getfixturevalue("dovecot"))
    return {"maildir": MaildirBackend, "mbox": MboxBackend, "eml": EmlBackend}[kind](tmp)


# -- children that die at a kill point --------------------------------------------------------
_TOKEN = "MAILINDEX_CRASH_TEST_CHILD"  # marks the child and every process it starts (workers, fork server)


def _marked(token: str) -> list[int]:
    """Pids of live processes whose environment carries this token."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"{_TOKEN}={token}".encode() in f.read().split(b"\0"):
                    with open(f"/proc/{pid}/stat", "rb") as st:
                        if st.read().rpartition(b")")[2].split()[0] != b"Z":
                            found.append(int(pid))
        except OSError:
            continue
    return found


def kill_child(code: str, args: Sequence[str], kill: str, log: Path) -> None:
    """Run `python -c code args` with MAILINDEX_KILL_AT=kill; it must end by SIGKILL, and leave no
    process of its own (a worker, the fork server) behind."""
    token = f"{os.getpid()}-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "MAILINDEX_INJECT_FAULT")}
    env.update({ENV: kill, _TOKEN: token})
    # Output to a file, not a pipe: processes the child started may hold it open a moment longer.
    with open(log, "wb") as out:
        child = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            rc = child.wait(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    deadline = time.monotonic() + 10
    while (left := _marked(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert rc == -signal.SIGKILL, f"{kill}: the child was not killed there (exit {rc}):\n{log.read_text()[-3000:]}"
    assert not left, f"{kill}: processes of the killed child outlived it: {left}"


# -- what the index must say ------------------------------------------------------------------
def by_message(copies: list[Copy]) -> dict[str, list[str]]:
    """{Message-ID: sorted folders} of the copies on disk."""
    out: dict[str, set[str]] = {}
    for c in copies:
        assert c.mid is not None, f"a stored message without its Message-ID (foreign bytes?): {c.data[:200]!r}"
        out.setdefault(c.mid, set()).add(c.folder)
    return {mid: sorted(folders) for mid, folders in out.items()}


def check_index(mx: MailIndex, copies: list[Copy]) -> None:
    """The index holds exactly the messages on disk, each once and in the folders it is in there."""
    listed = list(mx.messages.iter())
    ids = Counter(m["email_message_id"] for m in listed)
    assert not [mid for mid, n in ids.items() if n > 1], f"indexed more than once: {ids.most_common(3)}"
    disk = by_message(copies)
    assert {m["email_message_id"]: sorted(m["folders"]) for m in listed} == disk
    for folder in sorted({f for fs in disk.values() for f in fs} | {"INBOX", "Archive"}):
        want = {mid for mid, fs in disk.items() if folder in fs}
        assert {m["email_message_id"] for m in mx.messages.iter(folder=folder)} == want, folder  # Tantivy's view
        assert mx.messages.count(folder=folder) == len(want), folder
    assert mx.messages.count() == len(listed) == mx.store.count_messages()
    assert mx.store.intent() == []


# -- the sync scenario ------------------------------------------------------------------------
SYNC_CHILD = r"""
import sys
import mailindex.sync as sync
sync.BATCH, sync.PARALLEL_MIN, sync.CHUNK = 4, 4, 2  # several batches, and a pool even for a few messages
from mailindex import MailIndex
from mailindex.plugins import plugin_manager
index, url, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
mx = MailIndex(index, pm=plugin_manager(entry_points=bool(url)))
if url:
    mx.passwords[url] = "secret"
mx.sync("src", workers=workers)
"""

PLAIN = ("sync.after-listing", "sync.after-intent", "sync.before-commit", "sync.after-commit", "sync.after-record",
         "sync.removal-after-intent", "sync.removal-after-commit", "sync.after-stamps",
         "sync.rebuild-after-intent", "sync.rebuild-after-commit")
# (workers, the kills of successive children): a repair interrupted by a second kill, the pool's points
# (a worker's death is seen by the main process, killed then at sync.pool-broken).
EXTRA: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, ("sync.after-commit", "sync.repair-after-delete")),
    (1, ("sync.after-commit", "sync.rebuild-after-intent")),  # the rebuild inside the repair
    (2, ("sync.pool-running",)),
    (2, ("prepare.worker-window,sync.pool-broken",)),
    (2, ("sync.after-commit",)),
    (2, ("sync.after-stamps",)),
)


def _sync_cases() -> Iterator[Any]:
    # The apply steps run in the main process whatever the number of workers: each is killed with one
    # worker, and a batch's commit and the final stamps with two as well.
    for kind in KINDS:
        for point in PLAIN:
            yield pytest.param(kind, 1, (point,), id=f"{kind}-w1-{point}")
        for workers, kills in EXTRA:
            yield pytest.param(kind, workers, kills, id=f"{kind}-w{workers}-{'-then-'.join(kills)}")


SYNC_CASES = list(_sync_cases())


def _scenario(b: Backend, tmp: Path) -> Path:
    """The index of `b`, synced once; then the mail is changed behind it so that the next sync adds
    (in several batches), removes, moves, and takes one of a message's two places away (a rebuild)."""
    inbox = [message("inbox", i) for i in range(6)]
    archive = [message("archive", i) for i in range(3)]
    both = message("both", 0)
    b.build({"INBOX": [(m, frozenset()) for m in [*inbox, both]],
             "Archive": [(m, frozenset()) for m in [*archive, both]]})
    index = tmp / "idx"
    with b.open_index(index) as mx:
        b.add_source(mx)
        mx.sync("src", workers=1)
        check_index(mx, b.walk())
    for data in inbox[:2]:  # removals: these messages leave the index
        b.remove("INBOX", message_id(data) or "")
    b.remove("Archive", message_id(both) or "")  # one of two places gone: its document is rebuilt
    b.remove("Archive", message_id(archive[0]) or "")  # a move: the same message, elsewhere
    b.add("INBOX", archive[0])
    for i in range(6):
        b.add("INBOX", message("new", i))
    b.close()
    return index


@pytest.mark.parametrize("kind,workers,kills", SYNC_CASES)
def test_sync_killed_at_a_point(request: pytest.FixtureRequest, tmp_path: Path, kind: str, workers: int,
                                kills: tuple[str, ...]) -> None:
    b = backend(request, kind, tmp_path)
    index = _scenario(b, tmp_path)
    before = b.walk()
    for i, kill in enumerate(kills):
        kill_child(SYNC_CHILD, [str(index), b.url, str(workers)], kill, tmp_path / f"child{i}.log")
    assert b.walk() == before, "a sync changed its source"
    with b.open_index(index) as mx:
        mx.sync("src", workers=1)
        check_index(mx, before)
        again = mx.sync("src", workers=1)
        assert (again.added, again.removed) == (0, 0)


def test_every_kill_point_is_exercised() -> None:
    """Each registered point is named by a crash test's parametrization (and so must be reached)."""
    from tests.test_crash_live import LIVE_CASES

    named = {point.partition(":")[0] for case in SYNC_CASES for kill in case.values[2] for point in kill.split(",")}
    named |= {case.values[2].partition(":")[0] for case in LIVE_CASES}
    assert set(POINTS) - named == set(), "kill points no crash test reaches"
    assert named <= set(POINTS)


def test_a_misspelt_kill_point_stops_the_process_at_import() -> None:
    """A name that is no registered point fails loudly instead of never killing (a test passing by mistake),
    as soon as anything with kill points is imported (a sync, a live operation, a backend)."""
    env = {**os.environ, ENV: "sync.after-comit"}
    run = subprocess.run([sys.executable, "-c", "import mailindex.sync"], cwd=ROOT, env=env, capture_output=True,
                         timeout=60)
    assert run.returncode == 1 and b"no kill point named 'sync.after-comit'" in run.stderr
