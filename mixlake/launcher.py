"""The console script's first module: nothing heavy is imported before Ctrl-C is handled.

`mixlake` spends its first second or two importing Lance, DuckDB, Arrow and typer. A Ctrl-C
in that window used to print a `KeyboardInterrupt` traceback from deep inside an import;
here it is one line and exit code 130, like a Ctrl-C at any later point.
"""

from __future__ import annotations

import os
import signal
import sys

_LINE = "interrupted: stopped before the end; no partial commit was made\n"


def _quiet_exit(signum: int, frame: object) -> None:
    sys.stderr.write(_LINE)
    sys.stderr.flush()
    os._exit(130)  # nothing was started yet: no lock, no file, nothing to clean up


def entry() -> None:
    """Console-script entry point: import the CLI with Ctrl-C handled, then run it."""
    previous = signal.signal(signal.SIGINT, _quiet_exit)
    try:
        from mixlake import cli
    finally:
        signal.signal(signal.SIGINT, previous)
    cli.entry()
