"""Terminal output shared by the command groups: console, tables, summaries, progress."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

# Off a terminal (pipes, CI logs) rich would wrap at 80 columns; tables read better wider.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
console = Console(highlight=False, soft_wrap=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)


def show_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as a table."""
    table = Table(title=title, show_lines=False, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        # Cells are data (e.g. "[INST] … [/INST]"), never rich markup.
        table.add_row(*(Text(_cell(v)) for v in row))
    console.print(table)


def show_arrow(data: pa.Table, title: str | None = None, max_chars: int = 80) -> None:
    """Print an Arrow table, truncating long cells."""
    rows = [[_short(v, max_chars) for v in row.values()] for row in data.slice(0, 200).to_pylist()]
    show_table(title, data.column_names, rows)
    if data.num_rows > 200:
        console.print(f"… {data.num_rows - 200} more rows (use --format csv --out FILE)")


def summary(title: str, items: dict[str, Any]) -> None:
    """The short summary every command ends with (on stderr, so stdout stays data)."""
    parts = " · ".join(f"{k}: [bold]{_cell(v)}[/]" for k, v in items.items())
    err_console.print(f"[green]✓[/] {title} — {parts}")


def byte_progress() -> Progress:
    """A progress bar for reading files."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def row_progress() -> Progress:
    """A progress bar for work counted in rows."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return "" if v is None else str(v)


def _short(v: Any, n: int) -> Any:
    if isinstance(v, str | list | dict):
        text = v if isinstance(v, str) else str(v)
        text = text.replace("\n", "⏎ ")
        return text if len(text) <= n else text[: n - 1] + "…"
    return v


@contextmanager
def step_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A row progress bar whose `update(done, total)` fits `curation.steps.apply(progress=)`."""
    with row_progress() as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def step_items(report: Any, *, with_columns: bool = True) -> dict[str, Any]:
    """Summary items of a `curation.steps.StepReport`."""
    items = {"columns": ", ".join(report.columns)} if with_columns else {}
    return items | {
        "rows computed": report.rows_computed,
        "version": report.version if report.version is not None else "unchanged",
        "resumed": "yes" if report.resumed else "no",
    }
