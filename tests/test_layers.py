"""Data flows one way: front ends -> app -> api -> engine -> sync -> {parse, index, sources}.

Every import counts: at the top, inside a function, or under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mailindex"
FRONT_ENDS = ("mailindex.cli", "mailindex", "mailindex.__main__")  # "mailindex": the package's __init__
LOWER = ("mailindex.sync", "mailindex.pool", "mailindex.prepare", "mailindex.parse", "mailindex.parse_headers",
         "mailindex.attachment_text", "mailindex.html_text", "mailindex.index",
         "mailindex.sources", "mailindex.query", "mailindex.threads", "mailindex.results", "mailindex.record",
         "mailindex.identity")
# What each room may not import (a name bans the module and everything under it).
BANNED = {
    "mailindex.app": ("mailindex.cli",),
    "mailindex.api": ("mailindex.app", "mailindex.cli"),
    "mailindex.engine": ("mailindex.api", "mailindex.app", "mailindex.cli"),
    **{room: ("mailindex.engine", "mailindex.api", "mailindex.app", "mailindex.cli") for room in LOWER},
    "mailindex.sources": ("mailindex.parse", "mailindex.index", "mailindex.query", "mailindex.engine",
                          "mailindex.sync", "mailindex.prepare", "mailindex.api", "mailindex.app", "mailindex.cli"),
    "mailindex.index": ("mailindex.query", "mailindex.sources", "mailindex.sync", "mailindex.prepare",
                        "mailindex.engine", "mailindex.api", "mailindex.app", "mailindex.cli"),
    "mailindex.parse": ("mailindex.index", "mailindex.query", "mailindex.sync", "mailindex.engine",
                        "mailindex.api", "mailindex.app", "mailindex.cli"),
}
# Inside api/, the resources that each may use: connect_tokens -> accounts -> sources;
# contacts -> messages -> live -> sources.
API = {
    "sources": (), "live": ("sources",), "messages": ("live", "sources"), "contacts": ("messages",),
    "accounts": ("sources",), "connect_tokens": ("accounts", "sources"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The mailindex modules that module `name` imports (`from a import b` names a.b when that is a module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def _under(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def _front_end(module: str) -> bool:
    return module in FRONT_ENDS or _under(module, "mailindex.cli")


def test_no_module_imports_a_room_above_it() -> None:
    problems = []
    for name in MODULES:
        for room, banned in BANNED.items():
            if _under(name, room):
                problems += [f"{name} imports {m}" for m in _imports(name) if any(_under(m, b) for b in banned)]
        if not _front_end(name) and name != "mailindex.app":
            problems += [f"{name} imports {m}" for m in _imports(name) if m == "mailindex.app" or _front_end(m)]
    assert problems == []


def test_the_resources_depend_one_way() -> None:
    problems = []
    for resource, allowed in API.items():
        used = {m.rpartition(".")[2] for m in _imports(f"mailindex.api.{resource}") if m.startswith("mailindex.api.")}
        problems += [f"api.{resource} imports api.{m}" for m in sorted(used - set(allowed))]
    assert sorted(API) == sorted(m.rpartition(".")[2] for m in MODULES if m.startswith("mailindex.api."))
    assert problems == []


def test_there_is_no_import_cycle() -> None:
    graph = {name: _imports(name) - {"mailindex"} for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_checker_sees_a_cycle_and_a_banned_import(tmp_path: Path) -> None:
    """The rules above read real imports: a TYPE_CHECKING import from the engine into api is one."""
    source = MODULES["mailindex.engine"].read_text()
    assert "mailindex.api" not in _imports("mailindex.engine")
    MODULES["mailindex.engine"] = tmp_path / "engine.py"
    try:
        (tmp_path / "engine.py").write_text(source + "\nif TYPE_CHECKING:\n    from mailindex.api.messages import Messages\n")
        assert "mailindex.api.messages" in _imports("mailindex.engine")
    finally:
        MODULES["mailindex.engine"] = PACKAGE / "engine.py"
