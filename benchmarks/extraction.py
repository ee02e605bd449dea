"""What attachment text extraction costs the parse stage, and what it finds.

    python -m benchmarks.extraction MAILDIR [--rounds 3]

Parses every message of MAILDIR in this one process (one core, as a parse
worker does), alternating rounds with extraction and without it (the
extractor replaced by one that reads nothing), and prints msgs/s of each,
their ratio, and how the attachments fared. Asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

from mailindex import attachment_text
from mailindex.parse import parse
from mailindex.sources.base import RawMessage


def _messages(maildir: Path) -> list[bytes]:
    return [p.read_bytes() for sub in ("cur", "new") for p in sorted((maildir / sub).glob("*")) if p.is_file()]


def _round(messages: list[bytes]) -> tuple[float, collections.Counter[str], int]:
    outcomes: collections.Counter[str] = collections.Counter()
    chars = 0
    started = time.perf_counter()
    for data in messages:
        record = parse(RawMessage(data))
        chars += len(record.attachment_text)
        outcomes.update(str(f.text_extracted) for f in record.files)
    return len(messages) / (time.perf_counter() - started), outcomes, chars


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.extraction", description=__doc__.split("\n\n")[0])
    ap.add_argument("maildir", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    messages = _messages(args.maildir)
    real = attachment_text.extract
    rates: dict[str, list[float]] = {"with extraction": [], "without": []}
    outcomes: collections.Counter[str] = collections.Counter()
    chars = 0
    for _ in range(args.rounds):
        for label in rates:
            attachment_text.extract = real if label == "with extraction" else (lambda *a, **k: None)  # type: ignore[assignment]
            rate, seen, text = _round(messages)
            rates[label].append(rate)
            if label == "with extraction":
                outcomes, chars = seen, text
    attachment_text.extract = real
    print(f"{args.maildir}: {len(messages):,} messages, {args.rounds} alternating rounds, one process")
    for label, values in rates.items():
        print(f"  {label:<16} {statistics.median(values):8,.0f} msgs/s (runs: {', '.join(f'{v:,.0f}' for v in values)})")
    ratio = statistics.median(rates["with extraction"]) / statistics.median(rates["without"])
    print(f"  ratio {ratio:.2f}; attachments: " + ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items()))
          + f"; {chars:,} characters of attachment text")
    return 0


if __name__ == "__main__":
    sys.exit(main())
