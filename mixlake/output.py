"""Terminal output shared by the command groups: console, tables, summaries, progress."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape
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

from curation.errors import CurationError, one_line

# Off a terminal (pipes, CI logs) rich would wrap at 80 columns; tables read better wider.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
console = Console(highlight=False, soft_wrap=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)


def write_raw(data: bytes | str) -> None:
    """Write machine output (CSV, JSON, Parquet) to stdout byte for byte: no wrapping, no markup.

    Text is encoded as UTF-8 whatever the locale, so a pipe receives exactly these bytes.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (some test harnesses): text is all it can take
        sys.stdout.write(raw.decode("utf-8", errors="surrogateescape"))
    else:
        buffer.write(raw)
        buffer.flush()
    sys.stdout.flush()


MACHINE_FORMATS = ("csv", "json", "jsonl", "parquet")
"""Formats written raw (`write_raw`): a pipe or file gets exactly these bytes."""


def encode_table(data: pa.Table, fmt: str) -> bytes:
    """An Arrow table as the bytes of one of `MACHINE_FORMATS`.

    csv: a header, then one quoted row per record (nested values as JSON text); json: one JSON
    array of objects; jsonl: one object per line; parquet: a Parquet file.
    """
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(data, buf)
        return buf.getvalue()
    if fmt == "csv":
        buf = io.BytesIO()
        pacsv.write_csv(_flat(data), buf)
        return buf.getvalue()
    lines = [_json_line(row) for row in data.to_pylist()]
    if fmt == "jsonl":
        return "".join(line + "\n" for line in lines).encode("utf-8")
    if fmt == "json":
        return ("[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n").encode("utf-8")
    raise ValueError(f"unknown machine format {fmt!r}")


def _json_line(row: dict[str, Any]) -> str:
    # U+2028/2029 are legal inside JSON strings but split lines for many readers
    # (`str.splitlines`, JavaScript): escape them so one record stays one line.
    text = json.dumps(row, default=str, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _flat(data: pa.Table) -> pa.Table:
    """CSV cannot hold lists or structs: write those columns as JSON text."""
    columns = []
    for field, column in zip(data.schema, data.columns, strict=True):
        t = field.type
        if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            values = [None if v is None else _json_value(v) for v in column.to_pylist()]
            column = pa.chunked_array([pa.array(values, pa.string())])
        columns.append(column)
    return pa.table(columns, names=data.column_names)


def _json_value(v: Any) -> str:
    if isinstance(v, bytes):
        return v.hex()
    return json.dumps(v, default=str, ensure_ascii=False)


class _Mode:
    """How this invocation prints: `--json` turns tables and summaries into JSON lines."""

    json = False


def set_json_mode(on: bool) -> None:
    """Switch `--json` output on or off (the CLI sets it for each invocation).

    In JSON mode every table and the closing summary is one JSON object per line on stdout
    (the shape is in the README, "Exit codes and output"); anything else a command prints
    for people goes to stderr, so stdout holds only those lines.
    """
    _Mode.json = on
    console.file = sys.stderr if on else None  # type: ignore[assignment]


def _json_out(obj: dict[str, Any]) -> None:
    write_raw(_json_line(obj) + "\n")


def show_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as a table (a `{"type": "table", …}` line under --json)."""
    if _Mode.json:
        rows = [list(row) for row in rows]
        _json_out({"type": "table", "title": title, "columns": list(columns), "rows": rows})
        return
    table = Table(title=title, show_lines=False, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        # Cells are data (e.g. "[INST] … [/INST]"), never rich markup.
        table.add_row(*(Text(_cell(v)) for v in row))
    console.print(table)


def show_arrow(data: pa.Table, title: str | None = None, max_chars: int = 80) -> None:
    """Print an Arrow table, truncating long cells (every row, uncut, under --json)."""
    if _Mode.json:
        rows = [list(row.values()) for row in data.to_pylist()]
        show_table(title, data.column_names, rows)
        return
    rows = [[_short(v, max_chars) for v in row.values()] for row in data.slice(0, 200).to_pylist()]
    show_table(title, data.column_names, rows)
    if data.num_rows > 200:
        console.print(f"… {data.num_rows - 200} more rows (use --format csv --out FILE)")


def summary(title: str, items: dict[str, Any]) -> None:
    """The short summary every command ends with (on stderr, so stdout stays data).

    Under --json it is the last line on stdout: `{"type": "summary", "title": …, "values": …}`.
    """
    if _Mode.json:
        _json_out({"type": "summary", "title": title, "values": dict(items)})
        return
    parts = " · ".join(f"{k}: [bold]{escape(_cell(v))}[/]" for k, v in items.items())
    err_console.print(f"[green]✓[/] {escape(title)} — {parts}")


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


def write_table(result: pa.Table, fmt: str, out: Path | None) -> None:
    """Print an Arrow table (`table`), or write it as csv, json, jsonl or parquet.

    Machine formats go to `out`, or raw to stdout (byte-exact in a pipe); parquet to stdout
    only when stdout is not a terminal.
    """
    if fmt != "table" and fmt not in MACHINE_FORMATS:
        raise CurationError(f"unknown --format {fmt!r}; use table, {', '.join(MACHINE_FORMATS)}")
    if fmt == "table" and out is not None:  # `--out x.csv`: the suffix names the format
        fmt = out.suffix.lower().lstrip(".")
        if fmt not in MACHINE_FORMATS:
            raise CurationError(
                f"--out {out}: give --format csv|json|jsonl|parquet (or a file with that suffix)"
            )
    if fmt == "table":
        show_arrow(result)
        return
    if fmt == "parquet" and out is None and sys.stdout.isatty():
        raise CurationError("--format parquet needs --out FILE (or a pipe: it is binary)")
    data = encode_table(result, fmt)
    if out is None:
        write_raw(data)
        return
    try:
        out.write_bytes(data)
    except OSError as e:
        raise CurationError(f"--out {out}: {e.strerror or one_line(e)}") from None
