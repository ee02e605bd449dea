"""Every hook mailindex declares. These docstrings are the whole plugin contract.

A backend is a module (or object) with `@hookimpl` functions, registered by
name: built-ins from `mailindex.plugins.BUILTINS`, others from the
`mailindex` entry-point group. See README.md, "Writing a backend".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from mailindex.sources.base import Source

hookspec = pluggy.HookspecMarker("mailindex")
hookimpl = pluggy.HookimplMarker("mailindex")


@hookspec
def mailindex_source_types() -> list[str]:
    """Return the source type names this plugin implements (e.g. ["maildir"])."""


@hookspec(firstresult=True)
def mailindex_open_source(location: str, source_type: str | None, options: Mapping[str, Any]) -> Source | None:
    """Return a Source for `location` if this plugin reads it, else None.

    `source_type` is the type the caller named ("maildir", "mbox", ...), or
    None to detect it. Stops at the first non-None result; built-ins are
    `trylast`, so an installed plugin can claim a location first.
    """
