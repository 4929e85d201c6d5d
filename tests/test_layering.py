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
