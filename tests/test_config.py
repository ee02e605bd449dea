"""The configuration file: flags > environment > file > defaults, and a bad file is one clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailindex import MailIndex
from mailindex.cli import main
from tests import mail
from tests.test_read_only import NOBODY, ROOT


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MAILINDEX_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the default index, were nothing else to say
    monkeypatch.setenv("MAILINDEX_CONFIG", str(tmp_path / "config.toml"))
    mail.maildir(tmp_path / "md", {"INBOX": [mail.message("configured", sender="ann@example.com")]})
    return tmp_path


def _config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_file_names_the_index_owner_and_format(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _config(home, f'index = "{home / "from-file"}"\nowner = ["me@example.com"]\nformat = "jsonl"\n')
    assert _run(capsys, "index", str(home / "md"))[0] == 0
    with MailIndex(home / "from-file", read_only=True) as mx:
        assert mx.owner == ["me@example.com"] and mx.messages.count() == 1
    code, out, _ = _run(capsys, "search")
    assert code == 0 and [json.loads(line)["subject"] for line in out.splitlines()] == ["configured"]
    assert not (home / "data" / "mailindex").exists()


def test_flags_beat_the_environment_which_beats_the_file(home: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _config(home, f'index = "{home / "from-file"}"\nformat = "json"\n')
    assert _run(capsys, "--index", str(home / "from-flag"), "index", str(home / "md"))[0] == 0
    assert (home / "from-flag" / "meta.sqlite").exists() and not (home / "from-file").exists()
    monkeypatch.setenv("MAILINDEX_HOME", str(home / "from-flag"))
    assert json.loads(_run(capsys, "search")[1])[0]["subject"] == "configured"  # the file's format
    monkeypatch.setenv("MAILINDEX_FORMAT", "text")
    assert _run(capsys, "search")[1].startswith("date (UTC)")
    assert _run(capsys, "search", "--jsonl")[1].startswith("{")


def test_the_file_owner_never_overwrites_an_owner(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _config(home, f'index = "{home / "idx"}"\nowner = "file@example.com"\n')
    assert _run(capsys, "index", str(home / "md"), "--owner", "flag@example.com")[0] == 0
    assert _run(capsys, "index", str(home / "md"))[0] == 0
    with MailIndex(home / "idx", read_only=True) as mx:
        assert mx.owner == ["flag@example.com"]


@pytest.mark.parametrize("text, problem", [
    ("index = ", "is not valid TOML"),
    ("colour = 'blue'\n", "unknown key"),
    ("owner = 3\n", "must be an address"),
    ("format = 'yaml'\n", "must be one of text, json, jsonl"),
    ("index = 7\n", "must be a directory path"),
])
def test_a_bad_file_is_one_line_naming_it(home: Path, capsys: pytest.CaptureFixture[str], text: str,
                                          problem: str) -> None:
    _config(home, text)
    code, out, err = _run(capsys, "search", "--index", str(home / "idx"))
    assert (code, out, err.count("\n")) == (1, "", 1) and problem in err
    assert "config.toml" in err or "yaml" in err



def test_a_file_we_may_not_look_at_is_one_line(tmp_path: Path) -> None:
    """Run as nobody: the file is behind a directory only root may search."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "config.toml").write_text('format = "json"\n')
    env = {"MAILINDEX_CONFIG": str(private / "config.toml"), "PATH": os.environ["PATH"]}
    done = subprocess.run([*NOBODY, sys.executable, "-m", "mailindex", "--index", "/nonexistent/idx", "search"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("mailindex: config: cannot be read: Permission denied") and done.stderr.count("\n") == 1
