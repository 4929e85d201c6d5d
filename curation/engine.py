"""Where a step's per-fragment work runs: in this process (`LocalEngine`) or on Ray.

`apply` (curation.steps.base) decides what to compute and commits; an engine only runs the
work that is the same on every fragment of `records` and hands the results back:

- `merge_columns`: a step's new columns, one `LanceFragment.merge_columns` per fragment,
  returned as uncommitted fragment metadata plus the merged `LanceSchema`. The caller commits
  them as one `Merge` carrying its journal entry, so both engines make the same version.
- `map_reduce`: a mapper run on every fragment's rows (with their row addresses) that
  splits its output into hash partitions, and a reducer run once per partition. Near and
  exact dedup group rows this way (curation.steps.dedup_base), so the driver never holds all
  rows nor all candidate pairs.

`RayEngine` (curation.ray_engine, which imports ray only when used, so `curation` works
without ray; `make_engine` there turns a CLI's `--engine` into an engine) runs both
as Ray tasks, or actors for model steps. `use_engine` sets the engine for a block, so the
step functions that call `apply` (embed, pii, dedup, …) need no engine argument of their own.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import lance
import pyarrow as pa
import pyarrow.compute as pc
from lance.fragment import FragmentMetadata
from lance.schema import LanceSchema

from curation.errors import CurationError

ENGINES = ("local", "ray")

Advance = Callable[[int, bool], None]
"""Told (rows, computed) as fragments finish: computed rows, or rows reused from a checkpoint."""

Mapper = Callable[[pa.Table, int], list[pa.Table]]
"""Rows of one fragment (plus `_rowaddr`) and the partition count → one table per partition."""

Reducer = Callable[[list[pa.Table]], pa.Table]
"""All mapper outputs of one partition → that partition's result."""


@dataclass(frozen=True)
class Source:
    """One version of a Lance table, as workers open it."""

    uri: str
    version: int
    storage_options: dict[str, str] | None = None

    @classmethod
    def of(cls, ds: lance.LanceDataset, storage_options: dict[str, str] | None = None) -> Source:
        """The version `ds` is at."""
        return cls(str(ds.uri), int(ds.version), storage_options)

    def open(self) -> lance.LanceDataset:
        """The dataset at this version."""
        return lance.dataset(self.uri, version=self.version, storage_options=self.storage_options)


@dataclass(frozen=True)
class FragmentJob:
    """What every fragment's UDF does: picklable, so a Ray worker runs exactly this.

    Attributes:
        step: the column step.
        out_schema: the step's columns with provenance.
        write_schema: the columns as written (temporary names when replacing).
        wanted: only these ids are computed (others get nulls); None for every row.
    """

    step: Any
    out_schema: pa.Schema
    write_schema: pa.Schema
    wanted: pa.Array | None = None

    def compute(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The written columns for one batch of input rows."""
        if self.wanted is None or getattr(self.step, "sees_all_rows", False):
            out = checked(self.step, batch, self.out_schema)
        else:
            mask = pc.is_in(batch.column("id"), value_set=self.wanted)
            out = scatter(self.step, batch, mask, self.out_schema)
        return pa.RecordBatch.from_arrays(out.columns, schema=self.write_schema)


def is_model_step(step: Any) -> bool:
    """Whether `step` loads a model: its `model_step` class attribute (default False).

    Model steps (tokenizers, embedders, LLM judges, eval metrics that run a model) declare
    `model_step = True`; engines that distribute work keep each one's model loaded on a
    long-lived worker (`RayEngine`'s actors, with `gpus_per_worker` GPUs) instead of
    loading it again per task. Nothing is guessed from a step's other attributes.
    """
    return bool(getattr(step, "model_step", False))


class Engine(Protocol):
    """Runs per-fragment work; see the module docstring."""

    name: str

    def merge_columns(
        self,
        source: Source,
        job: FragmentJob,
        read: list[str],
        batch_size: int,
        checkpoint: Path | None,
        *,
        should_stop: Callable[[], bool],
        advance: Advance,
    ) -> tuple[list[FragmentMetadata], LanceSchema | None, bool]:
        """New columns for every fragment: (fragments, merged schema, resumed)."""
        ...

    def map_reduce(
        self,
        source: Source,
        columns: list[str],
        where: str | None,
        mapper: Mapper,
        reducer: Reducer,
    ) -> list[pa.Table]:
        """Map every fragment's rows, shuffle by partition, reduce each partition."""
        ...


class LocalEngine:
    """Everything in this process, fragment after fragment (the default)."""

    name = "local"

    def merge_columns(
        self,
        source: Source,
        job: FragmentJob,
        read: list[str],
        batch_size: int,
        checkpoint: Path | None,
        *,
        should_stop: Callable[[], bool],
        advance: Advance,
    ) -> tuple[list[FragmentMetadata], LanceSchema | None, bool]:
        """`merge_fragments` with batch- and fragment-level checkpoints."""
        from curation.steps.columns import merge_fragments  # steps import this module

        def udf(batch: pa.RecordBatch) -> pa.RecordBatch:
            if should_stop():
                raise KeyboardInterrupt
            out = job.compute(batch)
            advance(batch.num_rows, True)
            return out

        return merge_fragments(
            source.open(),
            udf,
            read,
            batch_size,
            checkpoint,
            job.write_schema,
            should_stop=should_stop,
            skipped=lambda rows: advance(rows, False),
        )

    def map_reduce(
        self,
        source: Source,
        columns: list[str],
        where: str | None,
        mapper: Mapper,
        reducer: Reducer,
    ) -> list[pa.Table]:
        """One partition: map each fragment in turn, then reduce once."""
        ds = source.open()
        parts = [
            mapper(fragment_rows(ds, f.fragment_id, columns, where), 1)[0]
            for f in ds.get_fragments()
        ]
        return [reducer(parts)]


def fragment_rows(
    ds: lance.LanceDataset, fragment_id: int, columns: list[str], where: str | None
) -> pa.Table:
    """The rows of one fragment that `where` selects, with `_rowaddr`, in row order."""
    fragment = ds.get_fragment(fragment_id)
    if fragment is None:
        raise CurationError(f"fragment {fragment_id} is gone from {ds.uri}; rerun the step")
    try:
        return fragment.to_table(columns=columns, filter=where, with_row_address=True)
    except (OSError, ValueError) as e:
        from curation.errors import one_line

        raise CurationError(f"reading fragment {fragment_id}: {one_line(e)}") from None


# -------------------------------------------------------------------- choosing an engine
_current: contextvars.ContextVar[Engine | None] = contextvars.ContextVar(
    "mixlake_engine", default=None
)


def current_engine() -> Engine:
    """The engine `use_engine` set for this block, else a `LocalEngine`."""
    return _current.get() or LocalEngine()


@contextlib.contextmanager
def use_engine(engine: Engine | None) -> Iterator[Engine]:
    """Run the block's steps (`apply`, dedup grouping, ingest) on `engine` (None: unchanged)."""
    token = _current.set(engine) if engine is not None else None
    try:
        yield current_engine()
    finally:
        if token is not None:
            _current.reset(token)


# ------------------------------------------------------------ computing a step's columns
def checked(step: Any, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`step(batch)` with its columns cast to `schema`, refusing a wrong row count."""
    out = step(batch)
    if out.num_rows != batch.num_rows:
        raise CurationError(
            f"step {step.name} returned {out.num_rows} rows for a batch of {batch.num_rows}"
        )
    return pa.RecordBatch.from_arrays(
        [out.column(n).cast(schema.field(n).type) for n in schema.names], schema=schema
    )


def scatter(step: Any, batch: pa.RecordBatch, mask: pa.Array, schema: pa.Schema) -> pa.RecordBatch:
    """Compute only the masked rows; the others get nulls."""
    selected = batch.filter(mask)
    if selected.num_rows == 0:
        return pa.RecordBatch.from_arrays(
            [pa.nulls(batch.num_rows, f.type) for f in schema], schema=schema
        )
    out = checked(step, selected, schema)
    positions = pc.cumulative_sum(pc.cast(mask, pa.int64())).to_numpy() - 1
    take = pa.array(
        [int(p) if m else None for p, m in zip(positions, mask.to_pylist(), strict=True)],
        pa.int64(),
    )
    return pa.RecordBatch.from_arrays([c.take(take) for c in out.columns], schema=schema)
