"""The `mailindex` command: a thin layer over MailIndex.

Any error, a bad argument included, prints one line, `mailindex: MESSAGE`, on stderr and exits 1.
A command that changes nothing opens the index read-only (see `commands.COMMANDS`). Only the
chosen command's branch of the grammar is built, and the facade is imported only to run it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from mailindex.cli.parser import build_parser, check_text, command_named
from mailindex.errors import MailindexError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions (argcomplete's protocol): answers, exits
            import argcomplete

            argcomplete.autocomplete(build_parser())
        args = build_parser(command_named(argv)).parse_args(argv)
        check_text(args)
        from mailindex.cli.commands import run

        return run(args)
    except MailindexError as exc:
        print("mailindex:", " ".join(str(exc).splitlines()), file=sys.stderr)  # one line, whatever a server said
        return 1
    except KeyboardInterrupt:
        print("mailindex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
