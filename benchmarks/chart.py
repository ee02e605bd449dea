"""The PNG of a `benchmarks.compare` result: ingest throughput and query latency per tool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.peers import QUESTION_KEYS  # noqa: E402


def draw(result: dict[str, Any], path: Path) -> None:
    """Two panels: messages indexed per second (bars), and p50 latency of each question (grouped bars, log
    scale) for every tool as a whole process, plus mailindex through its Python API."""
    tools = list(result["tools"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [1, 2.4]})
    rates = [result["tools"][t]["ingest"]["msgs_per_s"] for t in tools]
    bars = left.bar(tools, rates, color=[f"C{i}" for i in range(len(tools))])
    left.bar_label(bars, labels=[f"{r:,.0f}" for r in rates], fontsize=8)
    left.set_title("full ingest (median), messages/s")
    left.set_ylabel("messages per second")

    series = [(t, result["tools"][t]["queries"]) for t in tools]
    if "mailindex_api" in result:
        series.append(("mailindex API", result["mailindex_api"]))
    width = 0.8 / len(series)
    for i, (name, answers) in enumerate(series):
        xs = [k + i * width for k in range(len(QUESTION_KEYS))]
        ys = [answers[q]["p50_ms"] if answers[q]["supported"] else 0 for q in QUESTION_KEYS]
        right.bar(xs, ys, width, label=name, color=f"C{i}")
        for x, q in zip(xs, QUESTION_KEYS):
            if not answers[q]["supported"]:
                right.text(x, 0.02, "n/a", ha="center", fontsize=7, rotation=90,
                           transform=right.get_xaxis_transform())
    right.set_xticks([k + width * (len(series) - 1) / 2 for k in range(len(QUESTION_KEYS))])
    right.set_xticklabels([q.replace("_", "\n") for q in QUESTION_KEYS], fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("p50 ms (log scale)")
    right.set_title("query latency, p50 (whole process; API in-process)")
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    corpus = result["corpus"]
    fig.suptitle(f"{Path(corpus['path']).name}: {corpus['messages']:,} messages, {corpus['bytes'] / 1e6:,.0f} MB, "
                 f"{result['machine']['cpus']} CPUs, {result['started']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
