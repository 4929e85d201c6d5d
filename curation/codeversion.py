"""Which code made a result: the git commit of the checkout mixlake runs from.

Runs and evals both record it, so it lives in the lowest package that both import.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit() -> str | None:
    """The short commit of the running code, with `+dirty` when tracked files have changes.

    Returns None outside a git checkout (an installed wheel) or when git is missing.
    """
    here = Path(__file__).resolve().parent
    try:
        head = _git(here, "rev-parse", "--short", "HEAD")
        dirty = _git(here, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def _git(where: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(where), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout.strip()
