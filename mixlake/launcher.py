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
    """Console-script entry point: import the CLI with Ctrl-C handled, then run it.

    Ctrl-C is Python's KeyboardInterrupt only while the command runs (`cli.main` turns it
    into one line and 130); before, and once the exit code is known, it just exits.
    """
    previous = signal.signal(signal.SIGINT, _quiet_exit)
    from mixlake import cli

    signal.signal(signal.SIGINT, previous)
    code = cli.EXIT_INTERRUPTED
    try:
        code = cli.main()
    except KeyboardInterrupt:  # landed between main's own handlers and its return
        sys.stderr.write(_LINE)
    finally:
        # The command is over: a late Ctrl-C stays pending and cannot change the outcome.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    cli.finish(code)
