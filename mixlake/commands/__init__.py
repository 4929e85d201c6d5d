"""Command groups: every module here with a `register(app)` function is attached to the CLI.

Discovery (not a hand-kept list) lets each group live in its own file.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer


def register(app: typer.Typer) -> None:
    """Attach every command group to the app, in module-name order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        hook = getattr(module, "register", None)
        if callable(hook):
            hook(app)
