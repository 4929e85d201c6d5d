"""`runs` and `exposures` writes: one commit each, carrying its journal entry.

The `rank` column is added to a ledger written before it had one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import lance
import pyarrow as pa

from curation import Lake
from curation.testing import make_lake
from training.runs import EXPOSURES, RUNS, Run, exposures, get_run, save_run, write_exposures


def _rows(run_id: str, steps: list[int], rank: int | None = 0) -> pa.Table:
    n = len(steps)
    cols = {
        "run_id": [run_id] * n,
        "record_id": [f"id{i}" for i in range(n)],
        "position": list(range(n)),
        "step": steps,
        "epoch": pa.array([0] * n, pa.int32()),
    }
    if rank is not None:
        cols["rank"] = pa.array([rank] * n, pa.int32())
    return pa.table(cols)


def _versions(lake: Lake, table: str) -> list[int]:
    return [int(v["version"]) for v in lake.dataset(table).versions()]


def _run(status: str) -> Run:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return Run("r1", "toy", 1, "c", 1, "{}", None, status, {}, {}, None, now, None)


def test_each_runs_write_is_one_commit_with_its_entry(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": [{"text": "a"}]})
    save_run(lake, _run("running"))
    save_run(lake, _run("finished"))
    assert _versions(lake, RUNS) == [1, 2]
    entries = lake.journal_entries(RUNS)
    assert [entries[v]["message"] for v in (1, 2)] == ["run r1: running", "run r1: finished"]
    assert get_run(lake, "r1").status == "finished"
    assert not lake.has_table("journal")  # nothing goes to the old journal table any more


def test_replacing_exposures_after_a_step_is_one_commit(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": [{"text": "a"}]})
    write_exposures(lake, "r1", _rows("r1", [1, 1, 2, 2, 3]))
    write_exposures(lake, "r2", _rows("r2", [1, 2]))
    before = _versions(lake, EXPOSURES)
    # a resume from step 1 on another rank: steps 2..3 are consumed again, differently
    redo = _rows("r1", [2, 2], rank=1).set_column(2, "position", pa.array([2, 9], pa.int64()))
    write_exposures(lake, "r1", redo, after_step=1)
    assert _versions(lake, EXPOSURES) == [*before, before[-1] + 1]
    entry = lake.journal_entries(EXPOSURES)[before[-1] + 1]
    assert entry["message"] == "run r1: 2 exposures after step 1"
    got = sorted((r["step"], r["position"], r["rank"]) for r in exposures(lake, "r1").to_pylist())
    assert got == [(1, 0, 0), (1, 1, 0), (2, 2, 1), (2, 9, 1)]
    assert exposures(lake, "r2").num_rows == 2


def test_a_ledger_without_rank_reads_as_rank_0_and_gains_the_column(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": [{"text": "a"}]})
    lance.write_dataset(_rows("old", [1, 2], rank=None), lake.table_uri(EXPOSURES))
    assert exposures(lake, "old").column("rank").to_pylist() == [0, 0]
    write_exposures(lake, "new", _rows("new", [1], rank=1))
    ds = lake.dataset(EXPOSURES)
    assert ds.schema.field("rank").type == pa.int32()
    ranks = {(r["run_id"], r["rank"]) for r in ds.to_table().to_pylist()}
    assert ranks == {("old", 0), ("new", 1)}
    messages = [e["message"] for e in lake.journal_entries(EXPOSURES).values()]
    assert messages[-2:] == [
        "added column rank (0: written by one process)",
        "run new: 1 exposures after step 0",
    ]


def test_train_loss_is_a_sparse_write_by_id(tmp_path: Path) -> None:
    from curation.steps.base import column_provenance
    from training.runs import write_train_loss

    lake = make_lake(tmp_path, {"toy": [{"text": f"row {i}"} for i in range(5)]})
    ids = sorted(lake.records().to_table(columns=["id"]).column("id").to_pylist())
    losses = {ids[0]: 1.25, ids[2]: 0.5}
    version = write_train_loss(lake, "r0a1b2c3", losses)
    assert version == lake.latest_version()
    table = lake.records().to_table(columns=["id", "train_loss_r0a1b2c3"])
    got = dict(zip(table["id"].to_pylist(), table["train_loss_r0a1b2c3"].to_pylist(), strict=True))
    assert got == {ids[0]: 1.25, ids[1]: None, ids[2]: 0.5, ids[3]: None, ids[4]: None}
    field = lake.records().schema.field("train_loss_r0a1b2c3")
    assert field.type == pa.float32()
    assert column_provenance(field)["params"] == {"run_id": "r0a1b2c3", "rows": 2}
    assert lake.log()[0].message.startswith("train_loss_r0a1b2c3: computed")
    assert write_train_loss(lake, "r0a1b2c3", losses) is None  # the same losses: no version
    assert write_train_loss(lake, "r0a1b2c3", {}) is None
