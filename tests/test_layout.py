"""The package's layout: no import circle between whisper_cli's modules (imports inside
functions count too), and no folder so full that it needs regrouping."""

from __future__ import annotations

import ast
from pathlib import Path

import whisper_cli

PACKAGE = Path(whisper_cli.__file__).parent
MAX_MODULES_PER_FOLDER = 15


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """The whisper_cli modules that `name` imports anywhere in its file (at the top, inside
    functions, under conditions), each with the line of its first import. `from a.b import c`
    is an import of the module a.b.c when there is one, else of a.b."""

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: dict[str, int] = {}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [owner(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..a import b
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else owner(base)
                for alias in node.names
            ]
        else:
            continue
        for module in targets:
            if module and module != name:
                found.setdefault(module, node.lineno)
    return found


def import_graph() -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}, known


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import circle, as the list of modules along it (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done, no circle through it
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, int]], known: dict[str, Path]) -> str:
    steps = [
        f"  {a} imports {b} ({known[a].relative_to(PACKAGE.parent)}:{graph[a][b]})"
        for a, b in zip(cycle, cycle[1:])
    ]
    return "import circle: " + " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_no_import_circle_in_the_package():
    graph, known = import_graph()
    assert len(graph) > 40 and "whisper_cli.commands" in graph  # the walk found the package
    assert "whisper_cli.commands.common" in graph["whisper_cli.commands.spool"]
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph, known)


def test_the_cycle_finder_finds_a_circle_through_a_function_level_import(tmp_path):
    known = {"whisper_cli.a": tmp_path / "a.py", "whisper_cli.b": tmp_path / "b.py"}
    known["whisper_cli.a"].write_text("from whisper_cli.b import x\n")
    known["whisper_cli.b"].write_text("def f():\n    import whisper_cli.a\n")
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert find_cycle(graph) == ["whisper_cli.a", "whisper_cli.b", "whisper_cli.a"]


def test_no_folder_holds_more_than_15_modules():
    per_folder: dict[Path, int] = {}
    for path in PACKAGE.rglob("*.py"):
        per_folder[path.parent] = per_folder.get(path.parent, 0) + 1
    crowded = {
        str(folder.relative_to(PACKAGE.parent)): count
        for folder, count in per_folder.items()
        if count > MAX_MODULES_PER_FOLDER
    }
    assert not crowded, f"more than {MAX_MODULES_PER_FOLDER} modules (regroup them): {crowded}"
