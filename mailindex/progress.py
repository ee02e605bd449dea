"""A small progress line on stderr: on a terminal by default, or as asked (--progress, --quiet)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLine:
    """Callable(done, total) that redraws one stderr line at most 10 times a second, with the rate and
    the time left. Until the first call it says the sync is scanning (listing what changed)."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = sys.stderr if stream is None else stream  # looked up now: a caller may have replaced it
        self.tty = self.stream.isatty()
        self.enabled = self.tty if enabled is None else enabled
        self.start = time.monotonic()
        self.last = 0.0
        self.finished = False
        if self.enabled:
            self.stream.write(f"{self.label}: scanning for new, changed and vanished messages ...")
            self.stream.flush()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or (self.finished and done >= total):
            return  # the sync reports its end twice when it had nothing to do
        now = time.monotonic()
        if now - self.last < 0.1 and 0 < done < total:
            return
        if done == 0:
            self.start = now  # the rate and the time left count from the end of the scan
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        pct = 100 * done / total if total else 100
        width = 30
        bar = "#" * int(width * pct / 100)
        left = f"  ETA {_duration((total - done) / rate)}" if 0 < done < total else ""
        done_in = f"  in {_duration(elapsed)}" if done >= total else ""
        clear = "\x1b[K" if self.tty else ""  # the scanning text is longer than a short line
        self.stream.write(f"\r{clear}{self.label} [{bar:<{width}}] {done:,}/{total:,} {pct:5.1f}% "
                          f"{rate:,.0f} msg/s{left}{done_in}")
        self.finished = done >= total
        if self.finished:
            self.stream.write("\n")
        self.stream.flush()
