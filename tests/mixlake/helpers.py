"""Ways to run the CLI in tests: the real `mixlake` process, and in-process calls of `main`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mixlake.cli import main

REPO = Path(__file__).resolve().parents[2]


def mixlake(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m mixlake.cli ARGS` with stdout and stderr as pipes (not a terminal)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("COLUMNS", None)  # as in a real pipe: rich must not decide the width of data
    return subprocess.run(
        [sys.executable, "-m", "mixlake.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )


class Cli:
    """`main(ARGS)` in this process: (exit code, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err
