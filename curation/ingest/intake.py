"""Intake: one input file → tables of core columns, in file order, for `ingest`.

JSONL blocks, Parquet and Hugging Face files go through the bulk path
(`bulk.normalize_table`); rows it hands back, blocks Arrow cannot parse the way orjson
would, and the other formats go through the row path (`row.normalize_row`), which is
where every rejection gets its exact file, line and reason. `on_error` applies to both.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curation.errors import CurationError
from curation.ingest.bulk import core_from_rows, normalize_table
from curation.ingest.inputs import BadRow, Block, Row
from curation.ingest.pipeline import ahead
from curation.ingest.read_columnar import present, read_tables
from curation.ingest.read_jsonl import jsonl_blocks, jsonl_rows, jsonl_table
from curation.ingest.readers import read_rows
from curation.ingest.rejects import append_rejects, reject_row
from curation.ingest.row import Normalized, RowRejected, check_mapping, normalize_row
from curation.lake import Lake

ROW_BUFFER = 8192
"""Rows the row path normalises before turning them into Arrow columns."""

REJECTS_FLUSH = 10_000
"""Rejected rows kept in memory before they are appended to `rejects`."""


class Intake:
    """Reads inputs for one ingest: counts rows, applies `on_error`, collects rejects.

    Args:
        lake: the lake being ingested into (its `rejects` table receives the rejects).
        batch: the ingest's batch id, written on every record and reject.
        source: the `source` value of the records.
        mapping: core field → input field renames (e.g. {"text": "body"}), checked up front.
        kind: `auto`, or the kind every row must turn out to be.
        on_error: `fail` (a bad row raises `CurationError` with its file and line) or `skip`
            (it is counted and kept as a reject).
        batch_rows: rows per batch; the row buffer is at most this.
        progress: called with (stage, rows so far), or None.
        now: the ingest's timestamp.
        split: of a `DatasetDict` folder, the only split to read.
    """

    def __init__(
        self,
        lake: Lake,
        batch: str,
        source: str,
        *,
        mapping: dict[str, str] | None,
        kind: str,
        on_error: str,
        batch_rows: int,
        progress: Callable[[str, int], None] | None,
        now: dt.datetime,
        split: str | None = None,
    ) -> None:
        check_mapping(mapping)
        self.split = split  # of a DatasetDict folder: only this one (see read_columnar.read_tables)
        self.lake, self.batch, self.source = lake, batch, source
        self.mapping, self.kind, self.on_error = mapping, kind, on_error
        self.progress, self.now = progress, now
        self.row_buffer = min(batch_rows, ROW_BUFFER)
        self.rows_read = 0
        self.rejected = 0
        self.reject_reasons: Counter[str] = Counter()
        self.rejects: list[dict[str, Any]] = []
        self.flushed = False  # rejects already appended to the table by this ingest

    def cores(self, path: Path, fmt: str) -> Iterator[pa.Table]:
        """Core-column tables (CORE_SCHEMA) of the records in one input, in its order."""

        def on_bytes(n: int) -> None:
            if self.progress:
                self.progress(str(path), n)

        if self.split is not None and fmt != "hf":
            raise CurationError(f"{path}: --split {self.split} needs a DatasetDict folder")

        if fmt == "jsonl":
            for first, block, parsed in self._parsed_blocks(path, on_bytes):
                if parsed is None:
                    yield from self._by_row(path, jsonl_rows(block, first))
                    continue
                table, starts = parsed
                ends = np.append(starts[1:], len(block))

                def lines(
                    idx: np.ndarray, b: Block = block, s: Any = starts, e: Any = ends
                ) -> list[Any]:
                    return [next(jsonl_rows(b[s[i] : e[i]], 0))[1] for i in idx]

                yield self._bulk(path, table, first, lines, json_source=True)
        elif fmt in ("parquet", "hf"):
            for first, table in read_tables(path, fmt, on_bytes, self.split):

                def rows(idx: np.ndarray, t: pa.Table = table) -> list[Any]:
                    return [present(r) for r in t.take(pa.array(idx)).to_pylist()]

                yield self._bulk(path, table, first, rows, json_source=False)
        else:
            yield from self._by_row(path, read_rows(path, fmt, on_bytes, self.split))

    def _parsed_blocks(
        self, path: Path, on_bytes: Callable[[int], None]
    ) -> Iterator[tuple[int, Block, tuple[pa.Table, np.ndarray] | None]]:
        """JSONL blocks with their Arrow parse, the next one read and parsed in a thread.

        Arrow parses without the GIL, so the next block is parsed while this one is
        normalised and hashed.
        """
        blocks = jsonl_blocks(path, on_bytes)
        parsed = ((first, block, jsonl_table(block)) for first, block in blocks)
        return ahead(parsed, name="mixlake-parse")

    def finish(self) -> None:
        """Store the rejects still held in memory."""
        if self.rejects:
            append_rejects(self.lake, self.rejects)
            self.rejects.clear()

    def _bulk(
        self,
        path: Path,
        table: pa.Table,
        first: int,
        raw_rows: Callable[[np.ndarray], Sequence[Any]],
        *,
        json_source: bool,
    ) -> pa.Table:
        bulk = normalize_table(table, self.mapping, self.kind, json_source=json_source)
        self.rows_read += len(bulk.rows)
        if not len(bulk.fallback):
            return bulk.core
        kept: list[int] = []
        slow: list[Normalized] = []
        for i, raw in zip(bulk.fallback.tolist(), raw_rows(bulk.fallback), strict=True):
            norm = self._row(path, first + i, raw)
            if norm is not None:
                kept.append(i)
                slow.append(norm)
        if not slow:
            return bulk.core
        order = np.argsort(np.concatenate([bulk.rows, np.array(kept)]), kind="stable")
        return pa.concat_tables([bulk.core, core_from_rows(slow)]).take(pa.array(order))

    def _by_row(self, path: Path, rows: Iterable[Row]) -> Iterator[pa.Table]:
        buffer: list[Normalized] = []
        for location, raw in rows:
            norm = self._row(path, location, raw)
            if norm is not None:
                buffer.append(norm)
                if len(buffer) >= self.row_buffer:
                    yield core_from_rows(buffer)
                    buffer = []
        if buffer:
            yield core_from_rows(buffer)

    def _row(self, path: Path, location: int, raw: Any) -> Normalized | None:
        self.rows_read += 1
        try:
            if isinstance(raw, BadRow):
                raise RowRejected(raw.reason)
            return normalize_row(raw, self.mapping, self.kind)
        except RowRejected as e:
            if self.on_error == "fail":
                raise CurationError(f"{path}:{location}: {e}") from None
            self.rejected += 1
            self.reject_reasons[str(e).split(" (")[0]] += 1
            self.rejects.append(
                reject_row(self.batch, self.source, str(path), location, str(e), raw, self.now)
            )
            if len(self.rejects) >= REJECTS_FLUSH:  # bounded memory for bad files
                self.finish()
                self.flushed = True
            return None
