"""The run registry (`runs`), the exposure ledger (`exposures`) and `impact`.

`runs` has one row per training run; `exposures` one row per (run, record, optimizer step):
which record ids each step consumed, at which mix position and epoch, on which rank. Every
write is one commit carrying its journal entry, under the lake's writer lock. "Which runs trained on
row X?" is `SELECT DISTINCT run_id FROM exposures WHERE record_id = 'X'`; `impact` answers it
for a whole slice (a SQL predicate or an ingest batch), with the mixes that hold those rows.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import asdict, dataclass
from typing import Any

import lance
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curation import CurationError, Lake
from curation.commit import Entry
from curation.errors import one_line
from curation.sqltext import equals, literal, single_expression
from training.errors import TrainingError

RUNS = "runs"
EXPOSURES = "exposures"
MIX_PREFIX = "mix__"

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("mix", pa.string()),
        pa.field("mix_version", pa.int64()),
        pa.field("mix_checksum", pa.string()),
        pa.field("records_version", pa.int64()),
        pa.field("config", pa.string()),
        pa.field("git_commit", pa.string()),
        pa.field("status", pa.string()),
        pa.field("metrics", pa.string()),
        pa.field("best_metrics", pa.string()),
        pa.field("adapter_path", pa.string()),
        pa.field("started_at", pa.timestamp("us", tz="UTC")),
        pa.field("finished_at", pa.timestamp("us", tz="UTC")),
    ]
)
EXPOSURES_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("position", pa.int64()),
        pa.field("step", pa.int64()),
        pa.field("epoch", pa.int32()),
        pa.field("rank", pa.int32()),
    ]
)
EXPOSURE_KEY = ("run_id", "step", "epoch", "position")
"""Unique per exposure row: a step holds each mix position once per epoch."""


def new_run_id() -> str:
    """A fresh run id: `r` + 8 hex digits."""
    return "r" + secrets.token_hex(4)


@dataclass(frozen=True)
class Run:
    """One row of `runs`; `metrics` and `best_metrics` decoded from JSON."""

    run_id: str
    mix: str | None
    mix_version: int | None
    mix_checksum: str | None
    records_version: int | None
    config: str
    git_commit: str | None
    status: str
    metrics: dict[str, Any]
    best_metrics: dict[str, Any]
    adapter_path: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None

    def row(self) -> dict[str, Any]:
        """The row as `runs` stores it."""
        out = asdict(self)
        out["metrics"] = orjson.dumps(self.metrics).decode()
        out["best_metrics"] = orjson.dumps(self.best_metrics).decode()
        return out


def _from_row(row: dict[str, Any]) -> Run:
    row = dict(row)
    row["metrics"] = orjson.loads(row["metrics"] or "{}")
    row["best_metrics"] = orjson.loads(row["best_metrics"] or "{}")
    return Run(**row)


def save_run(lake: Lake, run: Run) -> None:
    """Insert or update a run (keyed by run_id): one commit carrying its journal entry."""
    table = pa.Table.from_pylist([run.row()], schema=RUNS_SCHEMA)
    entry = Entry("run", f"run {run.run_id}: {run.status}", {"run_id": run.run_id}, 1)
    with lake.writing("run"):
        if not lake.has_table(RUNS):
            _create(lake, RUNS, table, entry)
            return
        ds = lake.dataset(RUNS)
        builder = ds.merge_insert("run_id").when_matched_update_all().when_not_matched_insert_all()
        _commit_merge(lake, RUNS, ds, builder, table, entry)


def list_runs(lake: Lake) -> list[Run]:
    """Every run, newest first."""
    if not lake.has_table(RUNS):
        return []
    rows = lake.dataset(RUNS).to_table().to_pylist()
    return sorted((_from_row(r) for r in rows), key=lambda r: r.started_at, reverse=True)


def get_run(lake: Lake, run_id: str) -> Run:
    """One run by id.

    Raises:
        TrainingError: no such run (names the known ones).
    """
    runs = list_runs(lake)
    for run in runs:
        if run.run_id == run_id:
            return run
    known = ", ".join(r.run_id for r in runs[:8]) or "none yet"
    raise TrainingError(f"no run {run_id!r} in {lake.uri} (runs: {known}); see `mixlake runs`")


def write_exposures(lake: Lake, run_id: str, rows: pa.Table, after_step: int = 0) -> int:
    """Write a run's exposures for the steps after `after_step`, replacing any it had there.

    One commit carrying its journal entry: a plain append when the run has no rows past
    `after_step` (the usual checkpoint), else one merge-insert that inserts the new rows and
    deletes the run's old rows past `after_step` (a resumed run; the old rows of the same
    step, epoch and position are updated in place, e.g. with another rank). A table written
    before exposures had `rank` gets the column first (its own commit, rank 0 for every old
    row: those runs had one process).

    Returns:
        Rows written.
    """
    rows = _with_rank(rows).cast(EXPOSURES_SCHEMA)
    entry = Entry(
        "exposures",
        f"run {run_id}: {rows.num_rows} exposures after step {after_step}",
        {"run_id": run_id, "after_step": after_step},
        rows.num_rows,
    )
    with lake.writing("exposures"):
        if not lake.has_table(EXPOSURES):
            _create(lake, EXPOSURES, rows, entry)
            return rows.num_rows
        ds = _add_rank_column(lake)
        stale = f"{equals('run_id', run_id)} AND step > {literal(int(after_step))}"
        if ds.count_rows(filter=stale) == 0:
            if rows.num_rows:
                lance.write_dataset(
                    rows,
                    lake.table_uri(EXPOSURES),
                    mode="append",
                    transaction_properties=entry.properties(),
                )
            return rows.num_rows
        builder = (
            ds.merge_insert(list(EXPOSURE_KEY))
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(stale)
        )
        _commit_merge(lake, EXPOSURES, ds, builder, rows, entry)
    return rows.num_rows


def exposures(lake: Lake, run_id: str) -> pa.Table:
    """A run's exposures (rank 0 for rows of a table written before exposures had `rank`)."""
    if not lake.has_table(EXPOSURES):
        return EXPOSURES_SCHEMA.empty_table()
    return _with_rank(lake.dataset(EXPOSURES).to_table(filter=equals("run_id", run_id)))


def _with_rank(rows: pa.Table) -> pa.Table:
    if "rank" in rows.schema.names:
        return rows
    return rows.append_column("rank", pa.array([0] * rows.num_rows, pa.int32()))


def _create(lake: Lake, table: str, rows: pa.Table, entry: Entry) -> None:
    lance.write_dataset(
        rows, lake.table_uri(table), mode="create", transaction_properties=entry.properties()
    )


def _commit_merge(
    lake: Lake, table: str, ds: lance.LanceDataset, builder: Any, rows: pa.Table, entry: Entry
) -> None:
    try:
        tx, _ = builder.execute_uncommitted(rows)
    except OSError as e:
        raise TrainingError(f"writing {table} failed: {one_line(e)}") from e
    try:
        lake.commit(table, tx.operation, int(ds.version), entry)
    except CurationError as e:
        raise TrainingError(str(e)) from None


def _add_rank_column(lake: Lake) -> lance.LanceDataset:
    """The exposures table with a `rank` column (added, 0 everywhere, when it has none)."""
    ds = lake.dataset(EXPOSURES)
    if "rank" in ds.schema.names:
        return ds

    def zeros(batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([pa.array([0] * batch.num_rows, pa.int32())], ["rank"])

    fragments, schema = [], None
    for fragment in ds.get_fragments():
        meta, schema = fragment.merge_columns(zeros, columns=["run_id"])
        fragments.append(meta)
    entry = Entry("exposures", "added column rank (0: written by one process)", {}, 0)
    if schema is None:  # no fragments: an empty table
        lance.write_dataset(
            EXPOSURES_SCHEMA.empty_table(),
            lake.table_uri(EXPOSURES),
            mode="overwrite",
            transaction_properties=entry.properties(),
        )
    else:
        lake.commit(
            EXPOSURES, lance.LanceOperation.Merge(fragments, schema), int(ds.version), entry
        )
    return lake.dataset(EXPOSURES)


@dataclass(frozen=True)
class Impact:
    """What a slice of records touched."""

    rows: int
    runs: list[dict[str, Any]]
    mixes: list[dict[str, Any]]


def impact(
    lake: Lake, where: str | None = None, batch: str | None = None, version: int | None = None
) -> Impact:
    """The runs and mixes that used the rows a predicate (or an ingest batch) selects.

    Args:
        lake: the lake.
        where: a SQL predicate over `records`.
        batch: an ingest batch id.
        version: the records version to select from (default latest; use an older one after
            the rows were deleted).

    Raises:
        TrainingError: neither or both of `where` and `batch`, or a bad predicate.
    """
    if (where is None) == (batch is None):
        raise TrainingError("impact: give --where SQL or --batch ID (one of them)")
    try:
        predicate = (
            single_expression(where, what="--where")
            if where is not None
            else equals("batch", str(batch))
        )
    except CurationError as e:
        raise TrainingError(f"impact: {e}") from None
    try:
        ids = lake.sql(f"SELECT id FROM records WHERE {predicate}", version).column("id")
    except CurationError as e:
        raise TrainingError(f"impact: {e}") from None
    ids = pc.unique(ids.combine_chunks()) if ids.num_chunks else pa.array([], pa.string())
    return Impact(len(ids), _runs_using(lake, ids), _mixes_using(lake, ids))


def _runs_using(lake: Lake, ids: pa.Array) -> list[dict[str, Any]]:
    if not lake.has_table(EXPOSURES) or len(ids) == 0:
        return []
    table = lake.dataset(EXPOSURES).to_table(columns=["run_id", "record_id", "step"])
    hit = table.filter(pc.is_in(table.column("record_id"), value_set=ids))
    if hit.num_rows == 0:
        return []
    grouped = hit.group_by("run_id").aggregate(
        [("record_id", "count_distinct"), ("step", "count_distinct"), ("record_id", "count")]
    )
    by_id = {r.run_id: r for r in list_runs(lake)}
    out = []
    for row in grouped.to_pylist():
        run = by_id.get(row["run_id"])
        out.append(
            {
                "run_id": row["run_id"],
                "rows": row["record_id_count_distinct"],
                "exposures": row["record_id_count"],
                "steps": row["step_count_distinct"],
                "mix": run.mix if run else None,
                "status": run.status if run else None,
                "adapter": run.adapter_path if run else None,
            }
        )
    return sorted(out, key=lambda r: -r["rows"])


def _mixes_using(lake: Lake, ids: pa.Array) -> list[dict[str, Any]]:
    if len(ids) == 0:
        return []
    versions: dict[str, list[tuple[int, int]]] = {}
    if lake.has_table("mixes"):
        for r in (
            lake.dataset("mixes")
            .to_table(columns=["name", "mix_version", "table_version"])
            .to_pylist()
        ):
            versions.setdefault(r["name"], []).append(
                (int(r["mix_version"]), int(r["table_version"]))
            )
    out = []
    for table in lake.table_names():
        if not table.startswith(MIX_PREFIX):
            continue
        name = table[len(MIX_PREFIX) :]
        pairs = versions.get(name) or [(0, int(lake.dataset(table).version))]
        for mix_version, table_version in sorted(pairs):
            col = lake.dataset(table, table_version).to_table(columns=["id"]).column("id")
            hit = pc.sum(pc.is_in(col, value_set=ids)).as_py() or 0
            if hit:
                out.append({"mix": name, "mix_version": mix_version, "rows": hit})
    return out


def write_train_loss(lake: Lake, run_id: str, losses: dict[str, float]) -> int | None:
    """Write `train_loss_<run_id>` onto `records` (one new version); returns that version.

    The sparse write by id of `curation.steps.values`: rows not in `losses` stay null, and
    writing the same losses again is a no-op (returns None).
    """
    from curation.steps.values import write_values

    if not losses:
        return None
    table = pa.table(
        {
            "id": pa.array(list(losses), pa.string()),
            f"train_loss_{run_id}": pa.array(list(losses.values()), pa.float32()),
        }
    )
    params = {"run_id": run_id, "rows": len(losses)}
    return write_values(lake, table, name=f"train_loss_{run_id}", params=params).version
