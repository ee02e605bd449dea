"""Hostile and broken mail: recorded with its error, the rest ingests, memory stays bounded."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailindex import MailIndex, QueryError
from mailindex.plugins import plugin_manager
from mailindex.sources.base import SKIP_NOT_MAIL
from tests import mail

ROOT = Path(__file__).resolve().parents[1]




def _big(megabytes: int) -> bytes:
    chunk = base64.b64encode(bytes(range(57))) + b"\r\n"  # one full 76-character line
    payload = chunk * (megabytes * 2**20 // len(chunk))
    return (b"From: big@example.com\r\nSubject: fifty megabytes\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b"--z\r\nContent-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=big.bin\r\n\r\n" + payload + b"--z--\r\n")


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    tree = tmp_path / "eml" / "inbox"
    tree.mkdir(parents=True)
    for i in range(5):
        (tree / f"good{i}.eml").write_bytes(mail.message(f"good {i}"))
    (tree / "empty.eml").write_bytes(b"")
    (tree / "garbage.eml").write_bytes(random.Random(7).randbytes(200_000))
    (tree / "bomb.eml").write_bytes(mail.part_bomb(10_000))
    (tree / "nested.eml").write_bytes(mail.nested(500))
    (tree / "big.eml").write_bytes(_big(50))
    return tmp_path / "eml"


# The child's own peak is VmHWM: Linux's ru_maxrss keeps, across exec, the peak of the process the
# child was forked from (here the test process, which grows past 500 MB over a whole CI run).
SYNC_CHILD = r"""
import json, re, sys
from mailindex import MailIndex
report = MailIndex(sys.argv[1]).index(sys.argv[2], "hostile", workers=1)
peak_kb = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({"report": report.to_dict(), "rss_mb": peak_kb / 1024}))
"""


def test_hostile_messages_ingest_with_bounded_memory(hostile: Path, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SYNC_CHILD, str(tmp_path / "idx"), str(hostile)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    report = result["report"]
    assert report["added"] == 8  # every message, broken or not; the empty file and the garbage are no mail
    assert result["rss_mb"] < 500, result
    with MailIndex(tmp_path / "idx", read_only=True) as mx:
        assert mx.messages.count(subject="good") == 5
        (big,) = mx.messages.list(subject="fifty megabytes")
        assert big["files"][0]["file_name"] == "big.bin"
        assert big["files"][0]["size"] > 49 * 2**20 * 3 // 4 - 2**20
        assert mx.messages.count(subject="part bomb") == 1
        assert mx.messages.count(subject="wrap 499") == 1
        not_mail = {q["key"].rpartition("/")[2]: q["indexed"] for q in mx.quarantine()
                    if q["error"].startswith(SKIP_NOT_MAIL)}
        assert not_mail == {"empty.eml": 0, "garbage.eml": 0}


def test_file_vanishing_mid_scan_is_skipped(tmp_path: Path) -> None:
    tree = tmp_path / "eml" / "inbox"
    tree.mkdir(parents=True)
    files = [tree / f"m{i}.eml" for i in range(6)]
    for i, p in enumerate(files):
        p.write_bytes(mail.message(f"m{i}"))
    pm = plugin_manager(entry_points=False)
    with MailIndex(tmp_path / "idx", pm=pm) as mx:
        src = mx.open_source(tmp_path / "eml")
        entries = type(src).entries

        def vanishing(self, container):  # the file goes away between listing and reading
            for e in entries(self, container):
                if e.key.endswith("m3.eml"):
                    files[3].unlink()
                yield e

        type(src).entries = vanishing
        try:
            report = mx.index(tmp_path / "eml", "e")
        finally:
            type(src).entries = entries
        assert (report.added, report.failed) == (5, 0)
        assert sorted(m["subject"] for m in mx.messages.iter()) == ["m0", "m1", "m2", "m4", "m5"]


def _without_read_override() -> list[str]:
    """A command prefix under which even root obeys file permissions."""
    if os.getuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_unreadable_file_is_recorded_and_the_rest_ingests(tmp_path: Path) -> None:
    tree = tmp_path / "eml" / "inbox"
    tree.mkdir(parents=True)
    for i in range(3):
        (tree / f"ok{i}.eml").write_bytes(mail.message(f"ok {i}"))
    secret = tree / "secret.eml"
    secret.write_bytes(mail.message("secret"))
    secret.chmod(0o000)
    child = SYNC_CHILD.replace('"hostile"', '"e"')
    out = subprocess.run([*_without_read_override(), sys.executable, "-c", child, str(tmp_path / "idx"),
                          str(tmp_path / "eml")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["report"]
    assert (report["added"], report["failed"]) == (3, 1)
    assert "secret.eml" in report["errors"][0]["key"]
    with MailIndex(tmp_path / "idx", read_only=True) as mx:
        assert mx.messages.count() == 3
        assert [q["indexed"] for q in mx.quarantine()] == [False]


NOT_UTF8 = "caf\udce9"  # how Python decodes the Latin-1 bytes b"caf\xe9" taken as UTF-8 (surrogateescape)


def test_text_that_is_not_unicode_is_one_query_error_naming_the_parameter(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("one")]})
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "md")
        calls = {
            "subject": lambda: mx.messages.list(subject=NOT_UTF8),
            "folder": lambda: mx.messages.count(folder=NOT_UTF8),
            "email": lambda: mx.messages.list(email=f"{NOT_UTF8}@example.com"),
            "from": lambda: mx.messages.list(**{"from": f"{NOT_UTF8}@example.com"}),
            "message_id": lambda: mx.messages.get(NOT_UTF8),
            "search": lambda: mx.contacts.list(search=NOT_UTF8),
            "first_name": lambda: mx.accounts.create(email="ann@example.com", first_name=NOT_UTF8),
        }
        for param, call in calls.items():
            with pytest.raises(QueryError) as raised:
                call()
            assert raised.value.param == param and "not valid Unicode" in str(raised.value), param
        assert [a["email_addresses"] for a in mx.accounts.list()] == [[]]  # the failed create made nothing


def test_a_backend_option_is_stored_as_given_or_refused(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("one")]})
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        assert mx.add_source("md", root, note=tmp_path / "notes.txt")["options"] == {"note": str(tmp_path / "notes.txt")}
        with pytest.raises(QueryError) as raised:
            mx.add_source("other", root, hook=object())
        assert raised.value.param == "hook"
        assert [s["label"] for s in mx.sources()] == ["md"]
