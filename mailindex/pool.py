"""The local process pool of a large sync: worker processes run the pure prepare stage on chunks of
locations, in order, with a bounded number of chunks in flight."""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import multiprocessing
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool

from mailindex.killpoints import kill_point
from mailindex.prepare import Fault, Prepared, SourceSpec, Work, init_worker, prepare_window

CHUNKS_AHEAD = 6  # tasks in flight: enough to keep the workers busy, few enough to bound memory


class Pool:
    """Worker processes that prepare chunks of work, in order, with a bounded number in flight.

    A worker that dies (a crash in a C library, the OOM killer) breaks the whole pool and
    every chunk in flight with it: a new pool retries those messages one at a time, so
    only a message that kills a worker again is lost, and it comes back as an error.
    """

    def __init__(self, spec: SourceSpec, fault: Fault, workers: int) -> None:
        self.spec, self.fault, self.workers = spec, fault, workers
        self.executor = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("forkserver"), initializer=init_worker,
            initargs=(self.spec, self.fault))

    def _restart(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.executor = self._start()

    def _one_by_one(self, works: list[Work]) -> Iterator[Prepared]:
        for w in works:
            try:
                [prepared] = self.executor.submit(prepare_window, [w]).result()
                prepared.work = w.without_data()
            except BrokenProcessPool:
                self._restart()
                prepared = Prepared(w.without_data(),
                                    error="worker died: the process preparing this message ended abruptly")
            yield prepared

    def _submit(self, chunk: list[Work]) -> concurrent.futures.Future[list[Prepared]]:
        """The chunk's future; a pool that broke since the last result fails it, like the chunks in flight."""
        try:
            return self.executor.submit(prepare_window, chunk)
        except BrokenProcessPool as e:
            future: concurrent.futures.Future[list[Prepared]] = concurrent.futures.Future()
            future.set_exception(e)
            return future

    def run(self, chunks: Iterator[list[Work]]) -> Iterator[Prepared]:
        ahead: collections.deque[tuple[list[Work], concurrent.futures.Future[list[Prepared]]]] = collections.deque()
        try:
            while True:
                for chunk in itertools.islice(chunks, CHUNKS_AHEAD - len(ahead)):
                    ahead.append((chunk, self._submit(chunk)))
                if not ahead:
                    return
                done, future = ahead.popleft()
                kill_point("sync.pool-running")
                try:
                    result = future.result()
                except BrokenProcessPool:
                    kill_point("sync.pool-broken")
                    lost = [done, *(c for c, _ in ahead)]
                    ahead.clear()
                    self._restart()
                    for works in lost:
                        yield from self._one_by_one(works)
                    continue
                for w, prepared in zip(done, result):
                    prepared.work = w.without_data()
                    yield prepared
        finally:
            self.executor.shutdown(wait=True, cancel_futures=True)

