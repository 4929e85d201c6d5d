"""The column-step abstraction: one `apply` for every enrichment, score, mark and per-row metric.

A step turns Arrow batches of some `records` columns into batches of new columns. `apply` does
the rest once: batching, progress, resuming after a crash, writing the columns as one new
version, provenance in the Arrow field metadata, and the journal message.

Writing paths (each one Lance commit carrying its journal entry, under the writer lock):
- new columns: `LanceFragment.merge_columns` per fragment, committed as one `Merge`
  (`curation.steps.columns`). A crash or Ctrl-C commits nothing; rerunning the same step
  reuses the fragments already computed. `--replace` drops the old columns in that same commit.
- existing columns made by the same step and parameters: only rows whose first output column
  is still null (and match `where`) are computed, then written with one merge-insert by id
  (`write_by_id`, which eval results and training losses use too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import lance
import pyarrow as pa
import pyarrow.compute as pc

from curation.commit import Entry
from curation.engine import Engine, FragmentJob, Source, checked, current_engine, use_engine
from curation.errors import CurationError, one_line
from curation.faults import crash_point
from curation.lake import Lake
from curation.sqltext import identifier, single_expression
from curation.steps.columns import (
    TEMP_PREFIX,
    interrupts_deferred,
    remove_checkpoint,
    replacing_schema,
    without_fields,
    write_by_id,
)
from curation.steps.provenance import (  # noqa: F401 (re-exported: steps import them here)
    META_CREATED,
    META_PARAMS,
    META_STEP,
    META_VERSION,
    _with_provenance,
    column_provenance,
    jsonable,
)
from curation.steps.selection import checkpoint_path, count_matching, ids_matching

RowProgress = Callable[[int, int], None]
"""Called with (rows done, rows total)."""


@runtime_checkable
class ColumnStep(Protocol):
    """A versioned transformation from some columns of `records` to new columns.

    Optional class attributes, read with `getattr` (so they are not protocol members and a
    step without them still is a `ColumnStep`):

    - `model_step: bool` (default False): the step loads a model (tokenizer, embedder, LLM);
      engines keep it loaded on long-lived workers (`curation.engine.is_model_step`).
    - `batch_size: int` (default 1024): rows per batch when the registry runs it.
    - `Params`: a frozen dataclass of its typed parameters, from which the registry
      (`curation.steps.registry`, `@register_step`) derives the step's CLI options.

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


def apply(
    step: ColumnStep,
    lake: Lake,
    *,
    where: str | None = None,
    replace: bool = False,
    recompute: tuple[str, ...] = (),
    ids: pa.Array | list[str] | None = None,
    entry: Entry | None = None,
    batch_size: int = 1024,
    progress: RowProgress | None = None,
    engine: Engine | None = None,
) -> StepReport:
    """Compute `step`'s columns on `records` as one new version.

    Runs under the lake's writer lock, so the version it computes on is the version it
    commits on top of; the columns, their provenance and the journal entry land in one
    Lance commit (`--replace` included).

    Args:
        step: the step to run.
        lake: the lake.
        where: optional SQL predicate; other rows get nulls (and can be filled by a later run).
        replace: recompute from scratch when the columns exist with other parameters.
        recompute: output columns that summarise others (e.g. `is_dup`) and are replaced
            whenever the step adds its columns, in the same commit.
        ids: compute only these record ids (with `where`, rows must match both); the
            sparse write by id that eval results and training losses use.
        entry: the journal entry of the commit (default: a `step` entry naming the step).
        batch_size: rows per batch handed to the step.
        progress: optional callback (rows done, rows total).
        engine: where new columns are computed, fragment by fragment: `LocalEngine` (this
            process) or `curation.ray_engine.RayEngine`; default the one `use_engine` set,
            else local. Either commits the same columns as one version. (Filling rows of
            existing columns always runs here: it is one merge-insert of the missing rows.)

    Raises:
        CurationError: bad predicate, missing input column, or columns that exist with other
            parameters and no `replace`.
    """
    if where is not None:
        where = single_expression(where)
    job = _Job(
        step,
        where,
        None if ids is None else pa.array(ids, pa.string()),
        entry,
        batch_size,
        progress,
    )
    with (
        use_engine(engine),
        lake.writing(f"step {step.name}"),
        interrupts_deferred() as stop,
    ):
        return _apply_locked(step, lake, where, replace, recompute, batch_size, progress, stop, job)


@dataclass(frozen=True)
class _Job:
    """One apply call's inputs, handed down to the writing paths."""

    step: ColumnStep
    where: str | None
    ids: pa.Array | None
    entry: Entry | None
    batch_size: int
    progress: RowProgress | None


def _apply_locked(
    step: ColumnStep,
    lake: Lake,
    where: str | None,
    replace: bool,
    recompute: tuple[str, ...],
    batch_size: int,
    progress: RowProgress | None,
    stop: Callable[[], bool],
    job: _Job,
) -> StepReport:
    ds = lake.dataset("records")
    out_schema = _with_provenance(step, int(ds.version))
    names = tuple(out_schema.names)
    missing_inputs = [c for c in step.input_columns if c not in ds.schema.names]
    if missing_inputs:
        raise CurationError(
            f"step {step.name} needs column(s) {', '.join(missing_inputs)}; run the step that "
            "makes them first"
        )
    present = [n for n in names if n in ds.schema.names]
    main = [n for n in names if n not in recompute]
    main_present = [n for n in present if n not in recompute]
    if main_present and len(main_present) == len(main) and len(present) != len(names):
        replace = True  # a summary column is missing: recompute everything in one commit
    if not main_present and present:  # only summary columns exist: add, replacing them
        return _add_new(step, lake, ds, out_schema, where, batch_size, progress, stop, present, job)
    if present and (replace or len(present) != len(names)):
        if not replace:
            raise CurationError(
                f"step {step.name}: columns {present} exist but {sorted(set(names) - set(present))}"
                " do not; rerun with --replace"
            )
        return _add_new(step, lake, ds, out_schema, where, batch_size, progress, stop, present, job)
    if present:
        made_by = column_provenance(ds.schema.field(names[0]))
        if made_by.get("params") != jsonable(step.params()) or made_by.get("step") != step.name:
            raise CurationError(
                f"column {names[0]} was made by {made_by.get('step')} with parameters "
                f"{made_by.get('params')}; now asked with {jsonable(step.params())}. Give the "
                "step a new name or pass --replace (the old column stays in history)"
            )
        return _fill_missing(step, lake, ds, out_schema, where, batch_size, progress, job)
    return _add_new(step, lake, ds, out_schema, where, batch_size, progress, stop, [], job)


def _add_new(
    step: ColumnStep,
    lake: Lake,
    ds: lance.LanceDataset,
    out_schema: pa.Schema,
    where: str | None,
    batch_size: int,
    progress: RowProgress | None,
    stop: Callable[[], bool],
    replacing: list[str],
    job: _Job,
) -> StepReport:
    wanted = ids_matching(ds, where) if where else None
    if job.ids is not None:
        wanted = job.ids if wanted is None else pc.filter(wanted, pc.is_in(wanted, job.ids))
    if isinstance(step, PreparedStep):
        step.prepare(ds, where)
    live = ds.count_rows()
    # merge_columns also passes deleted rows (Lance keeps files row-aligned): count them in
    # the progress total, not in the rows computed.
    total = sum(int(f.metadata.physical_rows) for f in ds.get_fragments())
    done = [0, 0]  # rows seen, rows computed
    rename = {TEMP_PREFIX + n: n for n in out_schema.names} if replacing else {}
    write_schema = pa.schema(
        [f.with_name(TEMP_PREFIX + f.name) if replacing else f for f in out_schema]
    )
    read = ["id", *[c for c in step.input_columns if c != "id"]]
    work = FragmentJob(step, out_schema, write_schema, wanted)

    def advance(rows: int, computed: bool = False) -> None:
        done[0] += rows
        done[1] += rows if computed else 0
        if progress:
            progress(min(done[0], total), total)

    checkpoint = checkpoint_path(lake, step, where, int(ds.version), replacing, job.ids)
    try:
        fragments, merged, resumed = current_engine().merge_columns(
            Source.of(ds, getattr(lake, "storage_options", None)),
            work,
            read,
            batch_size,
            checkpoint,
            should_stop=stop,
            advance=advance,
        )
    except CurationError:
        raise
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, IndexError) as e:
        if stop():
            raise KeyboardInterrupt from None
        raise CurationError(f"step {step.name} failed: {one_line(e)}") from e
    if stop():
        raise KeyboardInterrupt
    if merged is None:  # no fragments: an empty table gets the columns as schema only
        schema: Any = pa.schema([*ds.schema, *out_schema])
    elif replacing:
        schema, dropped = replacing_schema(merged, replacing, rename)
        fragments = without_fields(fragments, dropped)
    else:
        schema = merged
    rows = (min(live, done[1]) if resumed else live) if wanted is None else len(wanted)
    entry = job.entry or _entry(step, out_schema, rows, where, replacing)
    crash_point("step:before-commit")
    version = lake.commit(
        "records", lance.LanceOperation.Merge(fragments, schema), ds.version, entry
    )
    crash_point("step:after-commit")
    remove_checkpoint(checkpoint)
    return StepReport(step.name, tuple(out_schema.names), rows, version, resumed)


def _fill_missing(
    step: ColumnStep,
    lake: Lake,
    ds: lance.LanceDataset,
    out_schema: pa.Schema,
    where: str | None,
    batch_size: int,
    progress: RowProgress | None,
    job: _Job,
) -> StepReport:
    first = out_schema.names[0]
    predicate = f"({identifier(first)} IS NULL)" + (f" AND ({where})" if where else "")
    todo = count_matching(ds, predicate, job.ids)
    if todo == 0:
        return StepReport(step.name, tuple(out_schema.names), 0, None)
    if isinstance(step, PreparedStep):
        step.prepare(ds, where)
    read = ["id", *[c for c in step.input_columns if c != "id"]]
    update_schema = pa.schema([pa.field("id", pa.string()), *out_schema])

    def batches() -> Iterator[pa.RecordBatch]:
        done = 0
        for batch in ds.to_batches(columns=read, filter=predicate, batch_size=batch_size):
            if job.ids is not None:
                batch = batch.filter(pc.is_in(batch.column("id"), value_set=job.ids))
                if batch.num_rows == 0:
                    continue
            out = checked(step, batch, out_schema)
            done += batch.num_rows
            if progress:
                progress(done, todo)
            yield pa.RecordBatch.from_arrays(
                [batch.column("id"), *out.columns], schema=update_schema
            )

    reader = pa.RecordBatchReader.from_batches(update_schema, batches())
    entry = job.entry or _entry(step, out_schema, todo, where, [])
    version = write_by_id(lake, ds, reader, entry, what=f"step {step.name}")
    return StepReport(step.name, tuple(out_schema.names), todo, version, True)


def _entry(
    step: ColumnStep, schema: pa.Schema, rows: int, where: str | None, replaced: list[str]
) -> Entry:
    message = f"{step.name}: computed {', '.join(schema.names)} for {rows} rows" + (
        f" where {where}" if where else ""
    )
    if replaced:
        message += f" (replacing {', '.join(replaced)})"
    return Entry(
        "step",
        message,
        {"step": step.name, "params": step.params(), "where": where, "replaced": replaced},
    )
