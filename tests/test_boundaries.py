"""The shape of the code: storage is the only door to the database, and no import runs back up a layer.

The parts, from the bottom: base helpers (plain values, the clock, logging, YAML, settings, waits), the
connectors, then config, classifier, decisions and storage, then the running loop, the web desk, the
command line. Each part may import its own modules and the parts listed for it below, nothing above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = {"bot", "bot.models", "bot.clock", "bot.hours", "bot.logs", "bot.yamlfile", "bot.setting", "bot.waits"}

# part -> the parts it may import (besides itself and the base helpers)
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "connectors": set(),
    "config": {"connectors"},
    "classifier": set(),
    "decide": {"connectors", "config", "classifier"},
    "storage": {"connectors"},
    "run": {"connectors", "config", "classifier", "decide", "storage"},
    "web": {"connectors", "config", "classifier", "decide", "storage", "run"},
    "cli": {"connectors", "config", "classifier", "decide", "storage", "run", "web"},
}
DATABASE_LIBRARIES = ("sqlalchemy", "alembic", "psycopg")


def part_of(module: str) -> str:
    if module in BASE:
        return "base"
    if module == "connectors" or module.startswith("connectors."):
        return "connectors"
    return module.split(".")[1]


def modules() -> Iterator[tuple[str, Path]]:
    for folder in ("bot", "connectors"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's own scripts: schema history, run by storage
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imports(path: Path, top_level_only: bool = False) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file (or only those run at import time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            # `from bot.cli import run` imports the module bot.cli.run
            yield from ((f"{node.module}.{alias.name}", node.lineno) for alias in node.names)


def ours(name: str) -> bool:
    return name == "bot" or name.startswith(("bot.", "connectors"))


def known(name: str, names: set[str]) -> str | None:
    """The module of ours that `name` is (or is in), if any."""
    while name:
        if name in names:
            return name
        name = name.rpartition(".")[0]
    return None


def test_only_storage_touches_the_database() -> None:
    offenders = []
    for name, path in modules():
        if name == "bot.storage" or name.startswith("bot.storage."):
            continue
        for imported, line in imports(path):
            root = imported.split(".")[0]
            inside = imported.startswith(("bot.storage.tables", "bot.storage.engine"))
            if root in DATABASE_LIBRARIES or inside:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert offenders == [], "go through bot.storage instead:\n" + "\n".join(offenders)


def test_no_import_runs_back_up_a_layer() -> None:
    names = {name for name, _ in modules()}
    offenders = []
    for name, path in modules():
        here = part_of(name)
        for imported, line in imports(path):
            target = known(imported, names) if ours(imported) else None
            if target is None:
                continue
            there = part_of(target)
            if there not in {here, "base"} | ALLOWED[here]:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {there} ({target})")
    assert offenders == [], "\n".join(offenders)


def test_no_import_circle_at_import_time() -> None:
    names = {name for name, _ in modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules():
        targets = {known(i, names) for i, _ in imports(path, top_level_only=True) if ours(i)}
        # A package's modules import the package itself first: that edge is Python's, not a circle of ours.
        graph[name] = {t for t in targets if t is not None and t != name and not name.startswith(f"{t}.")}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node, [node])


def test_every_part_of_the_map_exists() -> None:
    """docs/architecture.md names each part's folder; a part missing from the code means the map lies."""
    names = {name for name, _ in modules()}
    for part in ALLOWED:
        if part not in {"base", "connectors"}:
            assert f"bot.{part}" in names, part
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for part in ("bot/cli/", "bot/config/", "bot/classifier/", "bot/decide/", "bot/storage/", "bot/run/", "bot/web/"):
        assert part in text, f"docs/architecture.md does not mention {part}"
