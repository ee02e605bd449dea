"""Built-in backends register like any plugin: listed, blockable, replaceable."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailindex import MailIndex, PluginError, SourceFormatError, hookimpl
from mailindex.plugins import BUILTINS, list_plugins, plugin_manager
from tests import mail


def test_builtins_are_plugins_with_their_types() -> None:
    plugins = {p["name"]: p for p in list_plugins(plugin_manager(entry_points=False))}
    assert set(BUILTINS) <= set(plugins)
    for name in BUILTINS:
        assert plugins[name]["source_types"] == [name]
        assert "mailindex_open_source" in plugins[name]["hooks"]


def test_blocking_a_builtin_removes_its_format(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("x")]})
    with MailIndex(tmp_path / "idx", pm=plugin_manager(blocked=["maildir"], entry_points=False)) as mx:
        with pytest.raises(SourceFormatError):
            mx.add_source("p", root, type="maildir")


def test_a_third_party_plugin_claims_a_location_first(tmp_path: Path) -> None:
    root = mail.maildir(tmp_path / "md", {"INBOX": [mail.message("x")]})
    claimed: list[str] = []

    class Claimer:
        @hookimpl
        def mailindex_source_types(self) -> list[str]:
            return ["maildir"]

        @hookimpl
        def mailindex_open_source(self, location, source_type, options):  # type: ignore[no-untyped-def]
            from mailindex.sources.maildir import MaildirSource

            claimed.append(location)
            return MaildirSource(location)

    pm = plugin_manager(entry_points=False)
    pm.register(Claimer(), name="claimer")
    with MailIndex(tmp_path / "idx", pm=pm) as mx:
        mx.add_source("p", root)
    assert claimed == [str(root)]


def test_a_broken_plugin_fails_at_load_with_our_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed plugin (a real entry point) whose hook takes an argument the spec lacks: PluginError naming it."""
    (tmp_path / "mailindex_test_broken.py").write_text(
        "from mailindex import hookimpl\n\n\n@hookimpl\n"
        "def mailindex_open_source(location, source_type, options, nonsense):\n    return None\n")
    info = tmp_path / "mailindex_test_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mailindex-test-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mailindex]\nbroken = mailindex_test_broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="nonsense") as err:
        plugin_manager()
    assert "'broken'" in str(err.value)  # the plugin is named too
