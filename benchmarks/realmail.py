"""Real mail: index each corpus given into a fresh index, in one run, one row per corpus.

    python -m benchmarks.realmail DIR... [--workers N] [--json] [--keep DIR]
    python -m benchmarks.realmail --mboxrd MAILDIR OUT

Each DIR is a Maildir, an mbox file or a tree of them, or an .eml tree. Its
ingest runs in a child process, the `mailindex index` CLI of this Python, so a
crash in one corpus is recorded (aborted = 1, with the last line of stderr)
and the run goes on with the next. The index is then opened read-only here to
count. Per corpus:

* files: regular files under DIR (a single mbox file: 1), and their bytes;
* messages: entries the source lists (no parsing), read through the source
  registered in the index;
* indexed: messages the sync added; quarantined and skipped, by reason;
* aborted: 1 if the sync raised or the child exited non-zero;
* msgs/s and MB/s over the sync's own seconds (the child's startup is left out);
* peak RSS: the summed RSS of the process tree (this harness included), sampled;
* index bytes / mail bytes;
* count == listed: `messages.count()` against the messages `messages.iter()` yields.

Prints a table (or, with --json, one JSON object) and writes the JSON to
benchmarks/results/realmail.json. Indexes go to a temporary directory, removed
afterwards, unless --keep names a directory to keep them in.
--mboxrd writes a Maildir's messages, in name order, as one mboxrd file.
See "Real mail" in benchmarks/README.md for building the corpora.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.ingest import TreeRss, dir_bytes
from mailindex import MailIndex

RESULTS = Path(__file__).parent / "results"
LABEL = "realmail"
SHOWN_REASONS = 3  # per corpus in the table; the JSON has every reason
MBOXRD_FROM = b"From mboxrd@z Thu Jan  1 00:00:00 1970\n"
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


@dataclass
class Ingest:
    """What the child process that indexed one corpus left behind."""

    aborted: bool
    report: dict[str, Any]
    wall_seconds: float
    peak_rss_mb: float | None
    error: str = ""


@dataclass
class Readback:
    """What the index says once the child is gone (each figure None if it could not be read)."""

    messages: int | None = None
    count: int | None = None
    listed: int | None = None
    quarantined: dict[str, int] = field(default_factory=dict)
    error: str = ""


def mail_files(path: Path) -> tuple[int, int]:
    """(regular files, their bytes) under `path`; a single file counts as 1.

    Every regular file counts, bookkeeping files too: files = messages + skipped
    is the point of the column."""
    if path.is_file():
        return 1, path.stat().st_size
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
    return files, size


def index_command(path: Path, index: Path, workers: int | None) -> list[str]:
    """The `mailindex index` command line: every folder and flag kept, as benchmarks.ingest does."""
    argv = [sys.executable, "-m", "mailindex.cli", "--index", str(index), "index", str(path),
            "--source", LABEL, "--sync-all-folders", "1", "--sync-flags", "1", "--json"]
    return argv + (["--workers", str(workers)] if workers else [])


def _why(returncode: int, stderr: str) -> str:
    """The last line of stderr, or how the process ended when it said nothing."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines:
        return lines[-1].strip()
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited {returncode}" if returncode else "no JSON report on stdout"


def run_ingest(path: Path, index: Path, workers: int | None) -> Ingest:
    """Index `path` into `index` in a child process, sampling the RSS of the whole process tree."""
    with TreeRss() as rss:
        started = time.perf_counter()
        proc = subprocess.run(index_command(path, index, workers), capture_output=True, text=True,
                              errors="replace")
        wall = time.perf_counter() - started
    peak = round(rss.peak_kb / 1024, 1) if rss.available else None
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = None
    if proc.returncode != 0 or not isinstance(report, dict):
        return Ingest(True, {}, wall, peak, _why(proc.returncode, proc.stderr))
    return Ingest(False, report, wall, peak)


def reasons(errors: Iterable[str]) -> dict[str, int]:
    """Errors grouped by their short reason (the text before the first ':'), most frequent first."""
    counts = collections.Counter(error.split(":", 1)[0].strip() for error in errors)
    return dict(counts.most_common())


def listed_by_source(mx: MailIndex, label: str) -> int:
    """Messages the registered source lists, without reading or parsing any."""
    row = mx.source(label)
    source = mx.open_source(row["location"], row["type"], row["options"])
    try:
        return sum(1 for container in source.containers() for _ in source.entries(container.name))
    finally:
        source.close()


def read_back(index: Path) -> Readback:
    """Counts from the index, read-only, through the public API; a failure is recorded, not raised."""
    out = Readback()
    try:
        with MailIndex(index, read_only=True) as mx:
            out.count = mx.messages.count()
            out.listed = sum(1 for _ in mx.messages.iter())
            out.quarantined = reasons(q["error"] or "" for q in mx.quarantine())
            out.messages = listed_by_source(mx, LABEL)
    except Exception as exc:  # noqa: BLE001 - an aborted ingest may leave no index, or half of one
        out.error = f"{type(exc).__name__}: {exc}"
    return out


def _per_second(amount: int | float | None, seconds: float | None, digits: int) -> float | None:
    return round(amount / seconds, digits) if amount is not None and seconds else None


def measure(path: Path, index: Path, workers: int | None) -> dict[str, Any]:
    """One corpus indexed into the fresh directory `index`: the row of the table, as a dict."""
    files, mail_bytes = mail_files(path)
    ingest = run_ingest(path, index, workers)
    back = read_back(index)
    seconds = ingest.report.get("seconds")
    index_bytes = dir_bytes(index)
    return {
        "corpus": str(path), "files": files, "mail_bytes": mail_bytes,
        "messages": back.messages, "indexed": ingest.report.get("added"),
        "quarantined": back.quarantined, "skipped": ingest.report.get("skipped", {}),
        "aborted": int(ingest.aborted), "error": ingest.error, "read_error": back.error,
        "seconds": seconds, "wall_seconds": round(ingest.wall_seconds, 3),
        "msgs_per_s": _per_second(back.messages, seconds, 1),
        "mb_per_s": _per_second(mail_bytes / 1e6, seconds, 2),
        "peak_rss_mb": ingest.peak_rss_mb,
        "index_bytes": index_bytes, "index_ratio": round(index_bytes / mail_bytes, 3) if mail_bytes else None,
        "count": back.count, "listed": back.listed,
        "count_equals_listed": back.count == back.listed if back.count is not None else None,
        "report": {k: v for k, v in ingest.report.items() if k != "errors"},
    }


def _slug(n: int, path: Path) -> str:
    """A directory name for the n-th corpus's index (two corpora may share a base name)."""
    return f"{n:02d}-{re.sub(r'[^A-Za-z0-9._-]+', '-', path.name)}"


def run(paths: list[Path], workers: int | None, keep: Path | None, log: Any = sys.stderr) -> dict[str, Any]:
    """Every corpus in turn, each into its own fresh index under `keep` or a temporary directory."""
    work = keep or Path(tempfile.mkdtemp(prefix="mailindex-realmail-"))
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                              "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                              "workers": workers, "corpora": []}
    try:
        for n, path in enumerate(paths, 1):
            index = work / _slug(n, path)
            print(f"[{n}/{len(paths)}] indexing {path} into {index} ...", file=log, flush=True)
            row = measure(path, index, workers)
            if row["aborted"]:
                print(f"  aborted: {row['error']}", file=log, flush=True)
            result["corpora"].append(row)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return result


# -- the table ----------------------------------------------------------------------
COLUMNS = (("corpus", "{}"), ("files", "{:,}"), ("messages", "{:,}"), ("indexed", "{:,}"),
           ("quarantined", "{:,}"), ("skipped", "{:,}"), ("aborted", "{}"), ("msgs/s", "{:,.0f}"),
           ("MB/s", "{:,.2f}"), ("peak RSS MB", "{:,.0f}"), ("index/mail", "{:.3f}"), ("count==listed", "{}"))


def _cells(row: dict[str, Any]) -> list[str]:
    values = [Path(row["corpus"]).name, row["files"], row["messages"], row["indexed"],
              sum(row["quarantined"].values()), sum(row["skipped"].values()), row["aborted"], row["msgs_per_s"],
              row["mb_per_s"], row["peak_rss_mb"], row["index_ratio"],
              {True: "yes", False: "NO", None: "?"}[row["count_equals_listed"]]]
    return ["-" if v is None else fmt.format(v) for (_, fmt), v in zip(COLUMNS, values)]


def _shown(counts: dict[str, int]) -> str:
    """The most frequent reasons, then how many more there are."""
    text = ", ".join(f"{reason} {n:,}" for reason, n in list(counts.items())[:SHOWN_REASONS])
    more = len(counts) - SHOWN_REASONS
    return text + (f", +{more} more" if more > 0 else "")


def _notes(row: dict[str, Any]) -> list[str]:
    name = Path(row["corpus"]).name
    notes = [f"{name}: {what}: {_shown(row[what])}" for what in ("quarantined", "skipped") if row[what]]
    if row["error"]:
        notes.append(f"{name}: aborted: {row['error']}")
    if row["read_error"]:
        notes.append(f"{name}: reading the index back: {row['read_error']}")
    if row["count_equals_listed"] is False:
        notes.append(f"{name}: count {row['count']:,} but listed {row['listed']:,}")
    return notes


def table(result: dict[str, Any]) -> str:
    """One row per corpus, then its reasons and errors underneath."""
    rows = [[name for name, _ in COLUMNS]] + [_cells(r) for r in result["corpora"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    notes = [note for r in result["corpora"] for note in _notes(r)]
    workers = result["workers"] or "default"
    return "\n".join([f"workers: {workers}; {result['machine']['cpus']} CPUs", *lines, *notes])


# -- mboxrd ----------------------------------------------------------------------
def write_mboxrd(maildir: Path, out: Path) -> int:
    """Write every message of `maildir` (cur/ and new/, in file name order) to the new file `out` as mboxrd.

    Each message gets a From_ line before it and a blank line after it; a line that
    matches `^>*From ` gets one more '>'. Returns the number of messages."""
    paths = sorted((p for sub in ("cur", "new") if (maildir / sub).is_dir() for p in (maildir / sub).iterdir()
                    if p.is_file()), key=lambda p: p.name)
    with open(out, "xb") as f:
        for p in paths:
            f.write(MBOXRD_FROM + _FROM_LINE.sub(rb">\1", p.read_bytes()) + b"\n")
    return len(paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.realmail", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, metavar="DIR", help="a Maildir, mbox file or tree, .eml tree")
    parser.add_argument("--workers", type=int, default=None, help="parse workers (default: the engine's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the indexes in DIR (new or empty)")
    parser.add_argument("--mboxrd", nargs=2, type=Path, metavar=("MAILDIR", "OUT"),
                        help="only write MAILDIR's messages to the new file OUT as mboxrd")
    args = parser.parse_args(argv)
    if args.mboxrd:
        print(f"{write_mboxrd(*args.mboxrd):,} messages written to {args.mboxrd[1]}")
        return 0
    if not args.paths:
        parser.error("give at least one corpus (DIR), or --mboxrd MAILDIR OUT")
    paths = [p.expanduser().resolve() for p in args.paths]
    if missing := [str(p) for p in paths if not p.exists()]:
        parser.error(f"no such file or directory: {', '.join(missing)}")
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep} is not empty (each corpus needs a fresh index)")
    keep = args.keep.resolve() if args.keep else None
    result = run(paths, args.workers, keep)
    print(json.dumps(result, indent=2) if args.json else table(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "realmail.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"JSON: {RESULTS / 'realmail.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
