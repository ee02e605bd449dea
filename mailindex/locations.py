"""Where a source is: a path on disk, or a URL a backend plugin reaches (imap://user@host:993)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def is_url(location: str | os.PathLike[str]) -> bool:
    """A location reached over the network (imap://...), not a path."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def canonical(location: str | os.PathLike[str]) -> str:
    """How a location is stored: a resolved absolute path, or the URL without any password in it."""
    if not is_url(location):
        return str(Path(location).expanduser().resolve())
    parts = urlsplit(str(location))
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[2]}" if netloc[1] else netloc[2]))


def url_password(location: str | os.PathLike[str]) -> str | None:
    """The password written into a URL (imap://user:secret@host), which is never stored."""
    return urlsplit(str(location)).password if is_url(location) else None


@functools.lru_cache(maxsize=256)  # every message of a page names its source's: build each once
def resource_url(location: str) -> str:
    """A source's resource URL: its own URL, or file:// for a path."""
    return location if is_url(location) else Path(location).as_uri()
