"""The query language: text as people type it -> a tree of typed conditions.

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*        # AND binds tighter than OR
    unary   := ("-" | "NOT") unary | "(" or ")" | term
    term    := word | word* | "a phrase" | field:value

Bare words, phrases and prefixes look in the subject, the text parts and the
attachments' text. `OR`, `AND` and `NOT` are operators only in capitals. A word
that the analyzer splits (`e-mail`, `foo.bar`) is the phrase of its parts.
Every problem is one QueryError of parameter `q` naming the position (the
first character is 1). Nothing here touches an index: the compiler
(`full_text`) turns the tree into a Tantivy query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple, Union

from mailindex.errors import QueryError
from mailindex.index.schema import WORD_BYTES_MAX, words_analyzer

PARAM = "q"
TEXT_PLACES = ("subject", "body", "attachment")  # a bare word's fields
ROLES = ("from", "to", "cc", "bcc")
FIELDS = (*ROLES, "email", "subject", "body", "attachment", "file", "folder", "source", "date", "size", "has", "is")
_FIELD = re.compile(r"([A-Za-z]+):")
_SIZE = re.compile(r"(\d+)([kmg]?)", re.IGNORECASE | re.ASCII)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SPECIAL = '()"'
FLAGS = ("seen", "answered", "flagged", "deleted", "draft")
_SPAN_MAX = 2**40  # seconds (35,000 years) or bytes (a TiB): far past any mail, well inside Tantivy's i64


class Words(NamedTuple):
    """Analyzed words in one of `places`: a word, a phrase (several), or a prefix of the last."""

    places: tuple[str, ...]
    words: tuple[str, ...]
    prefix: bool = False


class Pattern(NamedTuple):
    """A Context.IO filter value given as is: subject /regex/, file glob or /regex/, folder, source,
    address or domain (field `email` or a role)."""

    field: str
    value: str
    pos: int  # where it was written, for the errors its compiler may raise


class Span(NamedTuple):
    """A numeric range of `field` ("date" or "size"), both bounds inclusive; None: open."""

    field: str
    lo: int | None
    hi: int | None


class Not(NamedTuple):
    node: Node


class And(NamedTuple):
    nodes: tuple[Node, ...]


class Or(NamedTuple):
    nodes: tuple[Node, ...]


Node = Union[Words, Pattern, Span, Not, And, Or]


class Parsed(NamedTuple):
    """A query's text and its tree."""

    text: str
    root: Node

    def error(self, pos: int, problem: str) -> QueryError:
        """The one error of a problem at `pos` (0-based) of the text."""
        return _error(self.text, pos, problem)

    def has_phrase(self) -> bool:
        """Whether the tree asks for a phrase anywhere (the compiler narrows those to a window)."""
        todo: list[Node] = [self.root]
        while todo:
            node = todo.pop()
            if isinstance(node, Words) and len(node.words) > 1 and not node.prefix:
                return True
            todo.extend((node.node,) if isinstance(node, Not) else node.nodes if isinstance(node, (And, Or)) else ())
        return False


class _Token(NamedTuple):
    kind: str  # "(", ")", "OR", "AND", "NOT", "term"
    pos: int  # 0-based
    field: str | None = None
    value: str = ""
    quoted: bool = False  # a "phrase" or a /regex/: taken as written
    regex: bool = False  # a /regex/ of subject: or file:


@functools.cache
def _analyzer() -> Callable[[str], list[str]]:
    return words_analyzer().analyze


def analyze(text: str) -> list[str]:
    """The words of `text` as the index holds them (lowercase, accents folded)."""
    return list(_analyzer()(text))


def parse_query(text: str) -> Parsed:
    """The tree of `text`; QueryError (parameter `q`) naming the position of the first problem."""
    if not isinstance(text, str):
        raise QueryError(PARAM, text, "must be a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes that were not UTF-8, decoded with surrogateescape
        raise _error(text, exc.start, f"U+{ord(text[exc.start]):04X} is not text (bytes that were not UTF-8)") from None
    parser = _Parser(text, _tokens(text))
    if not parser.tokens:
        raise QueryError(PARAM, text, "is empty: give at least one word or field:value")
    node = parser.or_()
    if parser.at < len(parser.tokens):
        tok = parser.tokens[parser.at]
        raise parser.error(tok.pos, "a ')' that opens nothing" if tok.kind == ")" else f"unexpected {tok.kind}")
    return Parsed(text, node)


def _error(text: str, pos: int, problem: str) -> QueryError:
    return QueryError(PARAM, text, f"at position {pos + 1}: {problem}")


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(_Token(c, i))
            i += 1
        elif c == "-" and i + 1 < n and not text[i + 1].isspace() and text[i + 1] != ")":
            out.append(_Token("NOT", i))
            i += 1
        else:
            tok, i = _term(text, i)
            out.append(tok)
    return out


def _term(text: str, start: int) -> tuple[_Token, int]:
    field = None
    i = start
    m = _FIELD.match(text, start)
    if m:
        name, bare = m.group(1).lower(), m.end() >= len(text) or text[m.end()].isspace() or text[m.end()] == ")"
        if name in FIELDS:
            if bare:
                raise _error(text, start, f"{m.group(0)} needs a value")
            field, i = name, m.end()
        elif not bare:  # `Re:` alone is a word; `form:alice` is a typo, and an URL wants quotes
            raise _error(text, start, f"unknown field {m.group(1)!r} (quote the text to search for it); "
                                      f"known: {', '.join(FIELDS)}")
    if i < len(text) and text[i] == '"':
        end = text.find('"', i + 1)
        if end < 0:
            raise _error(text, i, "a quote that is never closed")
        return _Token("term", start, field, text[i + 1 : end], True), end + 1
    if field in ("subject", "file") and text[i] == "/":
        end = _regex_end(text, i)
        return _Token("term", start, field, text[i : end + 1], True, True), end + 1
    end = i
    while end < len(text) and not text[end].isspace() and text[end] not in _SPECIAL:
        end += 1
    word = text[i:end]
    if field is None and word in ("OR", "AND", "NOT"):
        return _Token(word, start), end
    if not word:
        if text[i] == "(":
            raise _error(text, start, f"{text[start:i]}( ... ) is not a form: write (from:a OR from:b)")
        raise _error(text, i, "a quote in the middle of a word")
    return _Token("term", start, field, word), end


def _regex_end(text: str, start: int) -> int:
    """Index of the slash closing the /regex/ opened at `start` (a backslash escapes one)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "/":
            return i
        i += 1
    raise _error(text, start, "a /regex/ that is never closed")


class _Parser:
    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text, self.tokens, self.at = text, tokens, 0

    def error(self, pos: int, problem: str) -> QueryError:
        return _error(self.text, pos, problem)

    def _peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def or_(self) -> Node:
        nodes = [self.and_()]
        while (tok := self._peek()) is not None and tok.kind == "OR":
            self.at += 1
            nodes.append(self.and_())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def and_(self) -> Node:
        nodes = [self.unary()]
        while (tok := self._peek()) is not None and tok.kind not in ("OR", ")"):
            if tok.kind == "AND":
                self.at += 1
            nodes.append(self.unary())
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def unary(self) -> Node:
        tok = self._peek()
        if tok is None:
            last = self.tokens[-1]
            raise self.error(last.pos, f"{last.kind} needs something after it")
        self.at += 1
        if tok.kind == "NOT":
            return Not(self.unary())
        if tok.kind == "(":
            node = self.or_()
            close = self._peek()
            if close is None or close.kind != ")":
                raise self.error(tok.pos, "a '(' that is never closed")
            self.at += 1
            return node
        if tok.kind == "term":
            return _condition(self.text, tok)
        raise self.error(tok.pos, f"{tok.kind} needs something before it" if tok.kind != ")" else "an empty '( )'")


def _condition(text: str, tok: _Token) -> Node:
    field, value = tok.field, tok.value
    if field in (None, "subject", "body", "attachment"):
        if tok.regex:
            return Pattern("subject", value, tok.pos)
        return _words(text, tok, TEXT_PLACES if field is None else (field,))
    # A whole address (or, for email:, @domain) is the Context.IO filter; anything else is words.
    if field in ROLES or field == "email":
        if "@" in value and not tok.quoted and (field == "email" or not value.startswith("@")):
            _address(text, tok)
            return Pattern(field, value.lower(), tok.pos)
        places = tuple(f"{r}_words" for r in (ROLES if field == "email" else (field,)))
        return _words(text, tok, places)
    if field in ("file", "folder", "source"):
        if not value.strip():
            raise _error(text, tok.pos, f"{field}: needs a value")
        return Pattern("file_name" if field == "file" else field, value, tok.pos)
    if field == "date":
        return _span(text, tok, _date_bounds)
    if field == "size":
        return _span(text, tok, _size_bounds)
    if field == "has":
        if value.lower() != "attachment":
            raise _error(text, tok.pos, "has: takes 'attachment'")
        return Span("file_size", 0, None)
    if value.lower() not in FLAGS:
        raise _error(text, tok.pos, f"is: takes one of {', '.join(FLAGS)}")
    return Pattern("flag", value.lower(), tok.pos)


def _words(text: str, tok: _Token, places: tuple[str, ...]) -> Words:
    value = tok.value
    prefix = not tok.quoted and value.endswith("*")
    words = analyze(value[:-1] if prefix else value)
    if not words:
        raise _error(text, tok.pos, f"{value!r} has no word to search for (letters or digits, "
                                    f"at most {WORD_BYTES_MAX} bytes a word)")
    if prefix and (len(words) > 1 or not value[:-1] or not value[-2].isalnum()):
        raise _error(text, tok.pos, f"{value!r}: a prefix is letters or digits followed by one '*'")
    return Words(places, tuple(words), prefix)


def _address(text: str, tok: _Token) -> None:
    v = tok.value
    if v.count("@") > 1 or v.endswith("@") or any(c.isspace() for c in v):
        raise _error(text, tok.pos, f"{v!r} is neither an email address nor @domain")


def _span(text: str, tok: _Token, bounds: Callable[[str], tuple[int | None, int | None]]) -> Span:
    assert tok.field is not None
    try:
        lo, hi = bounds(tok.value.strip())
    except ValueError as exc:  # DateSyntaxError is one
        raise _error(text, tok.pos, f"{tok.field}: {exc}") from None
    if any(b is not None and abs(b) > _SPAN_MAX for b in (lo, hi)):
        raise _error(text, tok.pos, f"{tok.field}: {tok.value!r} is out of range")
    return Span(tok.field, lo, hi)


def _date_bounds(value: str) -> tuple[int | None, int | None]:
    from mailindex.query.dates import period

    if ".." in value:
        a, _, b = value.partition("..")
        if not a and not b:
            raise ValueError("a range needs at least one end: A..B, A.. or ..B")
        return (period(a)[0] if a else None), (period(b)[1] - 1 if b else None)
    start, end = period(value)
    return start, end - 1


def _size_bounds(value: str) -> tuple[int | None, int | None]:
    for op in (">=", "<=", ">", "<"):
        if value.startswith(op):
            n = _bytes(value[len(op) :])
            return {">=": (n, None), "<=": (None, n), ">": (n + 1, None), "<": (None, n - 1)}[op]
    if ".." in value:
        a, _, b = value.partition("..")
        if not a and not b:
            raise ValueError("a range needs at least one end: A..B, A.. or ..B")
        return (_bytes(a) if a else None), (_bytes(b) if b else None)
    n = _bytes(value)
    return n, n


def _bytes(text: str) -> int:
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size: write 5000, 10k, 2M, >1M, <=10k or 1k..2M (k, M, G: of 1024)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]
