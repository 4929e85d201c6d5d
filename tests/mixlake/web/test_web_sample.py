"""The web UI's sample lake: its `runs`, `exposures` and `evals` are what the real writers make.

A UI tested on a lake of another shape proves nothing about a real one.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from curation import Lake
from curation.testing import make_lake
from evals.evaluated_ids import EVAL_IDS_TABLE
from evals.writeback import EVALS_SCHEMA, EVALS_TABLE, append_run_metrics, read_evals
from mixlake.web.sample import BASE, METRIC, RUN_ID, SUITE, build_sample_lake
from training.runs import (
    EXPOSURES,
    EXPOSURES_SCHEMA,
    RUNS,
    RUNS_SCHEMA,
    Run,
    exposures,
    get_run,
    save_run,
    write_exposures,
)

TABLES = (RUNS, EXPOSURES, EVALS_TABLE)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_sample_lake(tmp_path_factory.mktemp("sample"), rows_per_source=6)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake whose side tables were written by a run and an eval, as `train`/`eval` do."""
    lake = make_lake(tmp_path_factory.mktemp("real"), {"toy": [{"text": "a b"}, {"text": "c"}]})
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    save_run(
        lake, Run("r1", "m", 1, "c" * 32, 1, "x: 1\n", None, "running", {}, {}, None, start, None)
    )
    ids = lake.records().to_table(columns=["id"]).column("id").to_pylist()
    rows = pa.table(
        {
            "run_id": ["r1"] * 2,
            "record_id": ids,
            "position": [0, 1],
            "step": [1, 1],
            "epoch": [0, 0],
        }
    )
    write_exposures(lake, "r1", rows)
    append_run_metrics(
        lake, "r1", "chat", {"rougeL": 0.5}, mix="m", mix_checksum="c" * 32, records_version=1,
        split="val",
    )  # fmt: skip
    return lake


@pytest.mark.parametrize("table", TABLES)
def test_the_sample_tables_have_the_real_writers_schemas(
    sample: Lake, real: Lake, table: str
) -> None:
    got = sample.dataset(table).schema
    assert got == real.dataset(table).schema, table
    want = {RUNS: RUNS_SCHEMA, EXPOSURES: EXPOSURES_SCHEMA, EVALS_TABLE: EVALS_SCHEMA}[table]
    assert got.remove_metadata() == want


def test_exposure_epochs_are_int32_as_the_ledger_has_them(sample: Lake) -> None:
    ledger = exposures(sample, RUN_ID)
    assert ledger.schema.field("epoch").type == pa.int32()
    assert ledger.num_rows == 6 and set(ledger.column("rank").to_pylist()) == {0}


def test_the_sample_run_and_evals_read_back_through_their_packages(sample: Lake) -> None:
    run = get_run(sample, RUN_ID)
    assert run.status == "finished" and run.metrics["steps"] == 20
    assert run.mix == "sample-chat" and run.mix_checksum
    evals = read_evals(sample).to_pylist()
    assert {(e["run_id"], e["suite"], e["metric"]) for e in evals} == {
        (BASE, SUITE, METRIC),
        (RUN_ID, SUITE, METRIC),
    }
    assert not sample.has_table(EVAL_IDS_TABLE)  # the sample records no per-id coverage
