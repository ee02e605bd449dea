"""Query latency: p50/p95 of every filter type and realistic combinations, limit 100.

    python -m benchmarks.query [PATH] [--index DIR] [--repeat N] [--json]

Builds (or reuses) an index of PATH (default: the generated 100,000-message
corpus) and times `messages.list(..., limit=100)` including building the
Python result objects, for the Context.IO filters and for the query language
(`q`). Values are drawn from the indexed mail itself, so the queries hit.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
import time
from typing import Any

from benchmarks.bench_index import open_index, percentiles
from mailindex import MailIndex


def _pick_values(mx: MailIndex, rng: random.Random) -> dict[str, Any]:
    sample = mx.messages.list(limit=100, offset=rng.randrange(0, max(mx.messages.count() - 100, 1)))
    with_files = list(mx.messages.iter(file_size_min=1))[:200] or [sample[0]]
    m = rng.choice(sample)
    sender = m["addresses"]["from"]["email"]
    word = max((w for s in sample for w in s["subject"].split() if w.isalpha()), key=len, default="the")
    dates = sorted(s["date"] for s in sample)
    f = rng.choice(with_files)["files"][0]
    ext = f["file_name"].rpartition(".")[2] or "pdf"
    texts = [" ".join(part["content"] for part in b["body"]).lower()
             for b in mx.messages.list(limit=100, offset=rng.randrange(0, max(mx.messages.count() - 100, 1)),
                                       include_body=1)]
    tokens = [re.findall(r"[a-z0-9]+", t) for t in texts]
    common = collections.Counter(w for ts in tokens for w in set(ts) if len(w) >= 5 and w.isalpha())
    pairs = collections.Counter(p for ts in tokens for p in set(zip(ts, ts[1:]))
                                if min(map(len, p)) >= 4 and "".join(p).isalpha() and p[0] != p[1])
    ranked = sorted(common, key=lambda w: (-common[w], w))  # ties by name: the same words in every run
    body_words = ranked[:40][::13] or ["hello", "world", "again"]
    return {"sender": sender, "domain": sender.rpartition("@")[2], "word": word, "body_words": body_words,
            "phrase": " ".join(min(pairs, key=lambda p: (-pairs[p], p), default=("hello", "world"))),
            "to": m["addresses"].get("to", [{"email": sender}])[0]["email"],
            "month": (dates[len(dates) // 2] - 15 * 86400, dates[len(dates) // 2] + 15 * 86400),
            "ext": ext, "folder": rng.choice(m["folders"])}


def cases(v: dict[str, Any]) -> dict[str, dict[str, Any]]:
    lo, hi = v["month"]
    return {
        "from": {"from": v["sender"]},
        "to": {"to": v["to"]},
        "email (address)": {"email": v["sender"]},
        "email (domain)": {"email": v["domain"]},
        "subject word": {"subject": v["word"]},
        "subject regex ^": {"subject": "/^Re: \\[PATCH/"},
        "subject regex inner": {"subject": f"/{v['word'][:4]}.*(fix|bug)/"},
        "folder": {"folder": v["folder"]},
        "folder symbolic": {"folder": "\\Sent"},
        "source": {"source": "bench"},
        "file_name glob": {"file_name": f"*.{v['ext']}"},
        "file_name regex": {"file_name": "/\\.(pdf|png)$/"},
        "file size": {"file_size_min": 10_000, "file_size_max": 200_000},
        "date range (month)": {"date_after": lo, "date_before": hi},
        "indexed range": {"indexed_after": 0},
        "from + date range": {"from": v["sender"], "date_after": lo - 365 * 86400, "date_before": hi},
        "email + subject": {"email": v["domain"], "subject": v["word"]},
        "file_name + size": {"file_name": "*.pdf", "file_size_max": 50_000},
        "folder + date + subject": {"folder": v["folder"], "date_after": lo - 365 * 86400, "subject": "re"},
        "no filter, asc": {"sort_order": "asc"},
        "q: body word": {"q": v["body_words"][0]},
        "q: phrase": {"q": f'"{v["phrase"]}"'},
        "q: prefix": {"q": v["body_words"][1][:4] + "*"},
        "q: word + from: + dates": {"q": f"{v['body_words'][0]} from:{v['sender']} "
                                         f"date:{_day(lo - 365 * 86400)}..{_day(hi)}"},
        "q: three-word OR": {"q": " OR ".join(v["body_words"][:3])},
    }


def _day(t: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def measure(mx: MailIndex, params: dict[str, Any], repeat: int) -> dict[str, float]:
    times = []
    hits = 0
    for i in range(repeat):
        t = time.perf_counter()
        hits = len(mx.messages.list(limit=100, offset=0, **params))
        times.append((time.perf_counter() - t) * 1000)
    return {**percentiles(times), "page_hits": hits, "total_hits": mx.messages.count(**{k: v for k, v in params.items()
                                                                  if k != "sort_order"})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.query", description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", help="mail to index (default: generated 100,000-message corpus)")
    ap.add_argument("--index", help="index directory (default: benchmarks/.cache/index-<corpus name>)")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    mx, corpus = open_index(args.path, args.index)
    with mx:
        total = mx.messages.count()
        values = _pick_values(mx, random.Random(1))
        results = {name: measure(mx, params, args.repeat) for name, params in cases(values).items()}
    if args.json:
        print(json.dumps({"corpus": str(corpus), "messages": total, "results": results}, indent=2))
        return 0
    print(f"corpus: {corpus} ({total:,} messages), limit 100, {args.repeat} runs each, results built as dicts")
    print(f"{'query':<26} {'p50 ms':>8} {'p95 ms':>8} {'hits':>9}")
    for name, r in results.items():
        print(f"{name:<26} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['total_hits']:9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
