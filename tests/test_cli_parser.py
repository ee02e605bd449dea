"""The command line builds only the branch of its grammar that argv asks for: whatever argv is, that
branch parses it exactly as the whole tree does (the same namespace, the same error, the same output)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailindex.cli.parser import PARSERS, build_parser, command_named
from mailindex.errors import MailindexError

WORDS = ["--index", "--ind", "--index=/x", "--read-only", "--read", "--account", "--acc=abc", "--", "-h", "--help",
         "--version", "--vers", "--json", "--jsonl", "--count", "--limit", "5", "--from", "a@b.c", "x", "ID",
         "list", "get", "bash", "--bogus", "-", "=", "--in"]


def outcome(parser_for: Any, argv: Sequence[str]) -> tuple[str, Any]:
    """What parsing `argv` gives: the namespace, the one-line error, or the exit and what was printed."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            return "parsed", vars(parser_for(argv).parse_args(argv))
    except MailindexError as exc:
        return "error", str(exc)
    except SystemExit as exc:
        return "exit", (exc.code, out.getvalue())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS + list(PARSERS)), max_size=6))
def test_the_branch_parses_as_the_whole_tree(argv: list[str]) -> None:
    assert outcome(lambda a: build_parser(command_named(a)), argv) == outcome(lambda a: build_parser(), argv)


@pytest.mark.parametrize(("argv", "command"), [
    (["search", "--count"], "search"),
    (["--index", "search", "sources"], "sources"),  # "search" is --index's value
    (["--ind=/x", "--read-only", "show", "ID"], "show"),
    (["--acc", "abc", "contacts"], "contacts"),
    (["--version"], ""),
    (["--help"], None),
    (["--in", "x", "search"], "search"),  # a prefix of one global option, as argparse allows
    (["--read-only", "--bogus", "search"], None),  # argparse will say what is wrong
    ([], None),
])
def test_the_prescan_names_the_command_or_asks_for_everything(argv: list[str], command: str | None) -> None:
    assert command_named(argv) == command
