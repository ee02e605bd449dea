"""Benchmarks: a generated mailing-list corpus, ingest and query figures (never asserted)."""
