"""Run a compiled query: count, one page, or every hit, ordered by the unique sort key."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import tantivy
from tantivy import Occur, Order, Query

from mailindex.errors import IndexStoreError
from mailindex.index import schema as S
from mailindex.index.tantivy_index import TantivyIndex

_BATCH = 5000
# A page is first looked for among the newest (or oldest) WINDOW x (offset + limit) messages: a broad
# query (a common word, a folder) is then matched against a few thousand documents, not all of them.
# A narrow one pays one extra search (~0.3 ms on 100,000 messages).
WINDOW = 32

KeyAt = Callable[[int, bool], "int | None"]  # (rank, desc) -> sort key of the message at that rank


class Searcher:
    """Searches the last committed state of a TantivyIndex; never blocks on the writer.

    Also the query planner's `TermProbe`: term counts, term lists and stored
    values of small candidate sets.

    `key_at` (the store's `sort_key_at`) lets `page` try a window of the newest messages first; it is a
    hint only: a window that holds fewer hits than the page needs is dropped for the whole index.
    """

    def __init__(self, index: TantivyIndex, key_at: KeyAt | None = None) -> None:
        self._index = index
        self.schema = index.schema
        self._key_at = key_at

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

    def page(self, query: Query, limit: int, offset: int, desc: bool) -> list[int]:
        """Sort keys of one page of hits."""
        span = WINDOW * (offset + limit)
        edge = self._key_at(span, desc) if self._key_at and span < self._index.searcher().num_docs else None
        if edge is not None:  # every message past the edge sorts after every one inside the window
            lower, upper = (edge, None) if desc else (None, edge)
            window = Query.range_query(self.schema, S.SORT_KEY, tantivy.FieldType.Integer, lower, upper)
            keys = self._page(Query.boolean_query([(Occur.Must, query), (Occur.Must, window)]), limit, offset, desc)
            if len(keys) == limit:
                return keys
        return self._page(query, limit, offset, desc)

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
