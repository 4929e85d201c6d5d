"""The column-step abstraction: one `apply` for every enrichment, score, mark and per-row metric.

A step turns Arrow batches of some `records` columns into batches of new columns. `apply` does
the rest once: batching, progress, resuming after a crash, writing the columns as one new
version, provenance in the Arrow field metadata, and the journal message.

Writing paths:
- new columns: Lance `add_columns` with a checkpointed batch UDF. A crash or Ctrl-C commits
  nothing; rerunning the same step resumes from the batches already computed.
- existing columns made by the same step and parameters: only rows whose first output column
  is still null (and match `where`) are computed, then written with one `merge_insert`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import lance
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curation.errors import CurationError
from curation.lake import Lake

META_STEP = b"mixlake.step"
META_PARAMS = b"mixlake.params"
META_VERSION = b"mixlake.records_version"
META_CREATED = b"mixlake.created_at"

RowProgress = Callable[[int, int], None]
"""Called with (rows done, rows total)."""


@runtime_checkable
class ColumnStep(Protocol):
    """A versioned transformation from some columns of `records` to new columns.

    Attributes:
        name: versioned name, e.g. `quality_heuristic_v1`; changing behaviour means a new suffix.
        input_columns: the `records` columns `__call__` reads (`id` is always available).
    """

    name: str
    input_columns: tuple[str, ...]

    def params(self) -> dict[str, Any]:
        """Parameters that shape the output; stored as provenance, compared on rerun."""
        ...

    def output_schema(self) -> pa.Schema:
        """The new columns. The first one must be non-null for every row the step computed."""
        ...

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Compute the output columns for a batch of input rows (same length, same order)."""
        ...


@runtime_checkable
class PreparedStep(ColumnStep, Protocol):
    """A step that must see the rows before computing them (e.g. dedup groups, k-means)."""

    def prepare(self, records: lance.LanceDataset, where: str | None) -> None:
        """Look at `records` (the rows `where` selects) before `__call__` is used."""
        ...


@dataclass(frozen=True)
class StepReport:
    """What one `apply` did. `version` is None when nothing needed computing."""

    step: str
    columns: tuple[str, ...]
    rows_computed: int
    version: int | None
    resumed: bool = False

    @property
    def no_op(self) -> bool:
        """Whether the step found nothing to do."""
        return self.version is None


def column_provenance(field: pa.Field) -> dict[str, Any]:
    """The provenance stored on a column made by a step (empty for core columns)."""
    meta = field.metadata or {}
    if META_STEP not in meta:
        return {}
    return {
        "step": meta[META_STEP].decode(),
        "params": orjson.loads(meta.get(META_PARAMS, b"{}")),
        "records_version": int(meta.get(META_VERSION, b"0")),
        "created_at": meta.get(META_CREATED, b"").decode(),
    }


def apply(
    step: ColumnStep,
    lake: Lake,
    *,
    where: str | None = None,
    replace: bool = False,
    batch_size: int = 1024,
    progress: RowProgress | None = None,
) -> StepReport:
    """Compute `step`'s columns on `records` as one new version.

    Args:
        step: the step to run.
        lake: the lake.
        where: optional SQL predicate; other rows get nulls (and can be filled by a later run).
        replace: recompute from scratch when the columns exist with other parameters.
        batch_size: rows per batch handed to the step.
        progress: optional callback (rows done, rows total).

    Raises:
        CurationError: bad predicate, missing input column, or columns that exist with other
            parameters and no `replace`.
    """
    out_schema = _with_provenance(step, lake.latest_version())
    names = tuple(out_schema.names)
    ds = lake.dataset("records")
    missing_inputs = [c for c in step.input_columns if c not in ds.schema.names]
    if missing_inputs:
        raise CurationError(
            f"step {step.name} needs column(s) {', '.join(missing_inputs)}; run the step that "
            "makes them first"
        )
    present = [n for n in names if n in ds.schema.names]
    if present and (replace or len(present) != len(names)):
        if not replace:
            raise CurationError(
                f"step {step.name}: columns {present} exist but {sorted(set(names) - set(present))}"
                " do not; rerun with --replace"
            )
        ds.drop_columns(present)
        lake.journal(
            "records",
            lake.latest_version(),
            "drop-columns",
            f"{step.name}: dropped {', '.join(present)} to replace them",
            {"step": step.name, "columns": present},
            0,
            0,
        )
        ds = lake.dataset("records")
        present = []
    if present:
        made_by = column_provenance(ds.schema.field(names[0]))
        if made_by.get("params") != _jsonable(step.params()) or made_by.get("step") != step.name:
            raise CurationError(
                f"column {names[0]} was made by {made_by.get('step')} with parameters "
                f"{made_by.get('params')}; now asked with {_jsonable(step.params())}. Give the "
                "step a new name or pass --replace (the old column stays in history)"
            )
        return _fill_missing(step, lake, ds, out_schema, where, batch_size, progress)
    return _add_new(step, lake, ds, out_schema, where, batch_size, progress)


def _add_new(
    step: ColumnStep,
    lake: Lake,
    ds: lance.LanceDataset,
    out_schema: pa.Schema,
    where: str | None,
    batch_size: int,
    progress: RowProgress | None,
) -> StepReport:
    wanted = _ids_matching(ds, where) if where else None
    if isinstance(step, PreparedStep):
        step.prepare(ds, where)
    total = ds.count_rows()
    done = [0, 0]  # rows seen, rows computed
    checkpoint = _checkpoint_path(lake, step, where, int(ds.version))
    resumed = checkpoint is not None and checkpoint.exists()
    read = ["id", *[c for c in step.input_columns if c != "id"]]

    def compute(batch: pa.RecordBatch) -> pa.RecordBatch:
        if wanted is None:
            out = _checked(step, batch, out_schema)
        else:
            mask = pc.is_in(batch.column("id"), value_set=wanted)
            out = _scatter(step, batch, mask, out_schema)
            done[1] += pc.sum(mask).as_py() or 0
        done[0] += batch.num_rows
        if progress:
            progress(done[0], total)
        return out

    udf = lance.batch_udf(output_schema=out_schema, checkpoint_file=checkpoint)(compute)
    try:
        ds.add_columns(udf, read_columns=read, batch_size=batch_size)
    except OSError as e:
        raise CurationError(f"step {step.name} failed: {_first_line(e)}") from e
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    rows = done[0] if wanted is None else len(wanted)
    return _journal(lake, step, out_schema, rows, where, resumed)


def _fill_missing(
    step: ColumnStep,
    lake: Lake,
    ds: lance.LanceDataset,
    out_schema: pa.Schema,
    where: str | None,
    batch_size: int,
    progress: RowProgress | None,
) -> StepReport:
    first = out_schema.names[0]
    predicate = f"({first} IS NULL)" + (f" AND ({where})" if where else "")
    todo = _count(ds, predicate)
    if todo == 0:
        return StepReport(step.name, tuple(out_schema.names), 0, None)
    if isinstance(step, PreparedStep):
        step.prepare(ds, where)
    read = ["id", *[c for c in step.input_columns if c != "id"]]
    update_schema = pa.schema([pa.field("id", pa.string()), *out_schema])

    def batches() -> Iterator[pa.RecordBatch]:
        done = 0
        for batch in ds.to_batches(columns=read, filter=predicate, batch_size=batch_size):
            out = _checked(step, batch, out_schema)
            done += batch.num_rows
            if progress:
                progress(done, todo)
            yield pa.RecordBatch.from_arrays(
                [batch.column("id"), *out.columns], schema=update_schema
            )

    reader = pa.RecordBatchReader.from_batches(update_schema, batches())
    try:
        ds.merge_insert("id").when_matched_update_all().execute(reader)
    except OSError as e:
        raise CurationError(f"step {step.name} failed: {_first_line(e)}") from e
    return _journal(lake, step, out_schema, todo, where, resumed=True)


def _journal(
    lake: Lake, step: ColumnStep, schema: pa.Schema, rows: int, where: str | None, resumed: bool
) -> StepReport:
    version = lake.latest_version()
    lake.journal(
        "records",
        version,
        "step",
        f"{step.name}: computed {', '.join(schema.names)} for {rows} rows"
        + (f" where {where}" if where else ""),
        {"step": step.name, "params": step.params(), "where": where},
        0,
        0,
    )
    return StepReport(step.name, tuple(schema.names), rows, version, resumed)


def _checked(step: ColumnStep, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    out = step(batch)
    if out.num_rows != batch.num_rows:
        raise CurationError(
            f"step {step.name} returned {out.num_rows} rows for a batch of {batch.num_rows}"
        )
    return pa.RecordBatch.from_arrays(
        [out.column(n).cast(schema.field(n).type) for n in schema.names], schema=schema
    )


def _scatter(
    step: ColumnStep, batch: pa.RecordBatch, mask: pa.Array, schema: pa.Schema
) -> pa.RecordBatch:
    """Compute only the masked rows; the others get nulls."""
    selected = batch.filter(mask)
    if selected.num_rows == 0:
        return pa.RecordBatch.from_arrays(
            [pa.nulls(batch.num_rows, f.type) for f in schema], schema=schema
        )
    out = _checked(step, selected, schema)
    positions = pc.cumulative_sum(pc.cast(mask, pa.int64())).to_numpy() - 1
    take = pa.array(
        [int(p) if m else None for p, m in zip(positions, mask.to_pylist(), strict=True)],
        pa.int64(),
    )
    return pa.RecordBatch.from_arrays([c.take(take) for c in out.columns], schema=schema)


def _ids_matching(ds: lance.LanceDataset, where: str) -> pa.Array:
    try:
        return ds.to_table(columns=["id"], filter=where).column("id").combine_chunks()
    except (ValueError, OSError) as e:
        raise CurationError(f"bad --where predicate {where!r}: {_first_line(e)}") from None


def _count(ds: lance.LanceDataset, predicate: str) -> int:
    try:
        return int(ds.count_rows(filter=predicate))
    except (ValueError, OSError) as e:
        raise CurationError(f"bad --where predicate {predicate!r}: {_first_line(e)}") from None


def _with_provenance(step: ColumnStep, records_version: int) -> pa.Schema:
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    meta = {
        META_STEP: step.name.encode(),
        META_PARAMS: orjson.dumps(_jsonable(step.params()), option=orjson.OPT_SORT_KEYS),
        META_VERSION: str(records_version).encode(),
        META_CREATED: stamp.encode(),
    }
    return pa.schema(
        [f.with_metadata({**(f.metadata or {}), **meta}) for f in step.output_schema()]
    )


def _jsonable(params: dict[str, Any]) -> Any:
    return orjson.loads(orjson.dumps(params, default=str, option=orjson.OPT_SORT_KEYS))


def _checkpoint_path(lake: Lake, step: ColumnStep, where: str | None, version: int) -> Path | None:
    if "://" in lake.uri:
        return None
    key = orjson.dumps(
        [step.name, _jsonable(step.params()), where, version], option=orjson.OPT_SORT_KEYS
    )
    digest = hashlib.blake2b(key, digest_size=8).hexdigest()
    folder = Path(lake.uri) / "_checkpoints"
    folder.mkdir(exist_ok=True)
    return folder / f"{step.name}-{digest}.sqlite"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
