"""The index the latency benchmarks run on: built once per corpus, then reused."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from mailindex import MailIndex


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
    mx = MailIndex(where)
    if "bench" not in {s["label"] for s in mx.sources()}:
        print(f"indexing {corpus} into {where} (once) ...", file=sys.stderr)
        mx.add_source("bench", corpus)
    mx.sync("bench")
    return mx, corpus


def percentiles(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {"p50_ms": statistics.median(ordered), "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]}
