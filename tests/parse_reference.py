"""The standard library's view of a message (policy.default), for fidelity tests of mailindex.parse.

Each field is computed separately and left out when the stdlib raises on it,
so one unreadable header does not hide the comparison of the others.
"""

from __future__ import annotations

import datetime as dt
import mailbox
from collections.abc import Iterator
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from mailindex.record import Record

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
_PARSER = BytesParser(policy=policy.default)
TEXT_TYPES = ("text/plain", "text/html")


def corpus_messages(root: Path = CORPORA) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every message file, and of every message of every mbox (`file.mbox#i`)."""
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == "README.md":
            continue
        name = p.relative_to(root).as_posix()
        if p.suffix == ".mbox":
            box = mailbox.mbox(p, create=False)
            try:
                for i, key in enumerate(box.keys()):
                    yield f"{name}#{i}", box.get_bytes(key)
            finally:
                box.close()
        else:
            yield name, p.read_bytes()


def norm(s: str) -> str:
    return " ".join(s.split())


def _files(part: Message, out: list[tuple[str, int | None]], depth: int = 0) -> None:
    if depth > 60:
        return
    ctype = part.get_content_type()
    if part.is_multipart():
        payload = part.get_payload()
        if ctype in ("message/rfc822", "message/global"):
            name = part.get_filename() or ""
            if name or part.get_content_disposition() == "attachment":
                out.append((norm(str(name)), None))  # size: serialised again by the stdlib, not comparable
            for inner in payload:
                _files(inner, out, depth + 1)
            return
        if part.get_content_maintype() == "multipart":
            for sub in payload:
                _files(sub, out, depth + 1)
            return
        # other message/* types with list payloads (delivery-status, external-body): files
        out.append((norm(str(part.get_filename() or "")), None))
        return
    name = part.get_filename() or ""
    disp = part.get_content_disposition()
    if name or disp == "attachment" or ctype not in TEXT_TYPES:
        if part.get_content_maintype() == "multipart":
            return  # a multipart with no boundary: we read it as text
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        out.append((norm(str(name)), None if ctype.startswith("message/") else size))


def reference(data: bytes) -> dict[str, Any]:
    """subject, from/to/cc emails, date (None: unparseable) and [(file name, decoded size)], where readable."""
    ref: dict[str, Any] = {}
    try:
        msg = _PARSER.parsebytes(data)
    except Exception:  # noqa: BLE001
        return ref
    try:
        s = msg["subject"]
        ref["subject"] = norm(str(s)) if s is not None else ""
    except Exception:  # noqa: BLE001
        pass
    for role in ("from", "to", "cc"):
        try:
            ref[role] = [a.addr_spec.lower() for h in (msg.get_all(role) or []) for a in h.addresses
                         if a.addr_spec and a.addr_spec != "<>"]
        except Exception:  # noqa: BLE001
            pass
    try:
        h = msg["date"]
        d = h.datetime if h is not None else None
        if d is not None:
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.timezone.utc)
            ref["date"] = int(d.timestamp()) if 1900 <= d.astimezone(dt.timezone.utc).year <= 2200 else None
        else:
            ref["date"] = None
    except Exception:  # noqa: BLE001
        pass
    try:
        files: list[tuple[str, int | None]] = []
        _files(msg, files)
        ref["files"] = files
    except Exception:  # noqa: BLE001
        pass
    return ref


def ours(rec: Record) -> dict[str, Any]:
    """The same fields from a Record, in the reference's shape."""
    return {
        "subject": norm(rec.subject),
        "from": rec.emails("from"),
        "to": rec.emails("to"),
        "cc": rec.emails("cc"),
        "date": rec.date if rec.date_source == "header" else None,
        "files": [(norm(f.file_name), None if f.type.startswith("message/") else f.size)
                  for f in rec.files],
    }


def differences(rec: Record, ref: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """field -> (ours, reference) for every readable field that disagrees."""
    mine = ours(rec)
    return {k: (mine[k], v) for k, v in ref.items() if mine[k] != v}
