"""One message and its neighbours: p50/p95 of get-with-body, a thread, and the contacts list.

    python -m benchmarks.resources [PATH] [--index DIR] [--repeat N] [--json]

Builds (or reuses) the index of PATH (default: the generated 100,000-message
corpus) and times, each over --repeat calls on different messages where it
applies:

* `messages.get(id, include_body=1)`: record, folders, the source file read
  and verified against its SHA-256, body parts decoded;
* `messages.thread(id, limit=50)` on the thread whose size is closest to 50;
* `contacts.list()` sorted by count, by email, and with a search.

Prints figures and the corpus; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.bench_index import open_index, percentiles
from mailindex import MailIndex


def _timed(calls: list[Callable[[], Any]]) -> dict[str, float]:
    times = []
    for call in calls:
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return percentiles(times)


def _thread_near(mx: MailIndex, size: int) -> tuple[str, int]:
    """A message of the thread whose size is closest to `size` (read from the thread tables)."""
    name, got = mx.store.db.execute("SELECT name, size FROM thread_info ORDER BY abs(size - ?) LIMIT 1",
                                    (size,)).fetchone()
    (key,) = mx.store.db.execute("SELECT m.key FROM thread_message m JOIN thread_info i ON i.id = m.thread "
                                 "WHERE i.name = ? LIMIT 1", (name,)).fetchone()
    return key, got


def run(mx: MailIndex, repeat: int) -> dict[str, Any]:
    rng = random.Random(1)
    total = mx.messages.count()
    ids = [m["message_id"] for m in mx.messages.list(limit=100, offset=rng.randrange(max(total - 100, 1)))]
    member, size = _thread_near(mx, 50)
    some = mx.contacts.list(limit=20)["matches"]
    needle = some[len(some) // 2]["email"].split("@")[0][:4] if some else "a"
    results = {
        "get with body": _timed([lambda i=i: mx.messages.get(ids[i % len(ids)], include_body=1)
                                 for i in range(repeat)]),
        f"thread of {size}": _timed([lambda: mx.messages.thread(member, limit=50)] * repeat),
        "contacts by count": _timed([lambda: mx.contacts.list()] * repeat),
        "contacts by email": _timed([lambda: mx.contacts.list(sort_by="email")] * repeat),
        f"contacts search {needle!r}": _timed([lambda: mx.contacts.list(search=needle)] * repeat),
    }
    return {"messages": total, "contacts": mx.store.db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0],
            "results": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.resources", description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", help="mail to index (default: generated 100,000-message corpus)")
    ap.add_argument("--index", help="index directory (default: benchmarks/.cache/index-<corpus name>)")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    mx, corpus = open_index(args.path, args.index)
    with mx:
        out = run(mx, args.repeat)
    if args.json:
        print(json.dumps({"corpus": str(corpus), **out}, indent=2))
        return 0
    print(f"corpus: {corpus} ({out['messages']:,} messages, {out['contacts']:,} contacts), {args.repeat} runs each")
    print(f"{'call':<28} {'p50 ms':>8} {'p95 ms':>8}")
    for name, r in out["results"].items():
        print(f"{name:<28} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
