"""The `mailindex` command in-process: the contract scripts rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailindex.cli import main
from tests import mail


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    root = mail.maildir(tmp_path / "md", {
        "INBOX": [mail.message(f"note {i}", sender=f"user{i % 3}@example.com", date=1_600_000_000 + i)
                  for i in range(5)],
        "Sent": [mail.message("report attached", sender="me@example.com", to="bob@example.org",
                              attachments=[("report.pdf", b"%PDF-1.4 " * 100)])],
    })
    assert main(["--index", str(tmp_path / "idx"), "index", str(root), "--source", "personal", "--json"]) == 0
    return tmp_path / "idx"


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_index_report_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("a"), mail.message("b")]})
    assert main(["--index", str(tmp_path / "idx"), "index", str(root), "--json"]) == 0
    report = _json(capsys)
    assert {k: report[k] for k in ("added", "updated", "removed", "failed")} == \
        {"added": 2, "updated": 0, "removed": 0, "failed": 0}
    assert isinstance(report["seconds"], float)
    assert main(["--index", str(tmp_path / "idx"), "index", str(root), "--json"]) == 0
    assert _json(capsys)["added"] == 0


def test_search_json_count_and_all(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--index", str(indexed), "search", "--from", "user1@example.com", "--json"]) == 0
    found = _json(capsys)
    assert sorted(m["subject"] for m in found) == ["note 1", "note 4"]
    assert main(["--index", str(indexed), "search", "--email", "example.com", "--count"]) == 0
    assert capsys.readouterr().out.strip() == "6"
    assert main(["--index", str(indexed), "search", "--all", "--sort-order", "asc", "--json"]) == 0
    dates = [m["date"] for m in _json(capsys)]
    assert dates == sorted(dates) and len(dates) == 6
    assert main(["--index", str(indexed), "search", "--file-name", "*.pdf", "--json"]) == 0
    (m,) = _json(capsys)
    assert m["files"][0]["file_name"] == "report.pdf" and m["folders"] == ["Sent"]


def test_search_takes_a_query_and_iso_dates(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    counts = []
    for argv in (["note"], ["note", "OR", "report"], ["note -report"], ["subject:attached", "from:me"],
                 ["note", "--date-before", "2020-09-13T12:26:42Z"], ["note", "--date-after", "2020-09-13"],
                 ["note", "--date-after", "2020-09-14"]):
        assert main(["--index", str(indexed), "search", "--count", *argv]) == 0
        counts.append(int(capsys.readouterr().out))
    assert counts == [5, 6, 5, 1, 2, 5, 0]


def test_show(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    main(["--index", str(indexed), "search", "--subject", "report", "--json"])
    (m,) = _json(capsys)
    assert main(["--index", str(indexed), "show", m["message_id"], "--include-body", "--include-headers", "1",
                 "--include-flags", "--json"]) == 0
    shown = _json(capsys)
    assert shown["message_id"] == m["message_id"]
    assert shown["headers"]["Subject"] == ["report attached"]
    assert set(shown["flags"]) == {"seen", "answered", "flagged", "deleted", "draft", "nonjunk"}
    assert any(p["type"] == "text/plain" for p in shown["body"])


def test_source_writes_the_exact_bytes(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    data = mail.message("raw bytes", body="caf\u00e9\r\nend\n")
    root = mail.maildir(tmp_path / "md", {"INBOX": [data]})
    main(["--index", str(tmp_path / "idx"), "index", str(root)])
    capsysbinary.readouterr()
    main(["--index", str(tmp_path / "idx"), "search", "--json"])
    (m,) = json.loads(capsysbinary.readouterr().out)
    assert main(["--index", str(tmp_path / "idx"), "source", m["message_id"]]) == 0
    assert capsysbinary.readouterr().out == data


@pytest.mark.parametrize("argv,needle", [
    (["search", "--limit", "0"], "limit"),
    (["search", "--limit", "101"], "limit"),
    (["search", "--offset", "-1"], "offset"),
    (["search", "--subject", "/(unclosed/"], "subject"),
    (["search", "--from", "not-an-address"], "from"),
    (["search", "--file-name", "[abc"], "file_name"),
    (["show", "ffffffffffffffffffffffff"], "not found"),
    (["thread", "<nobody@test.example>"], "not found"),
    (["contacts", "nobody@example.com"], "contact not found"),
    (["search", "--subject", "/a{2000}/"], "invalid repetition size: {2000,2000} (got"),
    (["search", "--subject", "/\\w{500}x/"], "pattern too large"),
    (["--account", "0" * 24, "search"], "account not found"),
    (["--account", "nope", "search"], "account id"),
    (["accounts", "list", "--limit", "101"], "limit"),
    (["accounts", "create", "--email", "nobody"], "not an email address"),
    (["sources", "get", "nope"], "no source with this label"),
    (["sources", "add", "/nonexistent/mail"], "no such file or directory"),
    (["connect-tokens", "create", "--callback-url", "ftp://example.com/"], "callback_url"),
    (["connect-tokens", "get", "f" * 40], "connect token not found"),
    (["search", "form:alice"], "q: at position 1: unknown field 'form'"),
    (["search", "note", "(report"], "q: at position 6: a '(' that is never closed"),
    (["search", "--date-after", "2001-13-01"], "--date-after: '2001-13-01' is not a date of the calendar"),
])
def test_errors_are_one_line_and_nonzero(indexed: Path, capfd: pytest.CaptureFixture[str], argv: list[str],
                                         needle: str) -> None:
    capfd.readouterr()
    assert main(["--index", str(indexed), *argv]) == 1
    err = capfd.readouterr().err  # file-descriptor level: a dependency's own stderr lines would show here
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err and "b'" not in err


ROOT = Path(__file__).resolve().parents[1]
BIG = b"99999999999999999999"  # 20 digits: more than 64 bits
INDEX, BAD_INDEX = b"<index>", b"<non-UTF-8 index>"


# Bytes as a shell hands them over: Python turns those that are not UTF-8 into lone surrogates.
HOSTILE: list[list[bytes]] = [
    [b"search", b"--from=\xff"], [b"search", b"--subject", b"caf\xe9"], [b"search", b"--folder=\xff"],
    [b"search", b"--email=\xff@example.com"], [b"search", b"--source=\xff"], [b"search", b"--file-name=\xff.pdf"],
    [b"show", b"\xff"], [b"source", b"\xff"], [b"body", b"\xff"], [b"headers", b"\xff"], [b"thread", b"\xff"],
    [b"contacts", b"--search", b"\xff"], [b"contacts", b"\xff@example.com"], [b"--account", b"\xff", b"search"],
    [b"accounts", b"get", b"\xff"], [b"sources", b"get", b"\xff"], [b"connect-tokens", b"get", b"\xff"],
    [b"index", b"/tmp/\xff/mail"], [b"sources", b"add", b"/tmp/\xff/mail"],
    [b"search", b"--offset", BIG], [b"search", b"--limit", BIG], [b"search", b"--date-after", BIG],
    [b"search", b"--file-size-min", BIG], [b"thread", b"<a@example.com>", b"--offset", BIG],
    [b"contacts", b"--offset", BIG], [b"contacts", b"--limit", BIG], [b"contacts", b"--active-before", BIG],
    [b"contacts", b"--active-after", b"-" + BIG], [b"accounts", b"list", b"--offset", BIG],
    [b"search", b"--offset", b"ten"], [b"search", b"--limit", b"1e3"], [b"search", b"--\xff"], [b"\xff"],
    [b"show"], [b"search", b"--sort-order", b"up"], [],
    [b"--index", BAD_INDEX, b"search"], [b"--index", BAD_INDEX, b"index", b"<maildir>"],
]


@pytest.mark.parametrize("argv", HOSTILE, ids=lambda argv: b" ".join(argv).decode("utf-8", "backslashreplace"))
def test_hostile_arguments_give_one_line_and_exit_1(indexed: Path, argv: list[bytes]) -> None:
    bad_index = os.fsencode(indexed.parent) + b"/\xff-idx"
    given = {INDEX: os.fsencode(indexed), BAD_INDEX: bad_index, b"<maildir>": os.fsencode(indexed.parent / "md")}
    argv = [given.get(a, a) for a in argv]
    full = argv if b"--index" in argv else [b"--index", os.fsencode(indexed), *argv]
    done = subprocess.run([sys.executable, "-m", "mailindex.cli", *full], cwd=ROOT, capture_output=True, timeout=60)
    err = done.stderr.decode("utf-8", "backslashreplace")
    assert (done.returncode, done.stdout, err.count("\n"), err[:10]) == (1, b"", 1, "mailindex:"), err
    assert "Traceback" not in err
    assert not os.path.lexists(bad_index)  # neither a read nor a refused write made it


def test_missing_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--index", str(tmp_path / "idx"), "index", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert "no such file" in err and err.count("\n") == 1


def test_owner_gives_email_its_contact_meaning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [
        mail.message("to both", sender="carol@example.net", to="bob@example.org, me@example.com"),
        mail.message("not to me", sender="carol@example.net", to="bob@example.org, dan@example.org"),
    ]})
    idx = str(tmp_path / "idx")
    assert main(["--index", idx, "index", str(root), "--owner", "Me@Example.com"]) == 0
    capsys.readouterr()
    assert main(["--index", idx, "search", "--email", "bob@example.org", "--json"]) == 0
    assert [m["subject"] for m in _json(capsys)] == ["to both"]


def _run(index: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    capsys.readouterr()
    assert main(["--index", str(index), *argv, "--json"]) == 0
    return _json(capsys)


def test_accounts_sources_and_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = tmp_path / "idx"
    work = mail.maildir(tmp_path / "work", {"INBOX": [mail.message("work mail"), mail.message("more work")],
                                            "Trash": [mail.message("binned")]})
    home = mail.maildir(tmp_path / "home", {"INBOX": [mail.message("home mail")]})
    account = _run(index, capsys, "accounts", "create", "--email", "ann@example.com", "--first-name", "Ann")
    acct = ["--account", account["id"]]
    added = _run(index, capsys, *acct, "sources", "add", str(work), "--label", "work")
    assert (added["label"], added["status"], added["sync_all_folders"]) == ("work", "OK", 1)
    assert _run(index, capsys, *acct, "sync")["added"] == 3  # every folder, Trash included
    token = _run(index, capsys, *acct, "connect-tokens", "create", "--callback-url", "https://example.com/cb")
    redeemed = _run(index, capsys, *acct, "connect-tokens", "redeem", token["token"], str(home))
    assert redeemed["account"]["id"] == account["id"] and redeemed["sync"]["added"] == 1
    listed = _run(index, capsys, "accounts", "list", "--email", "ann@example.com")
    assert [(a["id"], a["nb_messages"], [s["label"] for s in a["sources"]]) for a in listed] == \
        [(account["id"], 4, ["work", "home"])]
    assert sorted(m["subject"] for m in _run(index, capsys, *acct, "search")) == \
        ["binned", "home mail", "more work", "work mail"]
    assert _run(index, capsys, *acct, "search", "--source", "home")[0]["subject"] == "home mail"
    # A search makes no default account (it writes nothing): none was needed yet, so it names the problem.
    assert main(["--index", str(index), "search"]) == 1
    assert capsys.readouterr().err == \
        "mailindex: account not found: 'default (this index has no default account; name one)'\n"
    _run(index, capsys, *acct, "sources", "update", "work", "--sync-all-folders", "0")
    synced = _run(index, capsys, *acct, "sync", "work")
    assert (synced["removed"], synced["skipped"]) == (1, {"folder left out (sync_all_folders=0)": 1})
    assert _run(index, capsys, *acct, "sources", "delete", "home") == {"success": True}
    assert [s["label"] for s in _run(index, capsys, *acct, "sources")] == ["work"]
    assert _run(index, capsys, "accounts", "delete", account["id"]) == {"success": True}
    assert _run(index, capsys, "accounts", "list", "--email", "ann@example.com") == []

