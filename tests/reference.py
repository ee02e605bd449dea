"""The Context.IO list semantics written the simple way, over generated Specs.

Nothing here comes from mailindex: identity, order and special-use names are
re-derived from the README's words with the standard library, so an error in
the implementation's rule cannot hide in the oracle.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Mapping

from tests.strategies import OWNER, Spec

# README "How it works": the header fields stores rewrite, dropped from the identity.
STORE_HEADERS = {"status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase", "x-mozilla-status",
                 "x-mozilla-status2", "x-mozilla-keys", "content-length", "lines", "x-gmail-labels", "x-evolution"}

# README: RFC 6154 names of folders on disk, by the last component of the name.
SPECIAL_USE = {
    **dict.fromkeys(["sent", "sent items", "sent messages", "sent mail", "sent_mail", "_sent_mail", "sent_items"],
                    "\\Sent"),
    **dict.fromkeys(["drafts", "draft"], "\\Drafts"),
    **dict.fromkeys(["trash", "deleted items", "deleted messages", "deleted_items"], "\\Trash"),
    **dict.fromkeys(["junk", "junk e-mail", "junk email", "spam"], "\\Junk"),
    **dict.fromkeys(["archive", "archives"], "\\Archive"),
    **dict.fromkeys(["all mail", "all_mail"], "\\All"),
    **dict.fromkeys(["starred", "flagged"], "\\Flagged"),
    "important": "\\Important",
}


def identity_bytes(raw: bytes) -> bytes:
    """The README's identity rule: fold CRLF to LF, split the header (up to the first empty line) into
    fields, a line with its continuation lines, and drop the fields stores rewrite."""
    data = raw.replace(b"\r\n", b"\n")
    end = data.find(b"\n\n")
    head, body = (data, b"") if end < 0 else (data[: end + 1], data[end + 1 :])
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    return b"".join(f for f in fields if f.split(b":", 1)[0].decode("latin-1").lower() not in STORE_HEADERS
                    or b":" not in f) + body


def message_id(raw: bytes) -> str:
    """SHA-256 of the identity bytes, its first 24 hex digits."""
    return hashlib.sha256(identity_bytes(raw)).hexdigest()[:24]


def symbolic_name(folder: str) -> str | None:
    if folder.upper() == "INBOX":
        return "\\Inbox"
    return SPECIAL_USE.get(folder.rsplit("/", 1)[-1].strip().lower())


def _in_domain(address: str, domain: str) -> bool:
    host = address.rpartition("@")[2]
    return host == domain or host.endswith("." + domain)


def _matches_any(addresses: list[str], wanted: list[str]) -> bool:
    for w in wanted:
        if "@" in w and not w.startswith("@"):
            if w in addresses:
                return True
        elif any(_in_domain(a, w.lstrip("@")) for a in addresses):
            return True
    return False


def _name_matches(pattern: str, name: str) -> bool:
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        return re.search(pattern[1:-1], name, re.IGNORECASE) is not None
    return fnmatch.fnmatchcase(name.lower(), pattern.lower().replace("[^", "[!"))


def _folder_matches(spec: Spec, value: str) -> bool:
    if value.startswith("\\"):
        if value.lower() in ("\\flagged", "\\starred"):  # README: one name, and flagged messages too
            return spec.flagged or any(symbolic_name(f) in ("\\Flagged", "\\Starred") for f in spec.folders)
        return any(symbolic_name(f) == value for f in spec.folders)
    norm = lambda f: "INBOX" if f.upper() == "INBOX" else f  # noqa: E731
    return any(norm(f) == norm(value) for f in spec.folders)


def matches(spec: Spec, q: Mapping[str, object], date_indexed: int, source: str = "box") -> bool:
    lower = lambda v: [x.strip().lower() for x in str(v).split(",")]  # noqa: E731
    recipients = spec.to + spec.cc + spec.bcc
    if "email" in q:
        x = lower(q["email"])
        owner_involved = spec.sender == OWNER or OWNER in recipients
        if not (_matches_any([spec.sender], x) or (_matches_any(recipients, x) and owner_involved)):
            return False
    for role, values in (("from", [spec.sender]), ("to", spec.to), ("cc", spec.cc), ("bcc", spec.bcc)):
        if role in q and not set(lower(q[role])) & set(values):
            return False
    if "subject" in q:
        s = str(q["subject"])
        if len(s) >= 2 and s.startswith("/") and s.endswith("/"):
            if re.search(s[1:-1], spec.subject) is None:
                return False
        elif s.casefold() not in spec.subject.casefold():
            return False
    if "folder" in q and not _folder_matches(spec, str(q["folder"])):
        return False
    if "source" in q and q["source"] != source:
        return False
    if any(k in q for k in ("file_name", "file_size_min", "file_size_max")):
        lo, hi = q.get("file_size_min", 0), q.get("file_size_max", 10**12)
        if not any((("file_name" not in q) or _name_matches(str(q["file_name"]), name)) and lo <= size <= hi
                   for name, size in spec.files):
            return False
    if "date_after" in q and not spec.date > int(q["date_after"]):  # type: ignore[arg-type]
        return False
    if "date_before" in q and not spec.date < int(q["date_before"]):  # type: ignore[arg-type]
        return False
    if "indexed_after" in q and not date_indexed > int(q["indexed_after"]):  # type: ignore[arg-type]
        return False
    if "indexed_before" in q and not date_indexed < int(q["indexed_before"]):  # type: ignore[arg-type]
        return False
    return True


def sort_key(spec: Spec) -> tuple[int, str]:
    """README "Order": date, then the first five hex digits of the message id."""
    return spec.date, message_id(spec.to_bytes())[:5]


def answer(box: list[Spec], q: Mapping[str, object], date_indexed: int) -> list[str]:
    """Message ids of the page the list call must return, in order."""
    hits = [s for s in box if matches(s, q, date_indexed)]
    hits.sort(key=sort_key, reverse=q.get("sort_order", "desc") == "desc")
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 100))  # type: ignore[arg-type]
    return [message_id(s.to_bytes()) for s in hits[offset : offset + limit]]
