"""What the command prints: --version, `python -m mailindex`, --json (orjson) and --jsonl, which streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mailindex
from mailindex import MailIndex
from mailindex.api.messages import Messages
from mailindex.cli import main
from mailindex.errors import QueryError
from tests import mail

ROOT = Path(__file__).resolve().parents[1]
LISTINGS = [["search", "--all"], ["search", "--subject", "letter", "--limit", "3"], ["accounts"],
            ["accounts", "list"], ["sources"], ["sources", "list"], ["connect-tokens", "list"], ["quarantine"],
            ["plugins"]]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("out")
    md = mail.maildir(root / "md", {"INBOX": [mail.message(f"letter {i} ünïcödé 日本", sender=f"s{i % 3}@example.com")
                                              for i in range(12)]})
    (root / "md" / "cur" / "1.junk:2,").write_bytes(b"not mail at all\n")  # one quarantine entry
    assert main(["--index", str(root / "idx"), "index", str(md)]) == 0
    return root / "idx"


def _out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", LISTINGS, ids=" ".join)
def test_jsonl_is_the_json_array_one_object_a_line(index: Path, capsys: pytest.CaptureFixture[str],
                                                   argv: list[str]) -> None:
    array = json.loads(_out(capsys, "--index", str(index), *argv, "--json"))
    lines = _out(capsys, "--index", str(index), *argv, "--jsonl").splitlines()
    assert [json.loads(line) for line in lines] == array and all(line.startswith("{") for line in lines)
    assert argv[0] == "connect-tokens" or array  # every other listing has rows here


def test_json_keeps_unicode_as_written(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _out(capsys, "--index", str(index), "search", "--limit", "1", "--json")
    assert "ünïcödé 日本" in text and text.startswith("[\n  {")


def test_jsonl_writes_each_message_as_it_comes(index: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Three messages come, then the listing fails: the three are out already, then one error line."""
    real = Messages.iter

    def three_then_fail(self: Messages, **params: Any) -> Iterator[dict[str, Any]]:
        for n, m in enumerate(real(self, **params)):
            if n == 3:
                raise QueryError("from", "x", "stopped on purpose")
            yield m

    monkeypatch.setattr(Messages, "iter", three_then_fail)
    capsys.readouterr()
    assert main(["--index", str(index), "search", "--all", "--jsonl"]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and err.count("\n") == 1 and "stopped on purpose" in err


def test_json_and_jsonl_together_are_refused_in_one_line(index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--index", str(index), "search", "--json", "--jsonl"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_version_and_python_dash_m(index: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mailindex", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"mailindex {mailindex.__version__}\n")
    done = subprocess.run([sys.executable, "-m", "mailindex", "--index", str(index), "search", "--count"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "12\n")


WIDE = "山田太郎 Yamada"  # 2 columns a character for the first four
COMBINING = "Re\u0301sume\u0301 re\u0301vise\u0301 et comple\u0301te\u0301 pour l'e\u0301quipe de\u0301veloppement"


@pytest.fixture(scope="module")
def text_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text")
    messages = [mail.message("short", sender=f"{WIDE} <taro@example.jp>"),
                mail.message(COMBINING * 2, sender="Ann <ann@example.com>"),
                mail.message("a plain subject", sender="bob@example.com")]
    no_id = b"From: c@example.com\nSubject: without a Message-ID\n\nbody\n"
    md = mail.maildir(root / "md", {"INBOX": [*messages, no_id]})
    assert main(["--index", str(root / "idx"), "index", str(md)]) == 0
    return root / "idx"


def _columns(line: str) -> int:
    from mailindex.cli.output import char_width
    return sum(char_width(c) for c in line)


@pytest.mark.parametrize("width", [60, 80, 132])
def test_the_table_fits_the_terminal_and_its_columns_line_up(text_index: Path, width: int,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    lines = _out(capsys, "--index", str(text_index), "search").splitlines()
    assert len(lines) == 5
    assert all(_columns(line) <= width for line in lines), [(_columns(x), x) for x in lines]
    # the message_id column starts at the same display column on every row, wide or combining text notwithstanding
    starts = {_columns(line[: len(line) - 24]) for line in lines[1:]}
    assert len(starts) == 1
    cut = [line for line in lines if "…" in line]
    assert cut and any("Re\u0301sume\u0301" in line for line in cut)


def test_include_options_are_shown_in_text_mode(text_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _out(capsys, "--index", str(text_index), "search", "--subject", "plain", "--include-headers", "1",
               "--include-body", "--include-flags", "--include-thread-size")
    assert "--- headers ---" in out and "Subject: a plain subject" in out and "body text" in out
    assert "thread:     1 message\n" in out and "flags:      (none)" in out
    mid = json.loads(_out(capsys, "--index", str(text_index), "search", "--subject", "without", "--json"))[0]
    shown = _out(capsys, "--index", str(text_index), "show", mid["message_id"], "--include-headers", "raw",
                 "--include-source")
    assert "Message-ID: (none)" in shown and "--- headers (raw) ---\nFrom: c@example.com" in shown
    assert "--- source ---\nFrom: c@example.com" in shown and "None" not in shown


def test_progress_shows_the_scan_then_rate_and_time_left() -> None:
    import io

    from mailindex.progress import ProgressLine

    out = io.StringIO()
    line = ProgressLine("indexing", stream=out, enabled=True)
    assert out.getvalue() == "indexing: scanning for new, changed and vanished messages ..."
    line(0, 1000)
    line.start -= 10  # ten seconds for the first 100
    line.last = 0
    line(100, 1000)
    line(1000, 1000)
    text = out.getvalue()
    assert "100/1,000" in text and "ETA 1m30s" in text and text.endswith("1,000/1,000 100.0% 100 msg/s  in 10s\n")
    quiet = io.StringIO()
    ProgressLine("indexing", stream=quiet)(5, 10)  # not a terminal, not asked: nothing
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("flag, shown", [("--progress", True), ("--quiet", False), (None, False)])
def test_progress_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str | None,
                            shown: bool) -> None:
    md = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("one"), mail.message("two")]})
    capsys.readouterr()
    assert main(["--index", str(tmp_path / "idx"), "index", str(md), *([flag] if flag else [])]) == 0
    err = capsys.readouterr().err
    assert ("2/2 100.0%" in err and "scanning" in err) if shown else err == ""


@pytest.mark.parametrize("argv, says", [
    (["show", "0" * 24], "message not found"),  # NotFound
    (["search", "--source", "nope", "--count"], None),  # an unknown label finds nothing: not an error
    (["sources", "get", "nope"], "nope"),  # SourceNotFound
    (["index", "/nonexistent/mail"], "/nonexistent/mail"),  # a path that is not there
    (["--read-only", "index", "<maildir>"], "read-only"),  # ReadOnlyIndex, before any mail is touched
    (["search", "--limit", "0"], "limit"),  # QueryError naming the parameter
    (["search", "--date-after", "yesterday"], "date-after"),  # argparse's own error
])
def test_every_class_of_error_is_one_line_and_exit_1(index: Path, capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path, argv: list[str], says: str | None) -> None:
    md = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("x")]})
    argv = [str(md) if a == "<maildir>" else a for a in argv]
    capsys.readouterr()
    code = main(["--index", str(index), *argv])
    out, err = capsys.readouterr()
    if says is None:
        assert (code, out, err) == (0, "0\n", "")
        return
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("mailindex: ")
    assert says in err.lower() or says in err, err


def test_a_busy_index_an_interrupt_and_a_closed_pipe(index: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    md = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("x")]})
    with MailIndex(index) as holder:  # another process's writer, as far as the index can tell
        held = holder.tantivy.writer()
        capsys.readouterr()
        assert main(["--index", str(index), "index", str(md)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "another process is writing to the index" in err, err
        held.close()

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Messages, "count", interrupted)
    assert main(["--index", str(index), "search", "--count"]) == 130
    assert capsys.readouterr().err == "mailindex: interrupted\n"

    def closed_pipe(*args: Any, **kwargs: Any) -> Any:
        raise BrokenPipeError

    monkeypatch.setattr(Messages, "count", closed_pipe)
    assert main(["--index", str(index), "search", "--count"]) == 0  # the reader stopped reading: not an error
    assert capsys.readouterr().err == ""


def test_the_manual_page_has_every_command_and_option() -> None:
    from mailindex.cli import build_parser
    from mailindex.manpage import render

    page = render(build_parser(), mailindex.__version__)
    assert page.startswith(".TH MAILINDEX 1") and ".SH EXIT STATUS" in page and ".SH ENVIRONMENT" in page
    for command in ("index", "search", "accounts list", "sources add", "connect-tokens redeem", "completion", "man"):
        assert f".SS {command.replace('-', chr(92) + '-')}\n" in page, command
    for option in ("--file-size-min", "--include-thread-size", "--jsonl", "--progress", "--quiet", "--version"):
        assert f"\\fB{option.replace('-', chr(92) + '-')}\\fR" in page, option
    groff = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page, capture_output=True, text=True)
    assert groff.returncode == 0 and groff.stderr == ""  # roff without warnings (make test installs groff)


def test_completion_answers_a_shell(tmp_path: Path) -> None:
    """The bash code loads argcomplete's protocol; the command answers it with its own commands and options."""
    code = subprocess.run([sys.executable, "-m", "mailindex", "completion", "bash"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert code.returncode == 0 and "complete" in code.stdout and "mailindex" in code.stdout
    answer = tmp_path / "answer"
    for line, want in (("mailindex sea", "search"), ("mailindex search --include-th", "--include-thread-size")):
        env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "_ARGCOMPLETE_STDOUT_FILENAME": str(answer), "_ARGCOMPLETE_IFS": "\n"}
        subprocess.run([sys.executable, "-m", "mailindex"], cwd=ROOT, env=env, capture_output=True, timeout=60)
        assert want in answer.read_text().split(), (line, answer.read_text())
