"""mailindex against notmuch, mu and mairix on the same Maildir, in the same run.

    python -m benchmarks.compare [PATH] [--runs 3] [--query-runs 10] [--tools mailindex,notmuch,mu,mairix]

PATH defaults to the generated 100,000-message corpus. Each tool indexes the
mail `--runs` times from nothing (medians are reported), re-syncs it with
nothing changed, then answers the same six questions in its own query
language, each as a whole process the way a script calls a CLI (and, for
mailindex, also in-process through the Python API). Prints one table, with
ratios to mailindex, and writes JSON and a PNG chart to benchmarks/results/.
Peers missing from the machine are installed with apt-get when run as root,
otherwise left out with a note. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import calendar
import collections
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_index import percentiles
from benchmarks.ingest import dir_bytes
from benchmarks.peers import PEERS, QUESTION_KEYS, Mailindex, Questions, Tool, install_missing, mailindex_filters
from mailindex import MailIndex

RESULTS = Path(__file__).parent / "results"
RESYNC_RUNS = 3


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    stdout: str


def run(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> Run:
    """Run a command to completion: wall time, the peak RSS the kernel reports for it, its output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage, not every child's so far
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode not in ok:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.read().strip()[-500:]}")
        return Run(seconds, usage.ru_maxrss / 1024, out.read())


def mail_size(maildir: Path) -> tuple[int, int]:
    """(messages, bytes) of every file in a cur/ or new/ directory under `maildir`."""
    count = size = 0
    for root, _, names in os.walk(maildir):
        if os.path.basename(root) in ("cur", "new"):
            for name in names:
                if not name.startswith("."):
                    count += 1
                    size += os.lstat(os.path.join(root, name)).st_size
    return count, size


def is_maildir(path: Path) -> bool:
    return path.is_dir() and any(p.name in ("cur", "new") and p.is_dir() for p in path.rglob("*"))


def ingest(tool: Tool, runs: int, messages: int, mail_bytes: int, log: Any) -> dict[str, Any]:
    """Full ingests from nothing (the last one's index is kept for the queries), then no-change re-syncs."""
    rows = []
    for i in range(runs):
        shutil.rmtree(tool.home, ignore_errors=True)
        tool.home.mkdir(parents=True)
        tool.prepare()
        print(f"  {tool.name}: full ingest {i + 1}/{runs} ...", file=log, flush=True)
        r = run(tool.ingest(), tool.env())
        rows.append({"seconds": r.seconds, "max_rss_mb": r.max_rss_mb, "index_bytes": dir_bytes(tool.home)})
    resync = [run(tool.resync(), tool.env()).seconds for _ in range(RESYNC_RUNS)]
    seconds = statistics.median(r["seconds"] for r in rows)
    return {
        "runs": rows,
        "seconds": seconds,
        "msgs_per_s": messages / seconds,
        "mb_per_s": mail_bytes / 1e6 / seconds,
        "max_rss_mb": statistics.median(r["max_rss_mb"] for r in rows),
        "index_ratio": statistics.median(r["index_bytes"] for r in rows) / mail_bytes,
        "resync_seconds": statistics.median(resync),
    }


def choose_questions(index: Path) -> Questions:
    """Questions with answers in this corpus: its busiest sender, a common subject word, the median month,
    a word and a two-word phrase of many messages' text."""
    with MailIndex(index, read_only=True) as mx:
        sender = mx.contacts.list(sort_by="received_count", limit=1)["matches"][0]["email"]
        words: collections.Counter[str] = collections.Counter()
        sample = mx.messages.list(limit=100, sort_order="asc", include_body=1) + \
            mx.messages.list(limit=100, include_body=1)
        body_words: collections.Counter[str] = collections.Counter()
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        for m in sample:
            words.update(w for w in re.findall(r"[a-z]{5,}", m["subject"].lower()))
            tokens = re.findall(r"[a-z0-9]+", " ".join(part["content"] for part in m["body"]).lower())
            body_words.update({t for t in tokens if len(t) >= 6 and t.isalpha()})
            pairs.update({(a, b) for a, b in zip(tokens, tokens[1:]) if len(a) >= 4 and len(b) >= 4
                          and (a + b).isalpha() and a != b})
        total = mx.messages.count()
        middle = mx.messages.list(sort_order="asc", offset=total // 2, limit=1)[0]["date"]
        extensions = collections.Counter(f["file_name"].rpartition(".")[2].lower() for m in sample
                                         for f in m["files"] if "." in f["file_name"])
        extension = "pdf" if mx.messages.count(file_name="*.pdf") else (extensions.most_common(1) or [("pdf", 0)])[0][0]
    t = time.gmtime(middle)
    month = (calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)),
             calendar.timegm((t.tm_year + (t.tm_mon == 12), t.tm_mon % 12 + 1, 1, 0, 0, 0)))
    year = (calendar.timegm((t.tm_year, 1, 1, 0, 0, 0)), calendar.timegm((t.tm_year + 1, 1, 1, 0, 0, 0)))
    word = (words.most_common(1) or [("hello", 0)])[0][0]
    # Ties by name, so that every run asks the same.
    body_word = min((w for w in body_words if w != word), key=lambda w: (-body_words[w], w), default="hello")
    phrase = min(pairs, key=lambda p: (-pairs[p], p), default=("hello", "world"))
    return Questions(sender, word, month, year, extension, body_word, phrase)


def ask(tool: Tool, q: Questions, runs: int) -> dict[str, Any]:
    """Each question `runs` times as a whole process, after one untimed run that gives the hit count."""
    out: dict[str, Any] = {}
    for key in QUESTION_KEYS:
        argv = tool.query(key, q)
        if argv is None:
            out[key] = {"supported": False}
            continue
        hits = tool.count(run(argv, tool.env(), tool.ok_codes()).stdout)
        times = [run(argv, tool.env(), tool.ok_codes()).seconds * 1000 for _ in range(runs)]
        out[key] = {"supported": True, "hits": hits, **percentiles(times), "argv": argv[-4:]}
    return out


def ask_in_process(index: Path, q: Questions, runs: int) -> dict[str, Any]:
    """The same questions through the Python API of an open index (count, no result objects)."""
    out: dict[str, Any] = {}
    with MailIndex(index, read_only=True) as mx:
        for key in QUESTION_KEYS:
            filters = mailindex_filters(key, q)
            hits = mx.messages.count(**filters)
            times = []
            for _ in range(max(runs, 20)):
                started = time.perf_counter()
                mx.messages.count(**filters)
                times.append((time.perf_counter() - started) * 1000)
            out[key] = {"supported": True, "hits": hits, **percentiles(times)}
    return out


# -- the table ----------------------------------------------------------------------
def _ratio(value: float, base: float | None) -> str:
    return f" ({value / base:.2f}x)" if base else ""


def table(result: dict[str, Any]) -> str:
    tools = list(result["tools"])
    columns = tools + (["mailindex API"] if "mailindex" in tools else [])
    lines = [f"corpus: {result['corpus']['path']}: {result['corpus']['messages']:,} messages, "
             f"{result['corpus']['bytes'] / 1e6:,.1f} MB; {result['runs']} ingest runs (medians), "
             f"{result['query_runs']} runs per query; ratios are to mailindex"]
    width = 22
    row = lambda name, cells: f"{name:<30}" + "".join(f"{c:>{width}}" for c in cells)  # noqa: E731
    lines.append(row("", [f"{t} {result['tools'][t]['version'][:8]}" if t in result["tools"] else t
                          for t in columns]))
    base = result["tools"].get("mailindex", {}).get("ingest", {})
    for label, key, fmt in (("ingest msgs/s", "msgs_per_s", "{:,.0f}"), ("ingest MB/s", "mb_per_s", "{:,.2f}"),
                            ("peak RSS MB", "max_rss_mb", "{:,.0f}"), ("index / mail", "index_ratio", "{:.3f}"),
                            ("re-sync, no change, s", "resync_seconds", "{:.3f}")):
        cells = []
        for t in columns:
            ing = result["tools"].get(t, {}).get("ingest")
            cells.append(fmt.format(ing[key]) + _ratio(ing[key], base.get(key)) if ing else "")
        lines.append(row(label, cells))
    lines.append("query p50 / p95 ms, hits")
    for key in QUESTION_KEYS:
        lines.append(f"  {result['questions'][key]}")
        timing, hits = [], []
        base_p50 = result["tools"].get("mailindex", {}).get("queries", {}).get(key, {}).get("p50_ms")
        for t in columns:
            a = result["tools"][t]["queries"][key] if t in result["tools"] else result["mailindex_api"][key]
            if not a["supported"]:
                timing.append("not supported")
                hits.append("")
                continue
            timing.append(f"{a['p50_ms']:,.1f} / {a['p95_ms']:,.1f}" + _ratio(a["p50_ms"], base_p50))
            hits.append(f"{a['hits']:,}")
        lines.append(row("    time", timing))
        lines.append(row("    hits", hits))
    notes = [f"  {t}, {result['questions'][k]}: {n}" for t, info in result["tools"].items()
             for k, n in info["notes"].items()]
    if notes:
        lines += ["why hit counts may differ:", *notes]
    if result["missing"]:
        lines.append(f"not run (not installed): {', '.join(result['missing'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", help="a Maildir (default: the generated 100,000-message corpus)")
    parser.add_argument("--runs", type=int, default=3, help="full ingests per tool (default 3, at least 3 advised)")
    parser.add_argument("--query-runs", type=int, default=10, help="timed runs per question (default 10)")
    parser.add_argument("--tools", default="mailindex,notmuch,mu,mairix", help="comma-separated subset")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install a missing peer")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where JSON and PNG go (default {RESULTS})")
    parser.add_argument("--work", type=Path, help="where the tools' databases go (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    log = sys.stderr
    if args.path:
        corpus = Path(args.path).expanduser().resolve()
    else:
        from benchmarks.corpus import default_corpus

        corpus = default_corpus()
    if not is_maildir(corpus):
        parser.error(f"{corpus} is not a Maildir: the peers index Maildirs only")
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    missing = [] if args.no_install else install_missing(log)
    missing = sorted(set(missing) | {cls.name for cls in PEERS if cls.name in wanted and not shutil.which(cls.name)})
    messages, mail_bytes = mail_size(corpus)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mailindex-compare-", dir=args.work))
    result: dict[str, Any] = {"corpus": {"path": str(corpus), "messages": messages, "bytes": mail_bytes},
                              "runs": args.runs, "query_runs": args.query_runs, "missing": missing,
                              "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "tools": {}}
    try:
        tools: list[Tool] = [cls(work / cls.name, corpus) for cls in (Mailindex, *PEERS)
                             if cls.name in wanted and cls.name not in missing]
        for tool in tools:
            print(f"{tool.name}: indexing {messages:,} messages ...", file=log, flush=True)
            result["tools"][tool.name] = {"version": tool.version(), "notes": tool.notes,
                                          "ingest": ingest(tool, args.runs, messages, mail_bytes, log)}
        index = work / "mailindex" / "index"
        questions = choose_questions(index) if "mailindex" in result["tools"] else None
        if questions is None:
            parser.error("the questions are chosen from mailindex's index: keep mailindex in --tools")
        result["questions"] = questions.describe()
        result["question_values"] = dataclasses.asdict(questions)
        for tool in tools:
            print(f"{tool.name}: asking {len(QUESTION_KEYS)} questions ...", file=log, flush=True)
            result["tools"][tool.name]["queries"] = ask(tool, questions, args.query_runs)
        result["mailindex_api"] = ask_in_process(index, questions, args.query_runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(result))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"compare-{corpus.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nJSON: {stem.with_suffix('.json')}")
    try:
        from benchmarks.chart import draw
    except ImportError as exc:  # matplotlib is an extra: pip install -e '.[bench]'
        print(f"no chart ({exc}); install it with: pip install -e '.[bench]'")
    else:
        draw(result, stem.with_suffix(".png"))
        print(f"chart: {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
