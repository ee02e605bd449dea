"""Ingest throughput, memory, index size and re-sync latency.

    python -m benchmarks.ingest [PATH] [--index DIR] [--workers N] [--json]
                                [--count N] [--seed S]

Indexes PATH (default: the generated corpus, `benchmarks.corpus.default_corpus`,
100,000 messages unless --count says otherwise) into a fresh index (a temporary
directory, removed afterwards, unless --index names an empty or new directory,
which is kept) and reports:

* the corpus: path, source type, messages, bytes;
* full ingest: seconds, messages/s, MB/s of mail;
* peak RSS: ``getrusage`` of this process (RUSAGE_SELF) and of its reaped
  worker processes (RUSAGE_CHILDREN, the largest child), the max of both, and
  the peak of the summed RSS of the live process tree sampled from /proc
  every 0.2 s (Linux only);
* index bytes / mail bytes (apparent sizes of the files under each);
* no-change re-sync seconds (median of 3);
* re-sync seconds after adding one message, and after removing it again.
  The message is written into PATH (``cur/`` of a Maildir, the top of an .eml
  tree) and always removed afterwards; an mbox file is copied to the temporary
  directory first and the copy is indexed, so PATH is never modified.

Prints figures; asserts nothing. With --json, one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

LABEL = "bench"
_SKIP_NAMES = {"maildirfolder", "subscriptions", "dovecot-uidlist", "dovecot-keywords", "dovecot.index",
               "dovecot.index.cache", "dovecot.index.log", "courierimapuiddb", "courierimapkeywords"}


def tree_bytes(path: Path) -> tuple[int, int]:
    """(files, apparent bytes) under path (or of the file itself), skipping Maildir bookkeeping files."""
    if path.is_file():
        return 1, path.stat().st_size
    files = total = 0
    for root, dirs, names in os.walk(path):
        if os.path.basename(root) == "tmp":
            continue
        for n in names:
            if n in _SKIP_NAMES or n.startswith("dovecot"):
                continue
            try:
                total += os.lstat(os.path.join(root, n)).st_size
                files += 1
            except OSError:
                pass
    return files, total


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(root, n)).st_size
            except OSError:
                pass
    return total


class TreeRss:
    """Samples the summed RSS of this process and all its descendants (Linux /proc)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_kb = 0
        self.available = Path("/proc/self/status").exists()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> "TreeRss":
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    @staticmethod
    def _children(pid: int) -> list[int]:
        out: list[int] = []
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        out += [int(c) for c in f.read().split()]
                except OSError:
                    pass
        except OSError:
            pass
        return out

    @staticmethod
    def _rss_kb(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def sample(self) -> int:
        total, todo, seen = 0, [os.getpid()], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += self._rss_kb(pid)
            todo += self._children(pid)
        self.peak_kb = max(self.peak_kb, total)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


def _peak_rss() -> dict[str, float]:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1024 * 1024)
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"self_mb": round(self_mb, 1), "children_mb": round(child_mb, 1), "max_mb": round(max(self_mb, child_mb), 1)}


def _one_message(stamp: int) -> bytes:
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(stamp))
    return (f"From: Bench Marker <bench.marker@bench.invalid>\n"
            f"To: someone@bench.invalid\n"
            f"Subject: mailindex ingest benchmark probe {stamp}\n"
            f"Date: {date}\n"
            f"Message-ID: <bench-probe-{stamp}-{os.getpid()}@bench.invalid>\n"
            f"MIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=us-ascii\n\n"
            f"This message was added by benchmarks.ingest to time an incremental sync.\n"
            f"It is removed again right afterwards.\n").encode()


class _Probe:
    """Adds one message to the indexed mail, and removes it again."""

    MARK = "mailindex-bench-probe"

    def __init__(self, location: Path, source_type: str | None) -> None:
        self.location = location
        self.type = source_type
        self.path: Path | None = None
        self.original_size: int | None = None
        self.reason = ""
        if location.is_file():
            with open(location, "rb") as f:
                if f.read(5) != b"From ":
                    self.reason = "the source is a single file that is not an mbox"
        elif source_type == "mbox":
            self.reason = "the source is a directory of mbox files (not modified)"
        elif not location.is_dir():
            self.reason = "the source is neither a file nor a directory"

    @property
    def possible(self) -> bool:
        return not self.reason

    def add(self) -> None:
        stamp = int(time.time())
        data = _one_message(stamp)
        if self.location.is_file():  # our private copy of an mbox
            self.original_size = self.location.stat().st_size
            with open(self.location, "ab") as f:
                sep = b"\n" if self.original_size else b""
                f.write(sep + f"From bench.marker@bench.invalid {time.asctime(time.gmtime(stamp))}\n".encode()
                        + data + b"\n")
            return
        if (self.location / "cur").is_dir():
            self.path = self.location / "cur" / f"{stamp}.M0P{os.getpid()}Q0.{self.MARK},S={len(data)}:2,S"
        else:
            self.path = self.location / f"zz-{self.MARK}-{os.getpid()}.eml"
        with open(self.path, "xb") as f:
            f.write(data)

    def remove(self) -> None:
        if self.original_size is not None:
            with open(self.location, "r+b") as f:
                f.truncate(self.original_size)
            self.original_size = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def run(path: Path | None, index: Path | None, workers: int | None, count: int, seed: int,
        log: Any = sys.stderr) -> dict[str, Any]:
    try:
        from mailindex import MailIndex  # imported late: the corpus part works without the engine
    except ImportError as e:
        raise SystemExit(f"error: cannot import the mailindex engine: {e}") from e

    corpus_count: int | None = None
    if path is None:
        from benchmarks.corpus import corpus_info, default_corpus

        path = default_corpus(count, seed)
        info = corpus_info(path)
        corpus_count = info.count if info else None
        for stale in (path / "cur").glob(f"*{_Probe.MARK}*"):  # left by a killed run
            stale.unlink()
    path = path.expanduser().resolve()
    if not path.exists():
        raise SystemExit(f"error: {path} does not exist")
    files, mail_bytes = tree_bytes(path)

    work = Path(tempfile.mkdtemp(prefix="mailindex-bench-"))
    keep_index = index is not None
    if index is None:
        index = work / "index"
    elif index.exists() and any(index.iterdir()):
        shutil.rmtree(work)
        raise SystemExit(f"error: --index {index} is not empty (the benchmark needs a fresh index)")
    source_path = path
    copied = False
    try:
        if path.is_file():
            with open(path, "rb") as f:
                is_mbox = f.read(5) == b"From "
            if is_mbox:  # index a private copy, so one message can be appended to it
                print(f"copying {path} to {work} (the copy is indexed) ...", file=log, flush=True)
                source_path = work / path.name
                shutil.copyfile(path, source_path)
                copied = True
        result: dict[str, Any] = {"corpus": {"path": str(path), "files": files, "bytes": mail_bytes,
                                             "indexed_copy": copied},
                                  "index": {"path": str(index), "kept": keep_index}}
        with TreeRss() as rss:
            mx = MailIndex(index)
            try:
                src = mx.add_source(LABEL, source_path, sync_all_folders=1, sync_flags=1)  # every message
                source_type = src.get("type") if isinstance(src, dict) else None
                result["corpus"]["type"] = source_type
                print(f"indexing {path} ({mail_bytes / 1e6:,.1f} MB) into {index} ...", file=log, flush=True)
                t0 = time.perf_counter()
                report = mx.sync(LABEL, workers=workers)
                seconds = time.perf_counter() - t0
                messages = report.added + report.failed
                result["corpus"]["messages"] = corpus_count if corpus_count is not None else messages
                mb = mail_bytes / 1e6
                result["ingest"] = {"seconds": round(seconds, 3), "workers": workers, "added": report.added,
                                    "failed": report.failed, "msgs_per_s": round(messages / seconds, 1) if seconds else None,
                                    "mb_per_s": round(mb / seconds, 2) if seconds else None,
                                    "report": _report_dict(report)}
                if rss.available:
                    rss.sample()
                result["peak_rss"] = {**_peak_rss(),
                                      "tree_sampled_mb": round(rss.peak_kb / 1024, 1) if rss.available else None}
                index_bytes = dir_bytes(index)
                result["index"].update({"bytes": index_bytes,
                                        "ratio_to_mail": round(index_bytes / mail_bytes, 3) if mail_bytes else None})
                try:
                    result["index"]["messages"] = mx.messages.count()
                except Exception as e:  # noqa: BLE001 - a figure, not a test
                    result["index"]["messages"] = f"count failed: {e}"

                print("re-syncing with no change (3 times) ...", file=log, flush=True)
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    r = mx.sync(LABEL, workers=workers)
                    times.append(time.perf_counter() - t)
                result["resync_no_change"] = {"median_s": round(statistics.median(times), 4),
                                              "runs_s": [round(x, 4) for x in times],
                                              "last_report": _report_dict(r)}

                probe = _Probe(source_path, source_type)
                if probe.possible:
                    try:
                        probe.add()
                        t = time.perf_counter()
                        r_add = mx.sync(LABEL, workers=workers)
                        add_s = time.perf_counter() - t
                    finally:
                        probe.remove()
                    t = time.perf_counter()
                    r_rm = mx.sync(LABEL, workers=workers)
                    rm_s = time.perf_counter() - t
                    result["resync_one_added"] = {"seconds": round(add_s, 4), "report": _report_dict(r_add)}
                    result["resync_one_removed"] = {"seconds": round(rm_s, 4), "report": _report_dict(r_rm)}
                else:
                    result["resync_one_added"] = {"seconds": None, "skipped": probe.reason}
                result["peak_rss_final"] = _peak_rss()
            finally:
                mx.close()
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _report_dict(report: Any) -> dict[str, Any]:
    if hasattr(report, "to_dict"):
        d = dict(report.to_dict())
        errors = d.pop("errors", None) or []
        d["errors_shown"] = errors[:5]
        return d
    return {"repr": repr(report)}


def render(r: dict[str, Any]) -> str:
    c, ing, rss, idx = r["corpus"], r["ingest"], r["peak_rss"], r["index"]
    lines = [
        f"corpus        {c['path']} ({c.get('type') or '?'}{', indexed a temporary copy' if c['indexed_copy'] else ''})",
        f"              {c['messages']:,} messages, {c['bytes']:,} bytes ({c['bytes'] / 1e6:,.1f} MB)",
        f"full ingest   {ing['seconds']:,.2f} s: {ing['msgs_per_s'] or 0:,.0f} msgs/s, {ing['mb_per_s'] or 0:,.2f} MB/s "
        f"(added {ing['added']:,}, failed {ing['failed']:,}, workers {ing['workers'] or 'default'})",
        f"peak RSS      self {rss['self_mb']:,.0f} MB, children {rss['children_mb']:,.0f} MB, max {rss['max_mb']:,.0f} MB"
        + (f"; sampled tree sum {rss['tree_sampled_mb']:,.0f} MB" if rss.get("tree_sampled_mb") is not None else ""),
        f"index size    {idx['bytes']:,} bytes ({idx['bytes'] / 1e6:,.1f} MB) = {idx['ratio_to_mail'] or 0:.3f} x the mail",
        f"re-sync       no change: {r['resync_no_change']['median_s']:.3f} s median of 3 "
        f"({', '.join(f'{x:.3f}' for x in r['resync_no_change']['runs_s'])})",
    ]
    add = r["resync_one_added"]
    if add.get("seconds") is None:
        lines.append(f"              one message added: skipped ({add.get('skipped')})")
    else:
        rm = r["resync_one_removed"]
        lines.append(f"              one message added: {add['seconds']:.3f} s (added {add['report'].get('added')}); "
                     f"removed again: {rm['seconds']:.3f} s (removed {rm['report'].get('removed')})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", type=Path, help="mail to index (default: the generated corpus)")
    ap.add_argument("--index", type=Path, help="index directory to create and keep (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=None, help="parse workers (default: the engine's choice)")
    ap.add_argument("--count", type=int, default=100_000, help="size of the generated default corpus")
    ap.add_argument("--seed", type=int, default=1, help="seed of the generated default corpus")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    result = run(args.path, args.index, args.workers, args.count, args.seed)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
