"""The index the latency benchmarks run on: built once per corpus, then reused."""

from __future__ import annotations

import shutil
import statistics
import sys
from pathlib import Path

from mailindex import IndexVersionError, MailIndex


def open_index(path: str | None, index: str | None) -> tuple[MailIndex, Path]:
    """(a MailIndex of `path` synced under the label "bench", the corpus path).

    Default corpus: the generated 100,000 messages; default index:
    benchmarks/.cache/index-<corpus name>.
    """
    if path:
        corpus = Path(path)
    else:
        from benchmarks.corpus import default_corpus

        corpus = default_corpus()
    where = Path(index) if index else Path(__file__).parent / ".cache" / f"index-{corpus.name}"
    try:
        mx = MailIndex(where)
    except IndexVersionError:  # a cache built by an older mailindex: build it again
        print(f"rebuilding {where}: it was built with an older index schema", file=sys.stderr)
        shutil.rmtree(where)
        mx = MailIndex(where)
    if "bench" not in {s["label"] for s in mx.sources()}:
        print(f"indexing {corpus} into {where} (once) ...", file=sys.stderr)
        mx.add_source("bench", corpus, sync_all_folders=1, sync_flags=1)  # every message, as before accounts
    mx.sync("bench")
    return mx, corpus


def percentiles(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {"p50_ms": statistics.median(ordered), "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]}
