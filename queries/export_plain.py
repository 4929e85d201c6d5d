"""The plain export formats: mixlake's own rows as JSONL, Parquet, Arrow, a HF folder, CSV.

- `jsonl`: mixlake's rendered examples (`id`, `split`, `component`, `messages` |
  `prompt`+`completion` | `text`, and `meta` when the record has one), messages with their
  extra fields restored; also written whole, in mix order, at `out` (the file `mixlake train`
  and `mixlake eval remote` read).
- `records`: every core column of each record: nothing a record holds is left out.
- `parquet`, `arrow`: one file of `jsonl`'s rows with a `split` column.
- `hf`: a `datasets.DatasetDict.save_to_disk` folder, one dataset per split.
- `csv`: downloads of table rows only (nested chat turns have no CSV form).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from queries.errors import QueryError
from queries.export_formats import ExportFormat, Row, register_format


@register_format
class JsonlFormat(ExportFormat):
    """mixlake's rendered examples, one JSON object a line."""

    name = "jsonl"
    description = "rendered examples (id, split, component, messages|prompt+completion|text)"
    whole_file = True
    media_type = "application/x-ndjson"

    def encode_table(self, table: pa.Table) -> bytes:
        """One JSON object a line (NaN as null, bytes as hex, other values as text)."""
        return b"".join(
            orjson.dumps({k: _json_value(v) for k, v in row.items()}) + b"\n"
            for row in table.to_pylist()
        )


@register_format
class RecordsFormat(ExportFormat):
    """Every core column of each record (kind, text, messages, rejected, meta)."""

    name = "records"
    description = "every core column of each record (kind, text, messages, rejected, meta)"
    full_records = True

    def convert(self, row: Row, trim: bool) -> tuple[Row | None, str | None, str | None]:
        """The whole row, `kind` and `rejected` included; `trim` is unused."""
        return row, None, None


@register_format
class ParquetFormat(ExportFormat):
    """One Parquet file of the rendered examples, with a `split` column."""

    name = "parquet"
    description = "one Parquet file of jsonl's rows with a split column"
    layout = "file"
    suffix = ".parquet"
    media_type = "application/vnd.apache.parquet"

    def write_rows(self, rows: list[Row], path: Path) -> None:
        """Write the rows as one Parquet file."""
        pq.write_table(arrow_table(rows), path)

    def encode_table(self, table: pa.Table) -> bytes:
        """The table as Parquet bytes."""
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()


@register_format
class ArrowFormat(ExportFormat):
    """One Arrow IPC file of the rendered examples, with a `split` column."""

    name = "arrow"
    description = "one Arrow IPC file of jsonl's rows with a split column"
    layout = "file"
    suffix = ".arrow"

    def write_rows(self, rows: list[Row], path: Path) -> None:
        """Write the rows as one Arrow IPC file."""
        table = arrow_table(rows)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)


@register_format
class HfFormat(ExportFormat):
    """A `datasets.DatasetDict` saved to a folder, one dataset per split."""

    name = "hf"
    description = "a datasets.DatasetDict.save_to_disk folder, one dataset per split"
    layout = "folder"
    suffix = ""

    def write_rows(self, rows: list[Row], path: Path) -> None:
        """Save the rows as a `DatasetDict` (one dataset per split) in folder `path`."""
        import datasets

        by_split: dict[str, list[Row]] = {}
        for row in rows:
            by_split.setdefault(row["split"], []).append(row)
        datasets.disable_progress_bars()
        try:
            parts = {s: datasets.Dataset(arrow_table(r)) for s, r in by_split.items()}
            datasets.DatasetDict(parts).save_to_disk(str(path))
        finally:
            datasets.enable_progress_bars()


@register_format
class CsvFormat(ExportFormat):
    """CSV downloads of table rows (scalar columns); not a mix export format."""

    name = "csv"
    description = "CSV of scalar columns (downloads only)"
    for_mix = False
    media_type = "text/csv"
    nested = False

    def encode_table(self, table: pa.Table) -> bytes:
        """The table as CSV bytes (give it scalar columns only)."""
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        return buf.getvalue()


def arrow_table(rows: list[Row]) -> pa.Table:
    """The rows as one Arrow table.

    Raises:
        QueryError: the rows do not share one Arrow schema.
    """
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
        raise QueryError(
            f"the rows do not fit one Arrow schema ({e}); export with --format jsonl"
        ) from None


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
