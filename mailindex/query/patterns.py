"""User patterns (subject `/regex/`, file_name glob or `/regex/`) -> Tantivy regexes.

Accepted regex dialect: Python `re` syntax without the features that need
backtracking (backreferences, lookahead/lookbehind, conditionals); `^` and
`$` only at the start and end. Patterns run on Tantivy's finite automaton,
so no pattern can take super-linear time. A pattern is searched anywhere in
the value unless anchored.
"""

from __future__ import annotations

import re

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _parser
except ImportError:  # pragma: no cover
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

from mailindex.errors import QueryError

_UNSUPPORTED = {
    _c.GROUPREF: "backreferences",
    _c.GROUPREF_EXISTS: "conditional groups",
    _c.ASSERT: "lookahead/lookbehind",
    _c.ASSERT_NOT: "negative lookahead/lookbehind",
}


_GLOBAL_FLAGS = re.compile(r"^\(\?[a-zA-Z]+\)")


def is_regex(value: str) -> bool:
    return len(value) >= 2 and value.startswith("/") and value.endswith("/")


def _check(param: str, user: str, items: list[tuple[object, object]], top: bool, n: int) -> None:
    for i, (op, av) in enumerate(items):
        if op in _UNSUPPORTED:
            raise QueryError(param, user, f"{_UNSUPPORTED[op]} are not supported (patterns run on a finite automaton)")
        if op is _c.AT:
            at_edge = top and ((av in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING) and i == 0)
                               or (av in (_c.AT_END, _c.AT_END_STRING) and i == n - 1))
            if not at_edge:
                raise QueryError(param, user, "anchors (^, $, \\b, \\A, \\Z) are only supported at the very start "
                                              "or end of the pattern")
        for sub in _subpatterns(op, av):
            _check(param, user, list(sub), False, len(sub))


def _subpatterns(op: object, av: object) -> list[_parser.SubPattern]:
    if op is _c.SUBPATTERN:
        return [av[-1]]  # type: ignore[index]
    if op is _c.BRANCH:
        return list(av[1])  # type: ignore[index]
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        return [av[2]]  # type: ignore[index]
    if op is _c.ATOMIC_GROUP:
        return [av]  # type: ignore[list-item]
    return []


def user_regex(param: str, pattern: str) -> tuple[str, bool, bool]:
    """Validate a user regex; return (body without edge anchors, anchored_start, anchored_end)."""
    try:
        parsed = _parser.parse(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise QueryError(param, f"/{pattern}/", f"invalid regular expression: {exc.msg}{where}") from None
    items = list(parsed)
    _check(param, f"/{pattern}/", items, True, len(items))
    start = bool(items) and items[0][0] is _c.AT
    end = bool(items) and items[-1][0] is _c.AT and len(items) > (1 if start else 0)
    flags = _GLOBAL_FLAGS.match(pattern)
    head = flags.group(0) if flags else ""
    body = pattern[len(head):]
    if start:
        body = body[2:] if body.startswith("\\A") else body[1:]
    if end:
        body = body[:-2] if body.endswith(("\\Z", "\\z")) else body[:-1]
    return head + body, start, end


def anywhere(body: str, start: bool, end: bool, filler: str = ".*") -> str:
    """A whole-term Tantivy regex that finds `body` anywhere unless anchored.

    Leading global flags such as (?i) stay in front, where both dialects want them.
    """
    flags = _GLOBAL_FLAGS.match(body)
    head = flags.group(0) if flags else ""
    return f"{head}{'' if start else filler}(?:{body[len(head):]}){'' if end else filler}"


def glob_to_regex(param: str, glob: str) -> str:
    """Shell wildcards (*, ?, [...], [!...]) -> a regex matching the whole name."""
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            start = i - 1
            j = i
            if j < n and glob[j] in "!^":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                raise QueryError(param, glob, f"unclosed '[' at position {i - 1}")
            inner = glob[i:j]
            i = j + 1
            negate = inner[:1] in ("!", "^")
            if negate:
                inner = inner[1:]
            inner = inner.replace("\\", "\\\\").replace("[", "\\[").replace("&", "\\&").replace("~", "\\~")
            cls = f"[{'^' if negate else ''}{inner}]"
            try:
                re.compile(cls)
            except re.error as exc:
                raise QueryError(param, glob, f"invalid character class at position {start}: {exc.msg}") from None
            out.append(cls)
        else:
            out.append(re.escape(c))
    return "".join(out)


def int_range_regex(lo: int, hi: int, digits: int) -> str:
    """A regex matching zero-padded `digits`-wide integers in [lo, hi]."""
    if lo > hi:
        return "(?:\\x00\\x01)"  # matches nothing a file size can be
    parts: list[str] = []

    def rec(prefix: str, lo_s: str, hi_s: str) -> None:
        if not lo_s:
            parts.append(prefix)
            return
        if lo_s == "0" * len(lo_s) and hi_s == "9" * len(hi_s):
            parts.append(prefix + f"[0-9]{{{len(lo_s)}}}")
            return
        a, b = int(lo_s[0]), int(hi_s[0])
        if a == b:
            rec(prefix + lo_s[0], lo_s[1:], hi_s[1:])
            return
        rest = len(lo_s) - 1
        rec(prefix + lo_s[0], lo_s[1:], "9" * rest)
        if b - a > 1:
            mid = f"[{a + 1}-{b - 1}]" if b - a > 2 else f"{a + 1}"
            parts.append(prefix + mid + (f"[0-9]{{{rest}}}" if rest else ""))
        rec(prefix + hi_s[0], "0" * rest, hi_s[1:])

    rec("", f"{lo:0{digits}d}", f"{hi:0{digits}d}")
    return "(?:" + "|".join(parts) + ")"
