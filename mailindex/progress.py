"""A small progress line on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressLine:
    """Callable(done, total) that redraws one stderr line at most 10 times a second."""

    def __init__(self, label: str, stream: TextIO = sys.stderr) -> None:
        self.label, self.stream = label, stream
        self.enabled = stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        pct = 100 * done / total if total else 100
        width = 30
        bar = "#" * int(width * pct / 100)
        self.stream.write(f"\r{self.label} [{bar:<{width}}] {done:,}/{total:,} {pct:5.1f}% {rate:,.0f} msg/s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
