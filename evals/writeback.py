"""Write-back: run-level metrics as rows of `evals`, and per-row results computed elsewhere.

Per-row metrics of target T and suite S are columns `eval_<T>_<S>_<metric>`. A local or Ray
eval computes them through `apply` (`evals.steps.SuiteStep`); results imported from a file go
through the generic sparse write by id, `curation.steps.values.write_values`, with the same
step name and parameters, so both make the same columns and provenance.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace as replace_fields
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc

from curation.codeversion import git_commit
from curation.commit import Entry
from curation.errors import CurationError
from curation.lake import Lake
from curation.sqltext import identifier
from curation.steps.provenance import column_provenance
from curation.steps.values import ValuesReport, write_values
from evals.errors import EvalError
from evals.evaluated_ids import append_evaluated_ids, read_evaluated_ids
from evals.registry import get_suite
from evals.result import EvalResult
from evals.steps import column_name, step_name, step_params, suite_schema
from evals.suites import Suite

__all__ = [
    "EVALS_SCHEMA",
    "EVALS_TABLE",
    "TOLERANCE",
    "append_run_metrics",
    "column_name",
    "read_evals",
    "results_table",
    "stored_values",
    "write_back",
    "write_results",
]

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
TOLERANCE = 1e-3
"""Imported floats within this of the stored ones count as unchanged: recomputing a row in a
batch of another shape (another machine, another batch size) moves fp32 losses by ~1e-4."""


def results_table(
    label: str,
    suite: Suite,
    ids: Sequence[str],
    per_row: Mapping[str, Sequence[float | None]],
    answers: Sequence[str | None] | None = None,
) -> pa.Table:
    """Per-row results as the Arrow table `write_values` takes: `id` + the suite's columns.

    Non-finite floats become null; `answers` (for suites that generate) may be None, e.g.
    for results imported from a file.

    Raises:
        EvalError: an id that is not lowercase hex, or a metric missing from `per_row`.
    """
    for i in ids:
        if not i or not all(c in "0123456789abcdef" for c in i):
            raise EvalError(f"bad record id {i!r}: ids are lowercase hex")
    schema = suite_schema(label, suite)
    missing = [m for m in suite.metrics if m not in per_row]
    if missing:
        raise EvalError(f"results of suite {suite.name} lack metric(s) {', '.join(missing)}")
    columns: dict[str, pa.Array] = {"id": pa.array(list(ids), pa.string())}
    for metric, f in zip(suite.metrics, schema, strict=False):
        columns[f.name] = pa.array([_clean(v) for v in per_row[metric]], pa.float64())
    if suite.answers:
        texts = list(answers) if answers else [None] * len(ids)
        columns[column_name(label, suite.name, "answer")] = pa.array(texts, pa.string())
    return pa.table(columns)


def write_results(
    lake: Lake,
    label: str,
    suite: Suite,
    table: pa.Table,
    *,
    message: str,
    replace: bool = False,
) -> ValuesReport:
    """Write per-row results computed elsewhere (a `results_table`) as one version.

    The sparse write by id of `curation.steps.values`: rows still null are filled, rows
    holding the same values (within `TOLERANCE`) are left alone, so importing twice is a
    no-op, and differing rows need `replace`. Columns a local eval made keep that eval's
    parameters (its options, which a results file does not carry).

    Raises:
        EvalError: stored values differ and `replace` is not set; or the columns exist with
            other parameters.
    """
    names = [n for n in table.column_names if n != "id"]
    entry = Entry(
        "eval",
        message,
        {"target": label, "suite": suite.name, "columns": names, "rows": table.num_rows},
    )
    try:
        return write_values(
            lake,
            table,
            name=step_name(label, suite.name),
            params=_params(lake, label, suite),
            replace=replace,
            entry=entry,
            tolerance=TOLERANCE,
        )
    except CurationError as e:
        raise EvalError(f"writing {step_name(label, suite.name)}: {e}") from None


def _params(lake: Lake, label: str, suite: Suite) -> dict[str, Any]:
    """The stored columns' parameters when this target's suite made them, else the minimal."""
    first = suite_schema(label, suite).names[0]
    schema = lake.records().schema
    if first in schema.names:
        made_by = column_provenance(schema.field(first))
        if made_by.get("step") == step_name(label, suite.name) and isinstance(
            made_by.get("params"), dict
        ):
            return dict(made_by["params"])
    return step_params(label, suite)


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
    """Append run-level metrics to `evals`, and the record ids they cover to `eval_ids`.

    The ids are what `compare` pairs. Returns the rows appended: 0 when the same values, on
    the same ids, are already the latest for this target, suite, mix, split and records
    version.
    """
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


def _clean(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    for x, y in zip(a, b, strict=False):
        if (x is None) != (y is None):
            return False
        if x is not None and not math.isclose(x, y, rel_tol=TOLERANCE, abs_tol=TOLERANCE):
            return False
    return True


def write_back(lake: Lake, result: EvalResult, *, replace: bool = False) -> EvalResult:
    """Write an `EvalResult` computed elsewhere: per-row columns, run-level rows in `evals`.

    Per-row values go through the sparse write by id (`evals.writeback.write_results`), with
    the step name and parameters a local eval uses, so the columns are the same.
    """
    suite = get_suite(result.suite)
    names = suite_schema(result.target, suite).names
    table = results_table(result.target, suite, result.ids, result.per_row, result.predictions)
    if suite.answers and not result.predictions and names[-1] in lake.records().schema.names:
        table = table.drop_columns([names[-1]])  # no answers to compare with the stored ones
    where = f"{result.mix}/{result.split}" if result.split else str(result.mix)
    report = write_results(
        lake,
        result.target,
        suite,
        table,
        message=f"eval {result.target} {suite.name} on {where}: {result.rows} rows → "
        f"eval_{result.target}_{suite.name}_*",
        replace=replace,
    )
    append_run_metrics(
        lake,
        result.target,
        suite.name,
        result.run_level,
        mix=result.mix,
        mix_checksum=result.mix_checksum,
        records_version=result.records_version,
        split=result.split,
        ids=result.ids,
    )
    return replace_fields(
        result, columns=report.columns, version=report.version, rows_written=report.rows_written
    )


def stored_values(
    lake: Lake,
    names: tuple[str, ...],
    *,
    only: list[str] | None = None,
    exclude: list[str] | None = None,
) -> pa.Table | None:
    """Stored rows (`id` + `names`) whose first column is set (None: the columns are absent)."""
    ds = lake.records()
    if any(n not in ds.schema.names for n in names):
        return None
    table = ds.to_table(columns=["id", *names], filter=f"{identifier(names[0])} IS NOT NULL")
    if only is not None:
        table = table.filter(pc.is_in(table.column("id"), value_set=pa.array(only, pa.string())))
    if exclude:
        keep = pc.invert(pc.is_in(table.column("id"), value_set=pa.array(exclude, pa.string())))
        table = table.filter(keep)
    return table
