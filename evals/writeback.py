"""Write-back: per-row metrics as `records` columns, run-level metrics as rows of `evals`.

Per-row metrics of target T and suite S become columns `eval_<T>_<S>_<metric>`, written by
`curation.steps.apply` with a step mapping record id → value, as one new version. Rows that were
not evaluated stay null. Writing the same results again (within 1e-3) is a no-op; results for
rows still null are filled in; results that differ from the stored ones need `replace`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc

from curation.codeversion import git_commit
from curation.commit import Entry
from curation.errors import CurationError
from curation.lake import Lake
from curation.sqltext import identifier
from curation.steps.base import RowProgress, apply
from evals.errors import EvalError
from evals.evaluated_ids import append_evaluated_ids, read_evaluated_ids

EVALS_TABLE = "evals"
EVALS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string()),
        pa.field("suite", pa.string()),
        pa.field("metric", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("mix", pa.string()),
        pa.field("mix_checksum", pa.string()),
        pa.field("records_version", pa.int64()),
        pa.field("git_commit", pa.string()),
        pa.field("at", pa.timestamp("us", tz="UTC")),
        pa.field("split", pa.string()),
    ]
)
# Recomputing a row in a batch of another shape moves fp32 losses by up to ~1e-4; within this
# tolerance a value counts as unchanged, so re-evaluating is a no-op rather than a conflict.
_TOLERANCE = 1e-3


def column_name(label: str, suite: str, metric: str) -> str:
    """The `records` column of one per-row metric: `eval_<target>_<suite>_<metric>`."""
    return f"eval_{label}_{suite}_{metric}"


class EvalColumnsStep:
    """A column step that writes given per-row values, looked up by record id."""

    input_columns: tuple[str, ...] = ()

    def __init__(
        self, label: str, suite: str, metrics: Sequence[str], values: Mapping[str, Sequence[Any]]
    ) -> None:
        self.name = f"eval_{label}_{suite}"
        self.label, self.suite, self.metric_names = label, suite, tuple(metrics)
        self.values = values

    def params(self) -> dict[str, Any]:
        """Target, suite and metrics: the same for every write of these columns."""
        return {"target": self.label, "suite": self.suite, "metrics": list(self.metric_names)}

    def output_schema(self) -> pa.Schema:
        """One float64 column per metric."""
        return pa.schema(
            [
                pa.field(column_name(self.label, self.suite, m), pa.float64())
                for m in self.metric_names
            ]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Values of the batch's ids (null for ids without results)."""
        missing = [None] * len(self.metric_names)
        rows = [self.values.get(i, missing) for i in batch.column("id").to_pylist()]
        arrays = [
            pa.array([r[k] for r in rows], pa.float64()) for k in range(len(self.metric_names))
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.output_schema())


@dataclass(frozen=True)
class WriteReport:
    """What a write-back did: rows written, rows already there, and the version (None: no-op)."""

    columns: tuple[str, ...]
    rows_written: int
    rows_unchanged: int
    version: int | None


def write_rows(
    lake: Lake,
    label: str,
    suite: str,
    metrics: Sequence[str],
    ids: Sequence[str],
    per_row: Mapping[str, Sequence[float | None]],
    *,
    message: str,
    replace: bool = False,
    progress: RowProgress | None = None,
) -> WriteReport:
    """Write per-row metrics of one target and suite as `records` columns, in one version.

    Args:
        lake: the lake.
        label: the target label (run id or `base_<model>`).
        suite: the suite name.
        metrics: metric names, in column order; the first must be non-null for every id.
        ids: record ids evaluated.
        per_row: metric → values aligned with `ids`.
        message: the version message.
        replace: overwrite stored values that differ from these.
        progress: optional callback (rows done, rows total).

    Raises:
        EvalError: stored values differ and `replace` is not set; or the columns exist with
            other metrics.
    """
    with lake.writing(f"eval write-back {label} {suite}"):
        return _write_rows(lake, label, suite, metrics, ids, per_row, message, replace, progress)


def _write_rows(
    lake: Lake,
    label: str,
    suite: str,
    metrics: Sequence[str],
    ids: Sequence[str],
    per_row: Mapping[str, Sequence[float | None]],
    message: str,
    replace: bool,
    progress: RowProgress | None,
) -> WriteReport:
    for i in ids:
        if not all(c in "0123456789abcdef" for c in i):
            raise EvalError(f"bad record id {i!r}: ids are lowercase hex")
    new = {i: [_clean(per_row[m][k]) for m in metrics] for k, i in enumerate(ids)}
    new = {i: v for i, v in new.items() if v[0] is not None}
    names = tuple(column_name(label, suite, m) for m in metrics)
    ds = lake.dataset("records")
    present = [n for n in names if n in ds.schema.names]
    stored = _stored(ds, names, list(new)) if len(present) == len(names) else {}
    todo = {
        i: v for i, v in new.items() if (i in stored and stored[i][0] is None) or i not in stored
    }
    changed = [
        i
        for i, v in new.items()
        if stored.get(i, [None])[0] is not None and not _same(stored[i], v)
    ]
    unchanged = len(new) - len(todo) - len(changed)
    if changed and not replace:
        raise EvalError(
            f"{len(changed)} rows already have different values in {names[0]} (e.g. id "
            f"{changed[0]}); pass --replace to overwrite them"
        )
    if present and len(present) != len(names) and not replace:
        raise EvalError(
            f"columns {present} exist but {sorted(set(names) - set(present))} do not; "
            "pass --replace to rewrite this target's columns"
        )
    if not todo and not changed and len(present) == len(names):
        return WriteReport(names, 0, unchanged, None)
    values: dict[str, Sequence[Any]] = dict(new)
    rewrite = bool(changed) or (bool(present) and len(present) != len(names))
    if rewrite:
        # Keep the other rows' stored values: the step rewrites the whole column.
        kept = _stored(ds, names, None) if len(present) == len(names) else {}
        values = {**kept, **new}
    else:
        values = {i: new[i] for i in todo}
    step = EvalColumnsStep(label, suite, metrics, values)
    entry = Entry(
        "eval",
        message,
        {"target": label, "suite": suite, "columns": list(names), "rows": len(values)},
    )
    try:
        # One commit: the columns and the eval's own journal entry travel together.
        report = apply(
            step, lake, ids=list(values), replace=rewrite, entry=entry, progress=progress
        )
    except CurationError as e:
        raise EvalError(f"writing {step.name}: {e}") from None
    return WriteReport(names, len(values) if rewrite else len(todo), unchanged, report.version)


def append_run_metrics(
    lake: Lake,
    label: str,
    suite: str,
    run_level: Mapping[str, float],
    *,
    mix: str | None,
    mix_checksum: str | None,
    records_version: int,
    split: str | None,
    ids: Sequence[str] | None = None,
) -> int:
    """Append run-level metrics to the `evals` table, and the record ids they were computed on
    to `eval_ids` (what `compare` pairs); returns rows appended (0 when the same values, on the
    same ids, are already the latest for this target, suite, mix, split and records version)."""
    now = dt.datetime.now(dt.UTC)
    if _already_there(lake, label, suite, run_level, mix, split, records_version, ids):
        return 0
    if ids is not None:
        # ids first: an `evals` row without them falls back to the mix; the reverse would not
        append_evaluated_ids(lake, label, suite, mix, split, now, ids)
    commit = git_commit()
    rows = [
        {
            "run_id": label,
            "suite": suite,
            "metric": name,
            "value": float(value),
            "mix": mix,
            "mix_checksum": mix_checksum,
            "records_version": records_version,
            "git_commit": commit,
            "at": now,
            "split": split,
        }
        for name, value in run_level.items()
    ]
    table = pa.Table.from_pylist(rows, schema=EVALS_SCHEMA)
    uri = lake.table_uri(EVALS_TABLE)
    lance.write_dataset(table, uri, mode="append" if lake.has_table(EVALS_TABLE) else "create")
    return len(rows)


def read_evals(lake: Lake) -> pa.Table:
    """Every run-level result, oldest first (an empty table when nothing was evaluated)."""
    if not lake.has_table(EVALS_TABLE):
        return EVALS_SCHEMA.empty_table()
    return lake.dataset(EVALS_TABLE).to_table().sort_by("at")


def _already_there(
    lake: Lake,
    label: str,
    suite: str,
    run_level: Mapping[str, float],
    mix: str | None,
    split: str | None,
    version: int,
    ids: Sequence[str] | None,
) -> bool:
    table = read_evals(lake).to_pylist()
    latest: dict[str, float] = {}
    at = None
    for r in table:
        if (r["run_id"], r["suite"], r["mix"], r["split"], r["records_version"]) == (
            label,
            suite,
            mix,
            split,
            version,
        ):
            latest[r["metric"]], at = r["value"], r["at"]
    same = bool(latest) and all(
        m in latest and _same([latest[m]], [float(v)]) for m, v in run_level.items()
    )
    if not same or ids is None or at is None:
        return same
    # the same values on other rows (another --limit) are another evaluation
    recorded = read_evaluated_ids(lake, [label]).get((label, suite, mix, split, at))
    return recorded == frozenset(ids)


def _stored(
    ds: lance.LanceDataset, names: Sequence[str], ids: list[str] | None
) -> dict[str, list[Any]]:
    if ids is not None and not ids:
        return {}
    table = ds.to_table(columns=["id", *names], filter=f"{identifier(names[0])} IS NOT NULL")
    if ids is not None:
        table = table.filter(pc.is_in(table.column("id"), value_set=pa.array(ids, pa.string())))
    cols = [table.column(n).to_pylist() for n in names]
    return {i: [c[k] for c in cols] for k, i in enumerate(table.column("id").to_pylist())}


def _clean(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    for x, y in zip(a, b, strict=False):
        if (x is None) != (y is None):
            return False
        if x is not None and not math.isclose(x, y, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE):
            return False
    return True
