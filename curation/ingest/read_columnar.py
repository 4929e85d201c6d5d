"""Columnar inputs (Parquet files, Hugging Face `save_to_disk` folders) read as Arrow tables.

Ingest normalises these tables in bulk (`bulk.normalize_table`); `readers.read_rows`
turns them into rows for the row path. A null cell counts as an absent field.

A `DatasetDict.save_to_disk` folder (`dataset_dict.json` + one folder per split) is read split
by split, or only the split asked for; each row then carries its split as the field `split`
(so it lands in `meta`), and so does a row of one split folder of such a dict. A broken
folder (unreadable `state.json`, a missing or corrupt `.arrow` file) is a one-line error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.errors import CurationError
from curation.ingest.inputs import MAX_TYPE_DEPTH, type_depth

Progress = Callable[[int], None]


def present(row: dict[str, Any]) -> dict[str, Any]:
    """Drop null fields: in a columnar file a null means the row lacks that field.

    A Parquet or Arrow file with rows of several shapes has the union of their columns, so
    without this a text row would carry `instruction: null` and be taken for an instruction.
    """
    return {k: v for k, v in row.items() if v is not None}


def is_hf_folder(p: Path) -> bool:
    """Whether folder `p` is a `Dataset` or `DatasetDict` written by `save_to_disk`."""
    return any((p / n).exists() for n in ("dataset_info.json", "state.json", _DICT_FILE))


def read_tables(
    p: Path, fmt: str, progress: Progress | None = None, split: str | None = None
) -> Iterator[tuple[int, pa.Table]]:
    """Stream a columnar input (`parquet` or `hf`) as tables: (number of the first row, table).

    Row numbers are 1-based and count across the whole input, as in `read_rows`.

    Args:
        p: the file or folder.
        fmt: `parquet` or `hf`.
        progress: called with the bytes each table consumed.
        split: of a `DatasetDict` folder, only this split (default: all, in its order).

    Raises:
        CurationError: unreadable input, an unknown split, a column named twice, or a
            `split` column in a split of a DatasetDict.
    """
    if split is not None and not (fmt == "hf" and (p / _DICT_FILE).exists()):
        raise CurationError(f"{p}: --split {split} needs a DatasetDict save_to_disk folder")
    if fmt == "parquet":
        parts: list[tuple[Path, str | None]] = [(p, None)]
    else:
        parts = _hf_parts(p, split)
    number = 1
    for part, split_name in parts:
        batches = _parquet_batches(part) if fmt == "parquet" else _hf_batches(part)
        for batch, consumed in batches:
            if progress:
                progress(consumed)
            table = pa.Table.from_batches([batch])
            _check_columns(part, table, split_name)
            if split_name is not None:
                table = table.append_column("split", pa.repeat(pa.scalar(split_name), len(table)))
            yield number, table
            number += batch.num_rows


_DICT_FILE = "dataset_dict.json"


def _hf_parts(p: Path, split: str | None) -> list[tuple[Path, str | None]]:
    """The split folders of an HF folder, with the split name to keep (None: a plain Dataset)."""
    if not (p / _DICT_FILE).exists():
        parent = p.parent / _DICT_FILE
        # One split folder of a DatasetDict: its rows keep that split too.
        return [(p, p.name if parent.exists() and p.name in _splits(p.parent) else None)]
    splits = _splits(p)
    if split is not None:
        if split not in splits:
            raise CurationError(f"{p}: no split {split!r} (splits: {', '.join(splits)})")
        splits = [split]
    return [(p / s, s) for s in splits]


def _splits(p: Path) -> list[str]:
    try:
        splits = json.loads((p / _DICT_FILE).read_text())["splits"]
        if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
            raise TypeError("splits is not a list of names")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CurationError(f"{p / _DICT_FILE}: not a readable DatasetDict index ({e})") from None
    return splits


def _check_columns(p: Path, table: pa.Table, split: str | None) -> None:
    names = table.column_names
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:
        raise CurationError(f"{p}: column {dup!r} appears twice")
    deep = next((f.name for f in table.schema if type_depth(f.type) > MAX_TYPE_DEPTH), None)
    if deep is not None:
        raise CurationError(f"{p}: column {deep!r} nests deeper than {MAX_TYPE_DEPTH} levels")
    if split is not None and "split" in names:
        raise CurationError(
            f"{p}: has a column 'split' of its own, so the DatasetDict split cannot be kept "
            "beside it; rename that column first"
        )


def _parquet_batches(p: Path) -> Iterator[tuple[pa.RecordBatch, int]]:
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as e:
        raise CurationError(f"{p}: not a readable Parquet file ({e})") from None
    total = max(pf.metadata.num_rows, 1)
    size = p.stat().st_size
    batches = pf.iter_batches(batch_size=65536)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as e:
            raise CurationError(f"{p}: not a readable Parquet file ({e})") from None
        yield batch, int(size * batch.num_rows / total)


def _hf_batches(p: Path) -> Iterator[tuple[pa.RecordBatch, int]]:
    for arrow_file in _hf_files(p):
        try:
            batches = _arrow_batches(arrow_file)
        except (pa.ArrowInvalid, OSError) as e:
            raise CurationError(f"{arrow_file}: not a readable Arrow file ({e})") from None
        total = max(sum(b.num_rows for b in batches), 1)
        size = arrow_file.stat().st_size
        for batch in batches:
            yield batch, int(size * batch.num_rows / total)


def _arrow_batches(arrow_file: Path) -> list[pa.RecordBatch]:
    with pa.memory_map(str(arrow_file)) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            reader = pa.ipc.open_file(source)
        return list(reader)  # memory-mapped: no copy


def _hf_files(p: Path) -> list[Path]:
    state_path = p / "state.json"
    if state_path.exists():
        try:
            names = [f["filename"] for f in json.loads(state_path.read_text())["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CurationError(f"{state_path}: not a readable dataset state ({e!r})") from None
        files = [p / str(n) for n in names]
        missing = next((f for f in files if not f.is_file()), None)
        if missing is not None:
            raise CurationError(f"{missing}: listed in state.json but missing")
    else:
        files = sorted(p.glob("*.arrow"))
    if not files:
        raise CurationError(f"{p}: no .arrow files in this Hugging Face dataset folder")
    return files


def rows_of_tables(
    tables: Iterator[tuple[int, pa.Table]],
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of `read_tables`' tables one by one: (row number, row without null fields)."""
    for first, table in tables:
        for number, row in enumerate(table.to_pylist(), start=first):
            yield number, present(row)
