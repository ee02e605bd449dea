"""The Context.IO list semantics written the simple way, over generated Specs."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from mailindex.folders import symbolic_name
from mailindex.index.schema import SORT_TIE_BITS
from mailindex.record import message_id_for
from tests.strategies import OWNER, Spec


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
        if value.lower() in ("\\flagged", "\\starred") and spec.flagged:
            return True
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


def sort_key(spec: Spec) -> int:
    """Date, then the message id's first 20 bits: the documented stable tie-break."""
    mid = message_id_for(spec.to_bytes())
    return (spec.date << SORT_TIE_BITS) | (int(mid[:5], 16) & ((1 << SORT_TIE_BITS) - 1))


def answer(box: list[Spec], q: Mapping[str, object], date_indexed: int) -> list[str]:
    """Message ids of the page the list call must return, in order."""
    hits = [s for s in box if matches(s, q, date_indexed)]
    hits.sort(key=sort_key, reverse=q.get("sort_order", "desc") == "desc")
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 100))  # type: ignore[arg-type]
    return [message_id_for(s.to_bytes()) for s in hits[offset : offset + limit]]
