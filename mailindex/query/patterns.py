"""User patterns (subject `/regex/`, file_name glob or `/regex/`) -> engine regexes.

Accepted regex dialect: Python `re` syntax without the features that need
backtracking (backreferences, lookahead/lookbehind, conditionals, possessive
quantifiers, atomic groups); `^` and `$` only at the start and end, where
`$` means the very end (Python's also matches before a final newline). Python
parses the pattern and the parse is written out again for Tantivy's finite
automaton and RE2, which both run in linear time. A pattern is searched
anywhere in the value unless anchored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _parser
except ImportError:  # pragma: no cover
    import sre_constants as _c
    import sre_parse as _parser

from mailindex.errors import QueryError

_UNSUPPORTED = {
    _c.GROUPREF: "backreferences",
    _c.GROUPREF_EXISTS: "conditional groups",
    _c.ASSERT: "lookahead/lookbehind",
    _c.ASSERT_NOT: "negative lookahead/lookbehind",
}


def is_regex(value: str) -> bool:
    return len(value) >= 2 and value.startswith("/") and value.endswith("/")


def _check(param: str, user: str, items: list[tuple[Any, Any]], top: bool, n: int) -> None:
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


def _subpatterns(op: Any, av: Any) -> list[Any]:
    if op is _c.SUBPATTERN:
        return [av[-1]]
    if op is _c.BRANCH:
        return list(av[1])
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        return [av[2]]
    if op is _c.ATOMIC_GROUP:
        return [av]
    return []


class UserRegex(NamedTuple):
    """A validated user regex, re-written from Python's own parse of it.

    `body` uses only syntax that Tantivy's automaton and RE2 read the same
    way (explicit code points, explicit classes for \\d \\s \\w, scoped flags),
    so Python's reading of the pattern is the one every engine runs.
    """

    body: str  # without the edge anchors
    start: bool  # anchored at the start (or, reversed, at the end)
    end: bool
    prefix: str  # case-sensitive literal text every match starts with, when `start`
    fixed: int  # how many items at the anchored start allow only a few characters (they prune a term walk)
    literal: bool  # the pattern is exactly `prefix`: no other syntax
    required: tuple[Any, ...]  # substrings a match must contain: str, or a tuple of alternatives (tuples of those)

    def whole(self, filler: str = "(?s:.*)") -> str:
        """A regex matching a whole value that contains a match (Tantivy matches whole terms)."""
        return f"{'' if self.start else filler}(?:{self.body}){'' if self.end else filler}"

    def search(self) -> str:
        """The same search for RE2's `search` (anchors spelled \\A and \\z)."""
        return ("\\A" if self.start else "") + f"(?:{self.body})" + ("\\z" if self.end else "")


def parse_regex(param: str, pattern: str, *, reverse: bool = False, shown: str | None = None) -> UserRegex:
    """Validate a user regex (without its slashes) and translate it.

    With `reverse`, the result matches the reversed strings (for indexes of
    reversed names, where a fixed end becomes a fixed start). `shown` is the
    value errors quote, when it is not `/pattern/`.
    """
    user = shown if shown is not None else f"/{pattern}/"
    try:
        parsed = _parser.parse(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise QueryError(param, user, f"invalid regular expression: {exc.msg}{where}") from None
    items = list(parsed)
    _check(param, user, items, True, len(items))
    start = bool(items) and items[0][0] is _c.AT
    end = bool(items) and items[-1][0] is _c.AT and len(items) > int(start)
    core = items[int(start) : len(items) - int(end)]
    flags = parsed.state.flags
    emit = _Emitter(param, user, reverse)
    body = emit.seq(core, flags)
    if reverse:
        start, end = end, start
        core = core[::-1]
    fixed = _leading(core, _narrow) if start else 0
    sensitive = not flags & re.IGNORECASE
    chars = _leading(core, lambda op, av: _literal_char(op, av) is not None) if start and sensitive else 0
    prefix = "".join(_literal_char(op, av) or "" for op, av in core[:chars])
    literal = sensitive and start and chars == len(core)
    return UserRegex(body, start, end, prefix, fixed, literal, tuple(_required(core[::-1] if reverse else core)))


def _leading(items: list[tuple[Any, Any]], test: Callable[[Any, Any], bool]) -> int:
    n = 0
    while n < len(items) and test(*items[n]):
        n += 1
    return n


def _narrow(op: Any, av: Any) -> bool:
    """A literal, a class of listed characters, an alternation, or a group of these: an automaton prunes on it."""
    if op is _c.IN:
        return all(o in (_c.LITERAL, _c.RANGE) for o, _ in av)
    if op is _c.SUBPATTERN:
        return all(_narrow(o, a) for o, a in av[-1])
    return op in (_c.LITERAL, _c.BRANCH)


def _literal_char(op: Any, av: Any) -> str | None:
    if op is _c.LITERAL:
        return chr(av)
    if op is _c.IN and len(av) == 1 and av[0][0] is _c.LITERAL:
        return chr(av[0][1])
    return None


def _required(items: list[tuple[Any, Any]]) -> list[Any]:
    """Substrings (3+ characters) every match contains; an alternation gives a tuple of alternatives."""
    out: list[Any] = []
    run: list[str] = []

    def flush() -> None:
        text = "".join(run)
        run.clear()
        if len(text.casefold()) >= 3:
            out.append(text)

    for op, av in items:
        ch = _literal_char(op, av)
        if ch is not None:
            run.append(ch)
            continue
        flush()
        if op is _c.SUBPATTERN:
            out.extend(_required(list(av[-1])))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
            out.extend(_required(list(av[2])))
        elif op is _c.BRANCH:
            alternatives = tuple(tuple(_required(list(alt))) for alt in av[1])
            if all(alternatives):
                out.append(alternatives)
    flush()
    return out


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, nxt = [], 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= 0x10FFFF:
        out.append((nxt, 0x10FFFF))
    return out


def _class_text(ranges: list[tuple[int, int]]) -> str:
    return "".join(_cp(lo) if lo == hi else f"{_cp(lo)}-{_cp(hi)}" for lo, hi in _no_surrogates(ranges))


def _no_surrogates(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for lo, hi in ranges:
        for a, b in ((lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)):
            if a <= b:
                out.append((a, b))
    return out


def _cp(cp: int) -> str:
    return f"\\x{{{cp:x}}}"


_ASCII_SPACE = [(9, 13), (32, 32)]
# Python's \\s, spelled out (the engines' own \\s differ at the edges): the ranges of str.isspace,
# written here because computing them costs every process ~3 ms (tests/query/test_patterns.py checks them).
_SPACE = [(9, 13), (28, 32), (133, 133), (160, 160), (5760, 5760), (8192, 8202), (8232, 8233), (8239, 8239),
          (8287, 8287), (12288, 12288)]
_CATEGORIES: dict[Any, tuple[str, str]] = {  # category -> (Unicode class text, ASCII class text)
    _c.CATEGORY_DIGIT: ("\\p{Nd}", "0-9"),
    _c.CATEGORY_NOT_DIGIT: ("\\P{Nd}", _class_text(_complement([(48, 57)]))),
    _c.CATEGORY_SPACE: (_class_text(_SPACE), _class_text(_ASCII_SPACE)),
    _c.CATEGORY_NOT_SPACE: (_class_text(_complement(_SPACE)), _class_text(_complement(_ASCII_SPACE))),
    _c.CATEGORY_WORD: ("\\p{L}\\p{N}_", "0-9A-Za-z_"),
}
_NOT_WORD = ("\\p{L}\\p{N}_", "0-9A-Za-z_")  # \\W: only expressible as a negated class of its own


class _Emitter:
    def __init__(self, param: str, user: str, reverse: bool) -> None:
        self.param, self.user, self.reverse = param, user, reverse

    def refuse(self, problem: str) -> QueryError:
        return QueryError(self.param, self.user, problem)

    def seq(self, items: list[tuple[Any, Any]], flags: int) -> str:
        parts = [self.item(op, av, flags) for op, av in items]
        return "".join(parts[::-1] if self.reverse else parts)

    def item(self, op: Any, av: Any, flags: int) -> str:
        fold = "(?i:{})" if flags & re.IGNORECASE else "{}"
        if op is _c.LITERAL:
            return fold.format(self.char(av))
        if op is _c.NOT_LITERAL:
            return fold.format(f"[^{self.char(av)}]")
        if op is _c.ANY:
            return "(?s:.)" if flags & re.DOTALL else "[^\\n]"
        if op is _c.IN:
            return fold.format(self.char_class(av, flags))
        if op is _c.BRANCH:
            return "(?:" + "|".join(self.seq(list(alt), flags) for alt in av[1]) + ")"
        if op is _c.SUBPATTERN:
            _, add, remove, sub = av
            return "(?:" + self.seq(list(sub), (flags | add) & ~remove) + ")"
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            lo, hi, sub = av
            return f"(?:{self.seq(list(sub), flags)}){{{lo},{'' if hi is _c.MAXREPEAT else hi}}}"
        if op in (_c.POSSESSIVE_REPEAT, _c.ATOMIC_GROUP):
            raise self.refuse("possessive quantifiers and atomic groups are not supported")
        raise self.refuse(f"unsupported regular expression syntax ({op})")

    def char(self, cp: int) -> str:
        if 0xD800 <= cp <= 0xDFFF:
            raise self.refuse(f"the surrogate code point U+{cp:04X} can never match")
        return _cp(cp)

    def char_class(self, items: list[tuple[Any, Any]], flags: int) -> str:
        ascii_only = 1 if flags & re.ASCII else 0
        negate = bool(items) and items[0][0] is _c.NEGATE
        members, not_word = [], False
        for op, av in items[int(negate) :]:
            if op is _c.LITERAL:
                members.append(self.char(av))
            elif op is _c.RANGE:
                members.append(_class_text([av]))
            elif op is _c.CATEGORY and av is _c.CATEGORY_NOT_WORD:
                not_word = True
            elif op is _c.CATEGORY and av in _CATEGORIES:
                members.append(_CATEGORIES[av][ascii_only])
            else:
                raise self.refuse(f"unsupported item in a character class ({op} {av})")
        word = _NOT_WORD[ascii_only]
        if not not_word:
            body = "".join(members)
            return f"[{'^' if negate else ''}{body}]" if body else ("(?s:.)" if negate else "[^\\x{0}-\\x{10ffff}]")
        if negate:
            if members:
                raise self.refuse("\\W together with other characters inside [^...] is not supported")
            return f"[{word}]"
        return f"(?:[^{word}]|[{''.join(members)}])" if members else f"[^{word}]"


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
