"""A read command imports what it needs: never the ingest pipeline, live operations, backends or HTTP.

Each command runs in a fresh interpreter (as a script calls the CLI) and reports the modules it loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailindex import MailIndex
from mailindex.plugins import plugin_manager
from tests import mail

ROOT = Path(__file__).resolve().parents[1]
# Whole rooms a question never needs: ingest (sync, prepare, parse), live operations, the backends and
# their plugin manager, the callback client, the standard library's mail parser.
NEVER = ("mailindex.sync", "mailindex.prepare", "mailindex.parse", "mailindex.api.live", "mailindex.sources",
         "mailindex.plugins", "mailindex.callbacks", "pluggy", "http.client", "urllib.request", "email",
         "fast_mail_parser", "magic")
# The modules are listed before the report's own json import.
RUN = """
import sys
from mailindex.cli import main
code = main(sys.argv[1:])
modules = sorted(sys.modules)
import json
print(json.dumps({"code": code, "modules": modules}), file=sys.stderr)
"""
QUESTIONS = [
    ["search", "--count", "--from", "alice@example.com"],
    ["search", "--subject", "hello", "--limit", "5", "--json"],
    ["search", "--email", "example.com", "--date-after", "1500000000", "--include-thread-size"],
    ["accounts", "list", "--json"],
    ["sources", "list"],
    ["contacts", "--json"],
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("startup")
    md = mail.maildir(root / "md", {"INBOX": [mail.message("hello there"), mail.message("again", sender="b@x.org")]})
    with MailIndex(root / "idx", pm=plugin_manager(entry_points=False), owner=["me@example.com"]) as mx:
        mx.index(md, "md")
    return root / "idx"


def _run(index: Path, argv: list[str], before: str = "") -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", before + RUN, "--index", str(index), *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    report: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("argv", QUESTIONS, ids=" ".join)
def test_a_question_loads_no_ingest_live_backend_or_http_module(index: Path, argv: list[str]) -> None:
    report = _run(index, argv)
    assert report["code"] == 0
    loaded = [m for m in report["modules"] if any(m == n or m.startswith(n + ".") for n in NEVER)]
    assert loaded == []


# A count needs the store's lookup and one Tantivy query: no record decoding, hashing, orjson, RE2 or temp files.
COUNT_NEVER = ("orjson", "zstandard", "dataclasses", "hashlib", "re2", "tempfile")


@pytest.mark.parametrize("argv", [QUESTIONS[0], ["search", "--count", "--subject", "/^Re: /", "--folder", "INBOX"]],
                         ids=" ".join)
def test_a_count_loads_nothing_past_the_store_and_the_searcher(index: Path, argv: list[str]) -> None:
    report = _run(index, argv)
    assert report["code"] == 0
    assert [m for m in report["modules"] if m.split(".")[0] in COUNT_NEVER] == []
    assert "mailindex.query.language" not in report["modules"]  # a question without q reads no query text


def test_the_check_sees_a_module_that_is_loaded(index: Path) -> None:
    """The same run, made to load the ingest pipeline: the list above would show it."""
    assert "mailindex.sync" in _run(index, ["sources"], before="import mailindex.sync\n")["modules"]


# A re-sync with nothing new lists the mail and compares stamps: it parses, hashes, writes and decompresses
# nothing, so it loads none of the modules for that.
RESYNC_NEVER = ("mailindex.parse", "fast_mail_parser", "magic", "email", "hashlib", "socket", "gzip", "bz2",
                "tempfile", "shutil", "mailindex.sources.mbox_writer", "mailindex.api.live", "http", "urllib.request")


def test_a_re_sync_with_nothing_new_loads_no_parser_hashing_or_writer(index: Path) -> None:
    report = _run(index, ["sync", "md", "--quiet"])
    assert report["code"] == 0
    assert [m for m in report["modules"] if any(m == n or m.startswith(n + ".") for n in RESYNC_NEVER)] == []
