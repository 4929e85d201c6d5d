"""Columnar inputs (Parquet files, Hugging Face `save_to_disk` folders) read as Arrow tables.

Ingest normalises these tables in bulk (`columnar.normalize_table`); `readers.read_rows`
turns them into rows for the row path. A null cell counts as an absent field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.errors import CurationError

Progress = Callable[[int], None]


def present(row: dict[str, Any]) -> dict[str, Any]:
    """Drop null fields: in a columnar file a null means the row lacks that field.

    A Parquet or Arrow file with rows of several shapes has the union of their columns, so
    without this a text row would carry `instruction: null` and be taken for an instruction.
    """
    return {k: v for k, v in row.items() if v is not None}


def read_tables(
    p: Path, fmt: str, progress: Progress | None = None
) -> Iterator[tuple[int, pa.Table]]:
    """Stream a columnar input (`parquet` or `hf`) as tables: (number of the first row, table).

    Row numbers are 1-based and count across the whole input, as in `read_rows`.
    """
    batches = _parquet_batches(p) if fmt == "parquet" else _hf_batches(p)
    number = 1
    for batch, consumed in batches:
        if progress:
            progress(consumed)
        yield number, pa.Table.from_batches([batch])
        number += batch.num_rows


def _parquet_batches(p: Path) -> Iterator[tuple[pa.RecordBatch, int]]:
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as e:
        raise CurationError(f"{p}: not a readable Parquet file ({e})") from None
    total = max(pf.metadata.num_rows, 1)
    size = p.stat().st_size
    for batch in pf.iter_batches(batch_size=65536):
        yield batch, int(size * batch.num_rows / total)


def _hf_batches(p: Path) -> Iterator[tuple[pa.RecordBatch, int]]:
    for arrow_file in _hf_files(p):
        with pa.memory_map(str(arrow_file)) as source:
            try:
                reader = pa.ipc.open_stream(source)
            except pa.ArrowInvalid:
                reader = pa.ipc.open_file(source)  # type: ignore[assignment]
            batches = list(reader)  # memory-mapped: no copy
        total = max(sum(b.num_rows for b in batches), 1)
        size = arrow_file.stat().st_size
        for batch in batches:
            yield batch, int(size * batch.num_rows / total)


def _hf_files(p: Path) -> list[Path]:
    state_path = p / "state.json"
    if state_path.exists():
        files = [p / f["filename"] for f in json.loads(state_path.read_text())["_data_files"]]
    else:
        files = sorted(p.glob("*.arrow"))
    if not files:
        raise CurationError(f"{p}: no .arrow files in this Hugging Face dataset folder")
    return files


def rows_of_tables(tables: Iterator[tuple[int, pa.Table]]) -> Iterator[tuple[int, Any]]:
    for first, table in tables:
        for number, row in enumerate(table.to_pylist(), start=first):
            yield number, present(row)
