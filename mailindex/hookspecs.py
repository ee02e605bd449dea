"""Every hook mailindex declares. These docstrings are the whole plugin contract.

A backend is a module (or object) with `@hookimpl` functions, registered by
name: built-ins from `mailindex.plugins.BUILTINS`, others from the
`mailindex` entry-point group. See README.md, "Writing a backend".

Two hooks say which backends exist and who opens a location. Everything a
backend then does for one source is a method of the `Backend` it returns
(`mailindex.sources.base.Backend`, the per-source half of this contract, as
each format is a class in the standard library's `mailbox`):

    reading (every backend)          live operations (only when a caller asks)
    containers()  folders + stamps   folders()              names with RFC 6154 special use
    entries(c)    locators + flags   set_flags(loc, {f: b}) -> new locator, flags read back after
    listing(c) / entry(c, path)      append(folder, bytes, flags) -> locator, durable on return
                  optional fast path copy(loc, folder, flags) -> locator
    read_bytes(loc), read_many(locs) move(loc, folder, flags)   copy, verify, delete (the default)
    read_flags(loc)                  delete(loc)
                                     close()                release connections

An operation a backend cannot do raises UnsupportedOperation (the default),
and a failure raises SourceError with the server's words in `connection_log`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from mailindex.sources.base import Backend

# A hookspec is a signature and a docstring: pluggy never runs its body.
# mypy: disable-error-code="empty-body"

hookspec = pluggy.HookspecMarker("mailindex")
hookimpl = pluggy.HookimplMarker("mailindex")


@hookspec
def mailindex_source_types() -> list[str]:
    """Return the source type names this plugin implements (e.g. ["maildir"])."""


@hookspec(firstresult=True)
def mailindex_open_source(location: str, source_type: str | None, options: Mapping[str, Any]) -> Backend | None:
    """Return a Backend for `location` if this plugin reads it, else None.

    `source_type` is the type the caller named ("maildir", "mbox", ...), or
    None to detect it. Stops at the first non-None result; built-ins are
    `trylast`, so an installed plugin can claim a location first.
    """
