"""Only mail is mail: a file becomes a message only if it opens with a header block naming a mail field
(or an mbox From_ line); a tree of anything else is refused, through every door (index, sources add,
redeem); files named or placed as mail whose bytes are not are quarantined, never indexed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailindex import MailIndex, SourceFormatError
from mailindex.cli import main
from mailindex.plugins import plugin_manager
from mailindex.sources import _fs
from mailindex.sources.base import SKIP_NOT_MAIL
from tests import mail
from tests.strategies import hostile_value, specs

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"

# What a system directory holds: `key: value` and `key=value` files, tables, scripts, binaries.
NOT_MAIL = {
    "passwd": b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
    "shadow": b"root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    "gshadow": b"root:*::\nshadow:*::\n",
    "group": b"root:x:0:\nshadow:x:42:\n",
    "hosts": b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n",
    "os-release": b'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "status": b"Package: bash\nStatus: install ok installed\nVersion: 5.2-2\nDepends: base-files\n\n",
    "config.yaml": b"name: server\nversion: 3\nlisten: 127.0.0.1:8080\nusers:\n  - ann\n",
    "headers.txt": b"Host: example.com\nUser-Agent: curl/8\nAccept: */*\n\n",
    "long-table": b"".join(b"user%d: x:%d:%d::/home/u:/bin/sh\n" % (i, i, i) for i in range(3000)),  # > 64 KB
    "script.sh": b"#!/bin/sh\nFrom=me\nexec true\n",
    "blob.bin": bytes(range(256)) * 8,
}
SECRET = b"$6$saltsalt$hashhashhash"


def _mx(tmp_path: Path, **kw: object) -> MailIndex:
    return MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False), **kw)  # type: ignore[arg-type]


def _etc(root: Path, files: dict[str, bytes] = NOT_MAIL) -> Path:
    root.mkdir(parents=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def _sources(mx: MailIndex) -> list[str]:
    return [s["label"] for s in mx.sources()]


def test_the_files_of_a_system_directory_are_not_mail() -> None:
    for name, data in NOT_MAIL.items():
        assert not _fs.looks_like_message(data), name
    for name in ("passwd", "shadow", "group", "gshadow", "hosts"):  # the real ones, where readable
        path = Path("/etc") / name
        if os.access(path, os.R_OK):
            assert not _fs.looks_like_message_file(path), path


def test_mail_shapes_are_mail() -> None:
    shapes = [
        mail.message("plain"),
        b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nFrom: a@example.com\nSubject: mbox-style\n\nbody\n",
        b"\xef\xbb\xbf\r\n\r\nReceived: from x by y; Mon, 1 Jan 2001 00:00:00 +0000\r\nX: y\r\n\r\nbody",
        # a header block that names no mail field within the first kilobyte, nor for a while after
        b"".join(b"X-Trace-%d: %s\n" % (i, b"a" * 60) for i in range(200)) + b"Subject: late\n\nbody",
        b"X-Folded: first\n  continued\nDate: Mon, 1 Jan 2001 00:00:00 +0000\n\n",
    ]
    for data in shapes:
        assert _fs.looks_like_message(data), data[:60]


def test_a_tree_of_system_files_and_two_messages_records_two(tmp_path: Path) -> None:
    root = _etc(tmp_path / "etc")
    msgs = [mail.message("first real one"), mail.message("second real one")]
    (root / "mail-1").write_bytes(msgs[0])
    (root / "sub").mkdir()
    (root / "sub" / "saved").write_bytes(msgs[1])
    with _mx(tmp_path) as mx:
        report = mx.index(root, "etc", type="eml")
        assert (report.added, report.failed) == (2, 0)
        assert report.skipped == {SKIP_NOT_MAIL: len(NOT_MAIL)}
        listed = list(mx.messages.iter())
        assert sorted(m["subject"] for m in listed) == ["first real one", "second real one"]
        assert sorted(mx.messages.source(m["message_id"]) for m in listed) == sorted(msgs)
        again = mx.sync()
        assert again.skipped == {SKIP_NOT_MAIL: len(NOT_MAIL)} and again.added == 0


@pytest.mark.parametrize("type", [None, "eml", "mbox", "maildir"])
def test_a_tree_of_no_mail_is_refused_and_nothing_is_added(tmp_path: Path, type: str | None) -> None:
    root = _etc(tmp_path / "etc")
    if type == "maildir":
        for sub in ("cur", "new", "tmp"):
            (root / sub).mkdir()
        (root / "cur" / "1600000000.M1P1.host:2,S").write_bytes(NOT_MAIL["shadow"])
    with _mx(tmp_path) as mx:
        with pytest.raises(SourceFormatError) as raised:
            mx.add_source("etc", root, type=type)
        assert str(root) in str(raised.value)
        assert _sources(mx) == []


def test_the_command_line_refuses_it_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _etc(tmp_path / "etc")
    idx = tmp_path / "idx"
    for argv in (["index", str(root)], ["index", str(root), "--type", "eml"], ["sources", "add", str(root)]):
        assert main(["--index", str(idx), *argv]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("mailindex: ") and str(root) in err, err
    assert main(["--index", str(idx), "search", "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_redeem_refuses_a_tree_of_no_mail_and_the_token_stays_usable(tmp_path: Path) -> None:
    root = _etc(tmp_path / "etc")
    with _mx(tmp_path) as mx:
        token = mx.connect_tokens.create(callback_url="https://example.com/cb", email="ann@example.com")["token"]
        with pytest.raises(SourceFormatError):
            mx.connect_tokens.redeem(token, str(root), type="eml")
        assert mx.connect_tokens.get(token)["used"] == 0
        assert mx.accounts.list() == []
        good = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("welcome")]})
        assert mx.connect_tokens.redeem(token, str(good))["sync"]["added"] == 1


def test_an_empty_mailbox_is_a_place_to_copy_mail_to(tmp_path: Path) -> None:
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / ".dovecot.index").write_bytes(b"\x00\x01")  # store metadata only
    with _mx(tmp_path) as mx:
        mx.add_source("md", mail.maildir(tmp_path / "md", {}))
        mx.add_source("dir", empty_dir, type="eml")
        assert _sources(mx) == ["md", "dir"]


def test_a_file_named_or_placed_as_mail_that_is_not_is_quarantined_unindexed(tmp_path: Path) -> None:
    md = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("real"), NOT_MAIL["shadow"]]})
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "1.").write_bytes(NOT_MAIL["passwd"])  # an Enron/MH name
    (tree / "copied.eml").write_bytes(NOT_MAIL["shadow"])
    (tree / "empty.eml").write_bytes(b"")
    (tree / "2.").write_bytes(mail.message("also real"))
    with _mx(tmp_path) as mx:
        first = mx.index(md, "md")
        second = mx.index(tree, "tree")
        assert (first.added, first.failed, second.added, second.failed) == (1, 1, 1, 3)
        assert sorted(m["subject"] for m in mx.messages.iter()) == ["also real", "real"]
        held = {Path(q["key"]).name: q for q in mx.quarantine()}
        assert set(held) >= {"1.", "copied.eml", "empty.eml"} and len(held) == 4
        assert all(not q["indexed"] and q["error"].startswith(SKIP_NOT_MAIL) for q in held.values())
        assert held["empty.eml"]["error"] == f"{SKIP_NOT_MAIL}: empty"
        assert mx.sync().added == 0 and len(mx.quarantine()) == 4
    for path in [*tmp_path.joinpath("idx").rglob("*")]:
        if path.is_file():
            assert SECRET not in path.read_bytes(), path


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 50).flatmap(specs))
def test_every_generated_message_is_mail(spec: object) -> None:
    assert _fs.looks_like_message(spec.to_bytes(0))  # type: ignore[attr-defined]


@settings(max_examples=150)
@given(st.lists(hostile_value(fold=True), min_size=1, max_size=4), st.sampled_from(["From", "Subject", "Date"]))
def test_a_message_with_hostile_headers_before_its_mail_field_is_mail(values: list[bytes], field: str) -> None:
    head = b"".join(b"X-Hostile-%d: %s\r\n" % (i, v) for i, v in enumerate(values))
    assert _fs.looks_like_message(head + field.encode() + b": x\r\n\r\nbody")


_NAME = st.text("abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=20).filter(
    lambda name: name.encode() not in _fs.MAIL_FIELDS)


@settings(max_examples=200)
@given(st.lists(st.tuples(_NAME, st.binary(max_size=80).filter(lambda b: b"\n" not in b)), min_size=1,
                max_size=40))
def test_a_header_block_naming_no_mail_field_is_not_mail(lines: list[tuple[str, bytes]]) -> None:
    data = b"".join(b"%s: %s\n" % (k.encode(), v) for k, v in lines)
    assert not _fs.looks_like_message(data + b"\nFrom: after the blank line\n")


@pytest.mark.skipif(not CORPORA.is_dir(), reason=f"the shared mail corpora are not at {CORPORA}")
def test_every_message_file_of_the_shared_corpora_is_mail() -> None:
    """The real mail beside us (4,500 files of eight projects' test suites and the Enron sample)."""
    skip = (".md", ".txt", ".json", ".py", ".pst", ".msg", ".gz", ".tar", ".mbox", ".bz2", ".xz", ".zip", ".c",
            ".h", ".rs", ".toml", ".yml")
    checked, refused = 0, []
    for d, _dirs, files in os.walk(CORPORA):
        for name in files:
            if _fs.is_ignored_file(name) or name.lower().endswith(skip):
                continue
            path = Path(d) / name
            if path.read_bytes().startswith(_fs.OLE2_MAGIC):
                continue  # an Outlook .msg without its suffix: not RFC 822, rightly
            checked += 1
            if not _fs.looks_like_message_file(path):
                refused.append(str(path.relative_to(CORPORA)))
    assert checked > 1000 and refused == []
