"""The sparse write by id: given values for some record ids, set them as `records` columns.

Eval results imported from a file, a run's per-row training loss and other values computed
elsewhere are all an Arrow table of `id` plus value columns. `write_values` writes one such
table through `curation.steps.base.apply` (a `ValuesStep` that looks each id up), so it gets
apply's rules, provenance, one commit and one journal entry:

- rows whose stored first column is null (or columns that do not exist yet) are filled;
- rows already holding the same values (within `tolerance` for floats) are left alone, so
  writing the same table twice is a no-op;
- rows holding other values are refused unless `replace`, which rewrites the columns in one
  commit, keeping the stored values of rows the table does not name.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc

from curation.commit import Entry
from curation.errors import CurationError
from curation.lake import Lake
from curation.sqltext import identifier
from curation.steps.base import RowProgress, apply


class ValuesStep:
    """A column step whose values are given: each batch's ids are looked up in `table`.

    Args:
        name: the step name (provenance; compared with the stored columns' on a rerun).
        params: the step parameters (provenance; compared too).
        table: `id` plus one column per output, in output order; ids not in it get nulls.
    """

    input_columns: tuple[str, ...] = ()
    model_step = False

    def __init__(self, name: str, params: dict[str, Any], table: pa.Table) -> None:
        self.name = name
        self._params = dict(params)
        self.table = table.combine_chunks()
        self._ids = self.table.column("id").combine_chunks()

    def params(self) -> dict[str, Any]:
        """The parameters the caller gave."""
        return dict(self._params)

    def output_schema(self) -> pa.Schema:
        """The value columns of the table, with their types."""
        return pa.schema([f for f in self.table.schema if f.name != "id"])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The values of the batch's ids (nulls for ids the table does not hold)."""
        at = pc.index_in(batch.column("id"), value_set=self._ids)
        schema = self.output_schema()
        columns = [self.table.column(f.name).take(at).combine_chunks() for f in schema]
        return pa.RecordBatch.from_arrays(columns, schema=schema)


@dataclass(frozen=True)
class ValuesReport:
    """What `write_values` did.

    Attributes:
        columns: the columns written.
        rows_written: rows whose values were set (filled, or rewritten with `replace`).
        rows_unchanged: rows that already held these values.
        version: the new records version, None when nothing needed writing.
    """

    columns: tuple[str, ...]
    rows_written: int
    rows_unchanged: int
    version: int | None


def write_values(
    lake: Lake,
    table: pa.Table,
    *,
    name: str,
    params: dict[str, Any],
    replace: bool = False,
    entry: Entry | None = None,
    tolerance: float = 0.0,
    progress: RowProgress | None = None,
) -> ValuesReport:
    """Write `table`'s value columns onto the `records` rows its `id` column names.

    Args:
        lake: the lake.
        table: an `id` column (record ids) and the value columns, in column order. Rows whose
            first value is null carry nothing and are skipped.
        name: the step name the columns are recorded as made by.
        params: the step parameters recorded with them.
        replace: overwrite stored values that differ (the other rows' values are kept).
        entry: the journal entry of the commit (default: apply's `step` entry).
        tolerance: floats within this relative or absolute distance count as unchanged.
        progress: optional callback (rows done, rows total).

    Returns:
        What was written; `version` is None when the lake already held these values.

    Raises:
        CurationError: no `id` column or no value column, a repeated id, stored values that
            differ without `replace`, or columns that exist with other parameters.
    """
    table = _checked(table)
    names = tuple(n for n in table.column_names if n != "id")
    with lake.writing(f"write {name}"):
        ds = lake.dataset("records")
        present = [n for n in names if n in ds.schema.names]
        if present and len(present) != len(names) and not replace:
            missing = sorted(set(names) - set(present))
            raise CurationError(
                f"columns {present} exist but {missing} do not; pass --replace to rewrite them"
            )
        stored = _stored(ds, names, table.column("id")) if len(present) == len(names) else None
        todo, changed, unchanged = _split(table, stored, names, tolerance)
        if changed and not replace:
            first = changed[0]
            raise CurationError(
                f"{len(changed)} rows already have different values in {names[0]} (e.g. id "
                f"{first}); pass --replace to overwrite them"
            )
        rewrite = bool(changed) or (bool(present) and len(present) != len(names))
        if not rewrite and len(todo) == 0:
            return ValuesReport(names, 0, unchanged, None)
        if rewrite:
            kept = _stored(ds, names, None) if len(present) == len(names) else None
            values = _union(kept, table)
            rows = table.num_rows
        else:
            values = table.filter(pc.is_in(table.column("id"), value_set=todo))
            rows = len(todo)
        step = ValuesStep(name, params, values)
        _forget_checkpoints(lake, name)
        report = apply(
            step,
            lake,
            ids=values.column("id"),
            replace=rewrite,
            entry=entry,
            progress=progress,
        )
    return ValuesReport(names, rows, unchanged, report.version)


def _forget_checkpoints(lake: Lake, name: str) -> None:
    """Drop what a crashed earlier write of `name` left in apply's checkpoints.

    apply keys its batch checkpoints by step, parameters and input rows, not by the values a
    `ValuesStep` carries: a rerun with another table would reuse the crashed write's values.
    Looking values up again costs nothing, so a sparse write never resumes.
    """
    if "://" in lake.uri:
        return  # apply keeps no checkpoints on object storage
    for folder in (Path(lake.uri) / "_checkpoints").glob(f"{name}-v*"):
        shutil.rmtree(folder, ignore_errors=True)


def _checked(table: pa.Table) -> pa.Table:
    if "id" not in table.column_names or table.num_columns < 2:
        raise CurationError("a sparse write needs an `id` column and at least one value column")
    table = table.set_column(
        table.column_names.index("id"), "id", table.column("id").cast(pa.string())
    )
    names = [n for n in table.column_names if n != "id"]
    table = table.select(["id", *names])
    table = table.filter(pc.is_valid(table.column(names[0])))
    if pc.count_distinct(table.column("id")).as_py() != table.num_rows:
        counts = pc.value_counts(table.column("id")).to_pylist()
        twice = next(c["values"] for c in counts if c["counts"] > 1)
        raise CurationError(f"record id {twice} appears more than once in the values to write")
    return table


def _stored(ds: lance.LanceDataset, names: Sequence[str], ids: pa.ChunkedArray | None) -> pa.Table:
    """Stored rows (`id` + `names`) whose first column is set, optionally only `ids`."""
    table = ds.to_table(columns=["id", *names], filter=f"{identifier(names[0])} IS NOT NULL")
    if ids is not None:
        table = table.filter(pc.is_in(table.column("id"), value_set=ids.combine_chunks()))
    return table


def _split(
    table: pa.Table, stored: pa.Table | None, names: Sequence[str], tolerance: float
) -> tuple[pa.Array, list[str], int]:
    """(ids to fill, ids whose stored values differ, how many rows are unchanged)."""
    ids = table.column("id").combine_chunks()
    if stored is None or stored.num_rows == 0:
        return ids, [], 0
    at = {i: k for k, i in enumerate(stored.column("id").to_pylist())}
    old = [stored.column(n).to_pylist() for n in names]
    new = [table.column(n).to_pylist() for n in names]
    todo, changed, unchanged = [], [], 0
    for row, i in enumerate(ids.to_pylist()):
        k = at.get(i)
        if k is None:
            todo.append(i)
        elif all(_same(o[k], v[row], tolerance) for o, v in zip(old, new, strict=True)):
            unchanged += 1
        else:
            changed.append(i)
    return pa.array(todo, pa.string()), changed, unchanged


def _union(kept: pa.Table | None, new: pa.Table) -> pa.Table:
    """`new`, plus the rows of `kept` it does not name (cast to `new`'s types)."""
    if kept is None or kept.num_rows == 0:
        return new
    others = kept.filter(pc.invert(pc.is_in(kept.column("id"), value_set=new.column("id"))))
    return pa.concat_tables([new, others.cast(new.schema)])


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        x, y = float(a), float(b)
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return math.isclose(x, y, rel_tol=tolerance, abs_tol=tolerance)
    return bool(a == b)
