"""Imports flow one way (DESIGN.md): a package may import only those listed for it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"curation", "queries", "training", "evals", "mixlake", "bench"}
ALLOWED = {
    "curation": set(),
    "queries": {"curation"},
    "training": {"curation", "queries"},
    "evals": {"curation", "queries", "training"},
    "mixlake": {"curation", "queries", "training", "evals"},  # the thin CLI
    "bench": {"curation", "queries", "training", "evals", "mixlake"},  # the UI bench too
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_follow_the_layering(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for imported in imported_packages(path) - ALLOWED[package] - {package}:
            bad.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_training_imports_from_evals_are_model_loading_only() -> None:
    for path in sorted((ROOT / "evals").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("training")
            ):
                assert node.module in {"training", "training.models", "training.errors"}, (
                    f"{path.name} imports {node.module}; evals may use training's model loading"
                )


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from training.trainer import train\nimport queries.spec\n")
    assert imported_packages(bad) == {"training", "queries"}


# ------------------------------------------------------------------ no import cycles
PACKAGES = ("curation", "queries", "training", "evals", "mixlake")


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the modules of ours it imports, anywhere in the file (functions included).

    Imports under `if TYPE_CHECKING:` (never run) do not count.
    """
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                deps |= {r for a in node.names if (r := resolve(a.name))}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if (r := resolve(full if full in modules else node.module)) is not None:
                        deps.add(r)
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# Cycles still to untangle (each a group of modules importing each other, through a function-local
# import). It is empty: a new cycle fails the test.
KNOWN_CYCLES: list[list[str]] = []


def test_no_new_import_cycles() -> None:
    found = cycles(module_graph())
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "import cycles (function-local imports count):\n" + "\n".join(
        " ↔ ".join(c) for c in new
    )


def test_the_cycle_finder_sees_a_function_local_cycle(tmp_path: Path) -> None:
    (tmp_path / "curation").mkdir()
    (tmp_path / "curation" / "__init__.py").write_text("")
    (tmp_path / "curation" / "a.py").write_text("from curation.b import f\n")
    (tmp_path / "curation" / "b.py").write_text("def f():\n    from curation.a import g\n")
    (tmp_path / "curation" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from curation.a import g\n"
    )
    for package in PACKAGES[1:]:
        (tmp_path / package).mkdir()
    assert cycles(module_graph(tmp_path)) == [["curation.a", "curation.b"]]
