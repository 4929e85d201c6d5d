"""The loop back: the shipped `chitchat-hard` spec selects on eval columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curation import Lake
from curation.steps.base import apply
from curation.testing import make_lake
from evals.registry import get_suite
from evals.writeback import results_table, write_results
from queries import check_mix, load_spec, materialize_mix

SPEC = Path(__file__).resolve().parents[2] / "queries" / "mixes" / "chitchat-hard.yaml"


class _NotDup:
    name = "is_dup"
    input_columns: tuple[str, ...] = ()

    def params(self) -> dict[str, object]:
        return {}

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field("is_dup", pa.bool_())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([pa.array([False] * batch.num_rows)], ["is_dup"])


def _heldout(lake: Lake, label: str, losses: dict[str, float]) -> None:
    ids = list(losses)
    suite = get_suite("heldout")
    per_row = {"loss": [losses[i] for i in ids], "perplexity": [1.0] * len(ids)}
    table = results_table(label, suite, ids, per_row)
    write_results(lake, label, suite, table, message=f"test {label}")


def test_chitchat_hard_takes_the_hardest_rows_no_run_has_learned(tmp_path: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"hi {i}"},
                {"role": "assistant", "content": f"yo {i}"},
            ]
        }
        for i in range(20)
    ]
    lake = make_lake(tmp_path, {"chitchat": rows})
    apply(_NotDup(), lake)
    ids = sorted(lake.sql("SELECT id FROM records")["id"].to_pylist())
    base = {i: float(k) for k, i in enumerate(ids)}  # row k has base loss k: ids[19] is hardest
    # two tuned runs; either one having learned a row (loss ≥ 0.5 below base) excludes it
    _heldout(lake, "base_smollm2", base)
    _heldout(
        lake,
        "r0000aaaa",
        {i: base[i] - 3.0 if k in (19, 17) else base[i] for k, i in enumerate(ids)},
    )
    _heldout(lake, "r1111bbbb", {ids[18]: base[ids[18]] - 0.6, ids[16]: base[ids[16]] - 0.1})
    spec = load_spec(SPEC)
    plan = check_mix(lake, spec)
    assert not plan.problems, plan.problems
    mix = materialize_mix(lake, spec)
    chosen = set(mix.rows()["id"].to_pylist())
    # hardest 8 by base loss, skipping 19, 18 and 17 (learned) but keeping 16 (only 0.1 better)
    assert chosen == {ids[k] for k in (16, 15, 14, 13, 12, 11, 10, 9)}
