"""mailindex-imap: an IMAP backend for mailindex, registered through the `mailindex` entry point."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailindex import hookimpl
from mailindex.sources.base import Backend

from mailindex_imap.source import ImapSource

__all__ = ["ImapSource"]


@hookimpl
def mailindex_source_types() -> list[str]:
    return [ImapSource.type]


@hookimpl
def mailindex_open_source(location: str, source_type: str | None, options: Mapping[str, Any]) -> Backend | None:
    if source_type == ImapSource.type or (source_type is None and ImapSource.looks_like(location)):
        return ImapSource(location, **dict(options or {}))
    return None
