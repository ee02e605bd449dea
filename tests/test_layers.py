"""Data flows one way: sources never parse or index, index never queries, nothing imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mailindex"
RULES = {
    "mailindex/sources/": ("mailindex.parse", "mailindex.index", "mailindex.query", "mailindex.engine",
                           "mailindex.sync", "mailindex.cli"),
    "mailindex/index/": ("mailindex.query", "mailindex.engine", "mailindex.sync", "mailindex.cli",
                         "mailindex.sources"),
    "mailindex/parse": ("mailindex.index", "mailindex.query", "mailindex.engine", "mailindex.sync", "mailindex.cli"),
    "mailindex/": ("mailindex.cli",),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_imports_flow_downstream() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if rel == "mailindex/cli.py":
            continue
        for prefix, banned in RULES.items():
            if rel.startswith(prefix):
                for name in _imports(path):
                    if any(name == b or name.startswith(b if b.endswith(".") else b + ".") for b in banned):
                        problems.append(f"{rel} imports {name}")
    assert problems == []
