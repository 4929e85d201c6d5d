"""The `mixlake` console script: maps subcommands onto the packages' typed functions.

Every command is also a plain Python call; this module only parses arguments, shows progress
and prints summaries. Exit codes (also in the README):

- 0: success (`--help` and `--version` too);
- 1: an internal error (a bug): one line naming the exception, `--debug` shows the traceback;
- 2: a user error: a usage error (click's short usage message) or a package's error type
  (`CurationError`, `QueryError`, `TrainingError`, `EvalError`) printed as one line;
- 130: interrupted (Ctrl-C); 141: the reader of stdout went away (`| head`).

Without `--debug` no traceback is ever printed. `--debug` and `--json` are options of every
command, so `mixlake --debug ingest …` and `mixlake ingest … --debug` both work.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Annotated

import typer
from rich.text import Text
from typer import _click  # typer 0.29 vendors its own click: its exceptions are these
from typer.main import get_command

from curation import CurationError
from curation.errors import one_line
from curation.storage import apply_storage_options, parse_storage_options
from evals.errors import EvalError
from mixlake import __version__
from mixlake.commands import register
from mixlake.output import err_console, set_json_mode
from queries.errors import QueryError
from training.errors import TrainingError

USER_ERRORS = (CurationError, QueryError, TrainingError, EvalError)
EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141
INTERRUPTED = "interrupted: stopped before the end; no partial commit was made"


class _Run:
    """What the options of the current invocation asked for (reset by every `main` call)."""

    debug = False


def _debug_seen(value: bool) -> None:
    if value:
        _Run.debug = True


def _json_seen(value: bool) -> None:
    if value:
        set_json_mode(True)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"mixlake {__version__}\n")
        raise typer.Exit(EXIT_OK)


DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="Show the traceback of an error instead of one line.",
        callback=_debug_seen,
        expose_value=False,
        is_eager=True,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print tables and the summary as JSON lines on stdout (shape: see the README).",
        callback=_json_seen,
        expose_value=False,
        is_eager=True,
    ),
]


def _storage_seen(values: list[str] | None) -> None:
    if values:
        apply_storage_options(parse_storage_options(list(values)))


StorageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        help="Object-store setting KEY=VALUE for an s3:// (gs://, az://) lake, e.g. "
        "endpoint=http://127.0.0.1:9000 (repeatable; set in this process's environment, "
        "never stored).",
        callback=_storage_seen,
        expose_value=False,
        is_eager=True,
    ),
]
PrintVersionOpt = Annotated[
    bool,
    typer.Option(
        "--version",
        help="Print `mixlake <version>` and exit.",
        callback=_print_version,
        expose_value=False,
        is_eager=True,
    ),
]

app = typer.Typer(
    name="mixlake",
    help="Curate LLM fine-tuning data in one versioned Lance table: ingest, enrich, mix, "
    "train, evaluate, roll back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: DebugOpt = False,
    json: JsonOpt = False,
    storage: StorageOpt = None,
    version: PrintVersionOpt = False,
) -> None:
    """mixlake: data-centric curation for LLM fine-tuning."""


register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (see the module docstring for their meaning)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _Run.debug = False
    set_json_mode(False)
    try:
        return _invoke(args)
    except _click.exceptions.ClickException as e:  # usage errors: click's short usage text
        e.show()
        return e.exit_code
    except typer.Exit as e:  # --help, --version, ctx.exit()
        return int(e.exit_code)
    except (typer.Abort, KeyboardInterrupt) as e:
        _error(e, INTERRUPTED)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except USER_ERRORS as e:
        _error(e, f"error: {e}")
        return EXIT_USER
    except Exception as e:
        if _caused_by_interrupt(e):  # e.g. transformers turns Ctrl-C in an import into this
            _error(e, INTERRUPTED)
            return EXIT_INTERRUPTED
        _error(
            e,
            f"error: internal error: {type(e).__name__}: {one_line(e)} "
            "(rerun with --debug for the traceback)",
        )
        return EXIT_INTERNAL
    finally:
        set_json_mode(False)


def _invoke(args: list[str]) -> int:
    command = get_command(app)
    _add_shared_options(command)
    with command.make_context("mixlake", args) as ctx:
        result = command.invoke(ctx)
    return int(result) if isinstance(result, int) and not isinstance(result, bool) else EXIT_OK


def _caused_by_interrupt(e: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = e
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _add_shared_options(root: _click.Command) -> None:
    """Give every subcommand the root's `--debug`, `--json` and `--storage-option`.

    They may then follow the subcommand too (`mixlake log --json`), not only precede it.
    """
    shared = [p for p in root.params if p.name in ("debug", "json", "storage")]
    pending = list(getattr(root, "commands", {}).values())
    while pending:
        command = pending.pop()
        names = {p.name for p in command.params}
        command.params.extend(p for p in shared if p.name not in names)
        pending.extend(getattr(command, "commands", {}).values())


def _error(e: BaseException, line: str) -> None:
    """One line on stderr, or the traceback under --debug."""
    if _Run.debug:
        traceback.print_exception(e, file=sys.stderr)
    red, _, rest = line.partition(":")
    # Messages hold data (paths, SQL): never read them as rich markup.
    err_console.print(Text.assemble((red + ":", "red"), rest), soft_wrap=True)


def _silence_stdout() -> None:
    """The reader of stdout is gone: point stdout at /dev/null so the exit flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry() -> None:
    """Console-script entry point (the installed script starts in `mixlake.launcher`)."""
    finish(main())


def finish(code: int) -> None:
    """Exit with `code`; after an interrupt, without waiting for library threads."""
    if code == EXIT_INTERRUPTED:
        # Library threads (DuckDB, Lance, tokenizers) may still be inside native code; a normal
        # interpreter shutdown kills them there and the process aborts (SIGABRT, no message).
        # The work is abandoned already and the writer lock is an flock the kernel releases.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
