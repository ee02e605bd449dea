"""The plugin manager: built-in backends and entry-point plugins, registered alike."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable

import pluggy

from mailindex import hookspecs
from mailindex.errors import PluginError

BUILTINS = {
    "maildir": "mailindex.sources.maildir",
    "mbox": "mailindex.sources.mbox",
    "eml": "mailindex.sources.eml",
}
ENTRY_POINT_GROUP = "mailindex"


def plugin_manager(blocked: Iterable[str] = (), entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager with the built-ins and (optionally) installed plugins.

    `blocked` names plugins to leave out, built-in or not. The environment
    variable MAILINDEX_TRACE_PLUGINS=1 prints every hook call to stderr.
    """
    pm = pluggy.PluginManager("mailindex")
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    try:
        for name, module in BUILTINS.items():
            if not pm.is_blocked(name):
                pm.register(importlib.import_module(module), name=name)
        if entry_points:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        pm.check_pending()
    except (pluggy.PluginValidationError, ImportError) as exc:
        raise PluginError(f"a mailindex plugin failed to load: {exc}") from exc
    if os.environ.get("MAILINDEX_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(lambda msg: print(msg, end="", file=__import__("sys").stderr))
        pm.enable_tracing()
    return pm


def list_plugins(pm: pluggy.PluginManager) -> list[dict[str, object]]:
    """Name, source types and hooks of each registered plugin."""
    out: list[dict[str, object]] = []
    for name, plugin in sorted(pm.list_name_plugin()):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        types: list[str] = getattr(plugin, "mailindex_source_types", lambda: [])()
        out.append({"name": name, "source_types": types, "hooks": hooks})
    return out
