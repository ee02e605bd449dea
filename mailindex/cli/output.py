"""What the command line prints: JSON, JSON lines, tables that fit the terminal, messages in full."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from mailindex.errors import MailindexError


def json_text(value: Any, indent: bool) -> str:
    """JSON by orjson (30x the standard library on a large listing); the standard library's, escaped, for
    text that is not valid Unicode, which orjson refuses."""
    import orjson  # imported here: it costs a process ~10 ms, and only JSON output needs it

    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0).decode()
    except TypeError:
        import json

        return json.dumps(value, indent=2 if indent else None)


def print_json(value: Any) -> None:
    sys.stdout.write(json_text(value, indent=True) + "\n")


def print_jsonl(rows: Iterable[Any]) -> None:
    """One JSON object per line, each written as it comes: constant memory however long the listing."""
    for row in rows:
        sys.stdout.write(json_text(row, indent=False) + "\n")


def when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else "-"


def _sender(m: dict[str, Any]) -> str:
    f = m["addresses"].get("from")
    return (f.get("name") or f["email"]) if f else ""


def char_width(c: str) -> int:
    """Columns a character takes on a terminal: 2 for East Asian wide, 0 for combining and format marks."""
    import unicodedata

    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def fit(text: str, cols: int) -> str:
    """`text` cut to `cols` terminal columns (an ellipsis where it was cut), padded to exactly `cols`."""
    text = "".join(" " if c in "\r\n\t" else c for c in text)
    widths = [char_width(c) for c in text]
    if sum(widths) > cols:
        used, keep = 0, 0
        while keep < len(text) and used + widths[keep] <= cols - 1:
            used += widths[keep]
            keep += 1
        text, widths = text[:keep] + "…", [*widths[:keep], 1]
    return text + " " * (cols - sum(widths))


def terminal_columns(fallback: int) -> int:
    """$COLUMNS, else the width of the terminal on stdout, else `fallback`: shutil.get_terminal_size's
    rule, without importing shutil (and its compressors) into every command."""
    try:
        columns = int(os.environ["COLUMNS"])
        if columns > 0:
            return columns
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or fallback  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout (None), or not a terminal
        return fallback


def table(messages: list[dict[str, Any]]) -> None:
    """date, sender and subject in the terminal's width ($COLUMNS, else the terminal, else 120)."""
    if not messages:
        print("(no messages)")
        return
    free = max(terminal_columns(120) - 16 - 24 - 6, 8)  # date, message_id, gaps
    sender = min(28, max(4, free * 3 // 10))
    subject = max(free - sender, 4)
    print(f"{'date (UTC)':<16}  {fit('from', sender)}  {fit('subject', subject)}  message_id")
    for m in messages:
        print(f"{when(m['date']):<16}  {fit(_sender(m), sender)}  {fit(m['subject'], subject)}  {m['message_id']}")


def print_messages(messages: list[dict[str, Any]], includes: dict[str, Any]) -> None:
    """A table; or, when an include option asked for more than a table shows, each message in full."""
    if any(v for k, v in includes.items() if k != "body_type" and v not in (0, "0")):
        print("\n\n".join(show_text(m) for m in messages) or "(no messages)")
    else:
        table(messages)


def listing(rows: Iterable[dict[str, Any]], a: argparse.Namespace, line: Callable[[dict[str, Any]], str]) -> None:
    """Rows as JSON (--json), JSON lines (--jsonl) or one text line each."""
    if getattr(a, "jsonl", False):
        print_jsonl(rows)
        return
    if a.json:
        print_json(list(rows))
        return
    for row in rows:
        print(line(row))


def print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    print(f"{report['source']}: {report['added']:,} added, {report['updated']:,} updated, "
          f"{report['removed']:,} removed, {report['failed']:,} failed, {report['unchanged']:,} unchanged "
          f"in {report['seconds']:.2f} s")
    for e in report["errors"][:10]:
        print(f"  failed: {e['key']}: {e['error']}")
    if report["quarantined"]:
        print(f"  {report['quarantined']:,} in the quarantine (mailindex quarantine lists them)")
    for reason, n in report["skipped"].items():
        print(f"  not indexed: {n:,} ({reason})")


def print_as(value: Any, as_json: bool, line: Callable[[Any], str]) -> None:
    print_json(value) if as_json else print(line(value))


def answer(result: dict[str, Any], as_json: bool, done: str) -> None:
    """Print a live operation's answer; a failure at the source exits 1 with the server's words."""
    if as_json:
        print_json(result)
    elif result["success"]:
        print(done)
    if not result["success"]:
        raise MailindexError(f"the source refused: {result.get('connection_log', '')}")


_TEXT_STATES = {True: "text extracted", False: "text unreadable", "truncated": "text truncated"}


def _file_text_note(f: dict[str, Any]) -> str:
    """How a file's text was extracted, for the kinds that are read: "  text truncated (page cap: ...)"."""
    if "text_extracted" not in f:
        return ""
    reason = f.get("text_reason")
    return f"  {_TEXT_STATES.get(f['text_extracted'], 'text ?')}" + (f" ({reason})" if reason else "")


def show_text(m: dict[str, Any]) -> str:
    """One message as text, with whatever its include options added (headers, flags, body, source)."""
    lines = [f"message_id: {m['message_id']}", f"Message-ID: {m['email_message_id'] or '(none)'}",
             f"date:       {when(m['date'])} UTC   indexed {when(m['date_indexed'])}"]
    for role, value in m["addresses"].items():
        for a in value if isinstance(value, list) else [value]:
            lines.append(f"{role + ':':<11} " + (f"{a['name']} <{a['email']}>" if a.get("name") else a["email"]))
    lines += [f"subject:    {m['subject']}", f"folders:    {', '.join(m['folders'])}",
              f"sources:    {', '.join(s['label'] for s in m['sources'])}"]
    for f in m["files"]:
        lines.append(f"file:       {f['file_name'] or '(no name)'}  {f['size']:,} bytes  {f['type']}  "
                     f"part {f['body_section']}" + _file_text_note(f))
    if "thread_size" in m:
        lines.append(f"thread:     {m['thread_size']} message{'' if m['thread_size'] == 1 else 's'}")
    if "flags" in m:
        lines.append("flags:      " + (", ".join(k for k, v in m["flags"].items() if v) or "(none)"))
    if isinstance(m.get("headers"), dict):
        lines.append("\n--- headers ---")
        lines += [f"{name}: {value}" for name, values in m["headers"].items() for value in values]
    elif "headers" in m:
        lines.append(f"\n--- headers (raw) ---\n{m['headers']}")
    for part in m.get("body", []):
        lines.append(f"\n--- {part['type']} ({part['charset']}) part {part['body_section']} ---\n{part['content']}")
    if "source" in m:
        lines.append(f"\n--- source ---\n{m['source']}")
    return "\n".join(lines)
