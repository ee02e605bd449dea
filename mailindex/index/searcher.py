"""Run a compiled query: count, one page, or every hit, ordered by the unique sort key."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import tantivy
from tantivy import Occur, Order, Query

from mailindex.errors import IndexStoreError
from mailindex.index import schema as S
from mailindex.index.tantivy_index import TantivyIndex

_BATCH = 5000
# A page of a full-text question is first looked for among the messages of the newest (or oldest)
# sort-key buckets that hold WINDOW x (offset + limit) of them: a common word or a phrase is then matched
# against a few thousand documents, not all of them. The window is a hint only: one that holds fewer
# hits than the page needs is dropped for the whole index, which evaluates the question twice; so the
# Context.IO filters, often narrow and with costly automata (file names, regexes), are asked once.
WINDOW = 32


class Searcher:
    """Searches the last committed state of a TantivyIndex; never blocks on the writer.

    Also the query planner's `TermProbe`: term counts, term lists and stored
    values of small candidate sets.
    """

    def __init__(self, index: TantivyIndex) -> None:
        self._index = index
        self.schema = index.schema
        self._buckets: tuple[object, list[tuple[str, int]]] = (None, [])  # (generation, [(term, docs)])

    def _search(self, query: Query, limit: int, offset: int, desc: bool, count: bool) -> tantivy.SearchResult:
        if limit < 1:  # Tantivy panics on limit=0
            raise ValueError("limit must be positive")
        searcher = self._index.searcher()
        # Tantivy reserves room for offset + limit hits up front: past the number of documents, that is an
        # allocation that aborts the process (an offset of 10**12), and the answer is the same without it.
        docs = max(1, searcher.num_docs)
        limit, offset = min(limit, docs), min(offset, docs)
        try:
            return searcher.search(query, limit=limit, count=count, order_by_field=S.SORT_KEY, offset=offset,
                                   order=Order.Desc if desc else Order.Asc)
        except ValueError as exc:
            raise IndexStoreError(f"search failed: {exc}") from exc

    def count(self, query: Query) -> int:
        return int(self._search(query, 1, 0, True, True).count or 0)  # type: ignore[attr-defined]  # not in the stub

    def page(self, query: Query, limit: int, offset: int, desc: bool,
             narrowed: Callable[[Query], Query] | None = None) -> list[int]:
        """Sort keys of one page of hits. Given `narrowed` (the question compiled for a window it is
        matched inside), the page is looked for first in a window of the newest (oldest) messages."""
        window = None if narrowed is None else self._window(WINDOW * (offset + limit), desc)
        if narrowed is not None and window is not None:  # every message outside sorts after every one inside
            inside = Query.boolean_query([(Occur.Must, narrowed(window)), (Occur.Must, window)])
            keys = self._page(inside, limit, offset, desc)
            if len(keys) == limit:
                return keys
        return self._page(query, limit, offset, desc)

    def _window(self, span: int, desc: bool) -> Query | None:
        """The newest (oldest) buckets that hold at least `span` documents; None if that is all of them."""
        searcher = self._index.searcher()
        if self._buckets[0] != self._index.generation:  # listing them costs ~0.15 ms: once per commit
            self._buckets = (self._index.generation, sorted(searcher.terms_with_prefix(S.SORT_BUCKET, "")))
        buckets = self._buckets[1][::-1] if desc else self._buckets[1]
        chosen, docs = [], 0
        for term, count in buckets[:-1]:
            chosen.append(term)
            docs += count
            if docs >= span:
                return Query.term_set_query(self.schema, S.SORT_BUCKET, chosen)
        return None

    def _page(self, query: Query, limit: int, offset: int, desc: bool) -> list[int]:
        return [key for key, _ in self._search(query, limit, offset, desc, False).hits]

    def iter_all(self, query: Query, desc: bool) -> Iterator[int]:
        """Sort keys of every hit, in order, fetched in batches after the last key seen."""
        last: int | None = None
        while True:
            q = query
            if last is not None:
                lower, upper = (None, last - 1) if desc else (last + 1, None)
                after = Query.range_query(self.schema, S.SORT_KEY, tantivy.FieldType.Integer, lower, upper)
                q = Query.boolean_query([(Occur.Must, query), (Occur.Must, after)])
            keys = self._page(q, _BATCH, 0, desc)
            yield from keys
            if len(keys) < _BATCH:
                return
            last = keys[-1]

    def doc_freq(self, field: str, term: str) -> int:
        return int(self._index.searcher().doc_freq(field, term))

    def terms(self, field: str) -> list[str]:
        return [term for term, _ in self._index.searcher().terms_with_prefix(field, "")]

    def stored(self, query: Query, field: str, cap: int) -> list[str] | None:
        searcher = self._index.searcher()
        hits = searcher.search(query, limit=cap + 1).hits
        if len(hits) > cap:
            return None
        return [searcher.doc(address).get_first(field) or "" for _, address in hits]
