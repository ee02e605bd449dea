"""Validate Context.IO message-list parameters into Filters, Page and Include.

Every problem raises QueryError naming the parameter; nothing unvalidated
reaches Tantivy (a `limit` of 0, for one, would make it panic).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from mailindex.errors import QueryError

if TYPE_CHECKING:
    from mailindex.query.language import Parsed

MAX_LIMIT = 100
ADDRESS_PARAMS = ("email", "to", "from", "cc", "bcc")
TIME_PARAMS = ("date_before", "date_after", "indexed_before", "indexed_after")
FILTER_PARAMS = (*ADDRESS_PARAMS, "subject", "folder", "source", "file_name", "file_size_min", "file_size_max",
                 *TIME_PARAMS, "q")
PAGE_PARAMS = ("sort_order", "limit", "offset")
INCLUDE_PARAMS = ("include_thread_size", "include_body", "body_type", "include_headers", "include_flags",
                  "include_source")
MESSAGE_LIST_PARAMS = FILTER_PARAMS + PAGE_PARAMS + INCLUDE_PARAMS
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_ACCOUNT_ID = re.compile(r"[0-9a-f]{24}")
_TS_MIN, _TS_MAX = -(2**40), 2**40  # far beyond any real date; keeps integers inside Tantivy's i64


class Filters(NamedTuple):
    """Validated filters; address values lowercased, each list an OR."""

    email: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    from_: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str | None = None
    folder: str | None = None
    source: str | None = None
    file_name: str | None = None
    file_size_min: int | None = None
    file_size_max: int | None = None
    date_before: int | None = None
    date_after: int | None = None
    indexed_before: int | None = None
    indexed_after: int | None = None
    q: Parsed | None = None  # the query language's text and tree (mailindex.query.language)


class Page(NamedTuple):
    sort_order: str = "desc"
    limit: int = MAX_LIMIT
    offset: int = 0


class Include(NamedTuple):
    """Which extra parts of each message to return."""

    body: bool = False
    body_type: str | None = None
    headers: str | None = None  # None, "1" (parsed) or "raw"
    flags: bool = False
    source: bool = False
    thread_size: bool = False


def string_param(name: str, value: Any) -> str:
    """A str that is valid Unicode: a lone surrogate (bytes that were not UTF-8, decoded with
    surrogateescape) can match nothing the index holds, and SQLite and Tantivy would refuse it raw."""
    if not isinstance(value, str):
        raise QueryError(name, value, "must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError(name, value, f"is not valid Unicode text (U+{ord(value[exc.start]):04X} at "
                                      f"position {exc.start}: bytes that were not UTF-8)") from None
    return value


def account_id_param(value: Any) -> str:
    """An account id (24 hex digits, any case), lowercased."""
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value.strip().lower()):
        raise QueryError("id", value, "must be an account id: 24 hexadecimal characters")
    return value.strip().lower()


def text_param(name: str, value: Any) -> str:
    value = string_param(name, value)
    if not value.strip():
        raise QueryError(name, value, "must not be empty")
    return value.strip()


def name_param(name: str, value: Any, longest: int = 200) -> str:
    """A person's name (may be empty), trimmed."""
    value = string_param(name, value)
    if len(value) > longest:
        raise QueryError(name, value[:20] + "…", f"must be at most {longest} characters")
    return value.strip()


def email_list(name: str, value: str | Iterable[str] | None) -> list[str]:
    """Validated, lowercased, de-duplicated addresses from "a@x, b@y" or a list (None: none)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        address = string_param(name, item).strip().lower()
        if not _EMAIL.match(address):
            raise QueryError(name, item, "is not an email address")
        if address not in out:
            out.append(address)
    return out


def flag_param(name: str, value: Any) -> int:
    """A 0/1 option (booleans accepted)."""
    return int_param(name, int(value) if isinstance(value, bool) else value, 0, 1)


def int_param(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An integer within [lo, hi]; without bounds, within the 64-bit signed range that SQLite and Tantivy
    take (a larger Python int would raise OverflowError deep inside them)."""
    lo = -(2**63) if lo is None else lo
    hi = 2**63 - 1 if hi is None else hi
    if isinstance(value, bool):
        raise QueryError(name, value, "must be an integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise QueryError(name, value, "must be an integer") from None
    if not isinstance(value, int):
        raise QueryError(name, value, "must be an integer")
    if value < lo:
        raise QueryError(name, value, f"must be at least {lo}")
    if value > hi:
        raise QueryError(name, value, f"must be at most {hi}")
    return value


def _flag(name: str, value: Any) -> bool:
    if value in (True, 1, "1", "true", "yes"):
        return True
    if value in (False, 0, "0", "false", "no", None):
        return False
    raise QueryError(name, value, "must be 0 or 1")


def _addresses(name: str, value: Any) -> tuple[str, ...]:
    items = tuple(v.strip().lower() for v in text_param(name, value).split(","))
    if any(not v for v in items):
        raise QueryError(name, value, "has an empty item in its comma-separated list")
    for v in items:
        if name == "email":
            if v.count("@") > 1 or v.endswith("@") or (v.startswith("@") and "." not in v and len(v) < 2):
                raise QueryError(name, value, f"{v!r} is neither an email address nor a domain")
        elif "@" not in v or v.startswith("@") or v.endswith("@"):
            raise QueryError(name, value, f"{v!r} is not an email address")
    return items


def _slashed(name: str, value: str) -> None:
    if value == "//":
        raise QueryError(name, value, "the regular expression between the slashes is empty")


def known_params(params: Mapping[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """`params` without the ones given as None; QueryError naming the first one not in `allowed`."""
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise QueryError(unknown[0], params[unknown[0]], f"unknown parameter; known: {', '.join(allowed)}")
    return {k: v for k, v in params.items() if v is not None}


def parse_params(params: Mapping[str, Any], allowed: tuple[str, ...] = MESSAGE_LIST_PARAMS,
                 ) -> tuple[Filters, Page, Include]:
    """Validate Context.IO message list parameters (Python names: `from`, `date_after`, ...)."""
    p = known_params(params, allowed)
    f: dict[str, Any] = {}
    for name in ADDRESS_PARAMS:
        if name in p:
            f["from_" if name == "from" else name] = _addresses(name, p[name])
    for name in ("subject", "folder", "source", "file_name"):
        if name in p:
            f[name] = text_param(name, p[name])
            _slashed(name, f[name])
    for name in ("file_size_min", "file_size_max"):
        if name in p:
            f[name] = int_param(name, p[name], 0, 10**12)
    for name in TIME_PARAMS:
        if name in p:
            f[name] = int_param(name, p[name], _TS_MIN, _TS_MAX)
    if "q" in p:
        from mailindex.query.language import parse_query

        f["q"] = parse_query(p["q"])  # it refuses what is not text, naming the position
    order = p.get("sort_order", "desc")
    if order not in ("asc", "desc"):
        raise QueryError("sort_order", order, "must be 'asc' or 'desc'")
    page = Page(
        sort_order=order,
        limit=int_param("limit", p.get("limit", MAX_LIMIT), 1, MAX_LIMIT),
        offset=int_param("offset", p.get("offset", 0), 0),
    )
    headers = p.get("include_headers", 0)
    if headers in (0, "0", False):
        headers = None
    elif headers in (1, "1", True):
        headers = "1"
    elif headers != "raw":
        raise QueryError("include_headers", headers, "must be 0, 1 or 'raw'")
    body_type = text_param("body_type", p["body_type"]).lower() if "body_type" in p else None
    include = Include(
        body=_flag("include_body", p.get("include_body")),
        body_type=body_type,
        headers=headers,
        flags=_flag("include_flags", p.get("include_flags")),
        source=_flag("include_source", p.get("include_source")),
        thread_size=_flag("include_thread_size", p.get("include_thread_size")),
    )
    return Filters(**f), page, include
