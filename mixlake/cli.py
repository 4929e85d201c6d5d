"""The `mixlake` console script: maps subcommands onto the packages' typed functions.

Every command is also a plain Python call; this module only parses arguments, shows progress
and prints summaries. User errors of any package print one line and exit with code 2
(`--debug` shows the traceback instead).
"""

from __future__ import annotations

import sys

import click
import typer

from curation import CurationError
from evals.errors import EvalError
from mixlake.commands import register
from mixlake.output import err_console
from queries.errors import QueryError
from training.errors import TrainingError

USER_ERRORS = (CurationError, QueryError, TrainingError, EvalError)

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
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks instead of one-line errors."
    ),
) -> None:
    """mixlake: data-centric curation for LLM fine-tuning."""


register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 user error, 1 other failure)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        result = app(args=args, prog_name="mixlake", standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except click.exceptions.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("[red]interrupted[/]: nothing was committed by the interrupted step")
        return 130
    except USER_ERRORS as e:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {e}", soft_wrap=True)
        return 2


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
