"""The manual page, mailindex(1), written from the command's own parser: it cannot drift from --help."""

from __future__ import annotations

import argparse

ENVIRONMENT = [
    ("MAILINDEX_HOME", "the index directory when --index is not given"),
    ("MAILINDEX_CONFIG", "the configuration file (default: $XDG_CONFIG_HOME/mailindex/config.toml)"),
    ("MAILINDEX_FORMAT", "text, json or jsonl: how commands print when no flag says (over the file's format)"),
    ("XDG_DATA_HOME", "the default index is $XDG_DATA_HOME/mailindex (~/.local/share/mailindex)"),
    ("XDG_CONFIG_HOME", "where the configuration file is looked for (~/.config)"),
]


def _text(s: str) -> str:
    """roff-safe text: backslashes escaped, a leading dot or quote defused, hyphens as minus signs."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + s if s[:1] in (".", "'") else s


def _option(action: argparse.Action) -> str:
    """One option (or positional argument) as a tagged paragraph: its names, its value, its help."""
    names = ", ".join(f"\\fB{_text(o)}\\fR" for o in action.option_strings) or f"\\fI{_text(action.dest)}\\fR"
    value = ""
    if action.option_strings and action.nargs != 0:
        metavar = action.metavar or action.dest.upper()
        if action.choices is not None and not action.metavar:
            metavar = "{" + ",".join(map(str, action.choices)) + "}"
        value = f" \\fI{_text(str(metavar))}\\fR"
    return f".TP\n{names}{value}\n{_text(action.help or '')}\n"


def _commands(sub: argparse._SubParsersAction, prefix: str) -> list[str]:
    out: list[str] = []
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    for name, parser in sub.choices.items():
        out.append(f".SS {_text(prefix + name)}\n{_text(parser.description or helps.get(name, ''))}\n")
        nested = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                nested = action
            elif not isinstance(action, argparse._HelpAction) and action.dest not in ("index", "read_only", "account"):
                out.append(_option(action))
        if nested is not None:
            out += _commands(nested, f"{prefix}{name} ")
    return out


def render(parser: argparse.ArgumentParser, version: str) -> str:
    """mailindex(1) in roff, from `parser` (mailindex.cli.build_parser()) and the package's version."""
    top = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    lines = [
        f'.TH MAILINDEX 1 "" "mailindex {version}" "User Commands"',
        ".SH NAME", "mailindex \\- make mailboxes on disk searchable offline (Context.IO 2.0 filters)",
        ".SH SYNOPSIS", ".B mailindex", "[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION", _text(parser.description or ""),
        ".SH GLOBAL OPTIONS", "They may also follow the command.", *(_option(a).rstrip("\n") for a in top),
        ".SH COMMANDS", *(c.rstrip("\n") for c in _commands(sub, "")),
        ".SH ENVIRONMENT", *(f".TP\n\\fB{name}\\fR\n{_text(what)}" for name, what in ENVIRONMENT),
        ".SH FILES", ".TP", "\\fI~/.config/mailindex/config.toml\\fR",
        _text("index, owner and format defaults (TOML); flags beat the environment, which beats the file"),
        ".SH EXIT STATUS",
        _text("0 on success; 1 on any error, with exactly one line on stderr (mailindex: MESSAGE); "
              "130 when interrupted."),
        ".SH SEE ALSO", "notmuch(1), mu(1), mairix(1)",
    ]
    return "\n".join(lines) + "\n"
