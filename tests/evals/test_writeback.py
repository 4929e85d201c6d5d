"""Write-back of per-row results computed elsewhere (imports), by the sparse write by id.

One version, nulls, idempotence within the tolerance, replace, rollback.
"""

from __future__ import annotations

import pytest

from curation import Lake, rollback
from curation.steps.values import ValuesReport
from evals.errors import EvalError
from evals.registry import get_suite
from evals.writeback import (
    append_run_metrics,
    read_evals,
    results_table,
    write_results,
)

METRICS = ("loss", "perplexity")
COLS = ("eval_r1a2b3c4_heldout_loss", "eval_r1a2b3c4_heldout_perplexity")


def _ids(lake: Lake, source: str) -> list[str]:
    return sorted(lake.sql(f"SELECT id FROM records WHERE source = '{source}'")["id"].to_pylist())


def _write(lake: Lake, ids: list[str], losses: list[float], replace: bool = False) -> ValuesReport:
    suite = get_suite("heldout")
    per_row = {"loss": losses, "perplexity": [2 * v for v in losses]}
    table = results_table("r1a2b3c4", suite, ids, per_row)
    return write_results(lake, "r1a2b3c4", suite, table, message="test write", replace=replace)


def _column(lake: Lake, name: str) -> dict[str, float | None]:
    table = lake.records().to_table(columns=["id", name])
    return dict(zip(table["id"].to_pylist(), table[name].to_pylist(), strict=True))


def test_one_version_with_message_and_nulls_for_rows_not_evaluated(eval_lake: Lake) -> None:
    chat = _ids(eval_lake, "chat")
    before = eval_lake.latest_version()
    report = _write(eval_lake, chat[:2], [1.5, 2.5])
    assert report.version == before + 1
    assert report.columns == COLS
    values = _column(eval_lake, COLS[0])
    assert values[chat[0]] == 1.5 and values[chat[1]] == 2.5
    others = [v for i, v in values.items() if i not in chat[:2]]
    assert others and all(v is None for v in others)  # null, not zero
    assert _column(eval_lake, COLS[1])[chat[1]] == 5.0
    assert eval_lake.log()[0].message == "test write"


def test_same_values_again_is_a_no_op_and_new_rows_fill_in(eval_lake: Lake) -> None:
    chat = _ids(eval_lake, "chat")
    _write(eval_lake, chat[:2], [1.5, 2.5])
    version = eval_lake.latest_version()
    n_columns = len(eval_lake.records().schema.names)
    again = _write(eval_lake, chat[:2], [1.5, 2.5])
    assert again.version is None and again.rows_unchanged == 2
    assert eval_lake.latest_version() == version
    more = _write(eval_lake, chat[:3], [1.5, 2.5, 3.5])
    assert more.rows_written == 1 and more.version == version + 1
    assert len(eval_lake.records().schema.names) == n_columns  # no duplicated columns
    assert _column(eval_lake, COLS[0])[chat[2]] == 3.5


def test_changed_values_need_replace_and_keep_other_rows(eval_lake: Lake) -> None:
    chat = _ids(eval_lake, "chat")
    _write(eval_lake, chat[:3], [1.0, 2.0, 3.0])
    version = eval_lake.latest_version()
    assert _write(eval_lake, chat[:1], [1.0 + 1e-4]).version is None  # fp jitter: unchanged
    with pytest.raises(EvalError, match=r"different values.*--replace"):
        _write(eval_lake, chat[:1], [9.0])
    assert eval_lake.latest_version() == version  # nothing written
    _write(eval_lake, chat[:1], [9.0], replace=True)
    values = _column(eval_lake, COLS[0])
    assert [values[i] for i in chat[:3]] == [9.0, 2.0, 3.0]
    assert values[chat[4]] is None


def test_rollback_takes_the_columns_with_their_version(eval_lake: Lake) -> None:
    chat = _ids(eval_lake, "chat")
    before = eval_lake.latest_version()
    written = _write(eval_lake, chat[:2], [1.0, 2.0]).version
    rollback(eval_lake, before)
    assert COLS[0] not in eval_lake.records().schema.names
    assert COLS[0] in eval_lake.records(written).schema.names
    rollback(eval_lake, written)
    assert _column(eval_lake, COLS[0])[chat[1]] == 2.0


def test_run_level_rows_append_once(eval_lake: Lake) -> None:
    kw: dict = {"mix": "m", "mix_checksum": "abc", "records_version": 3, "split": "test"}
    assert append_run_metrics(eval_lake, "r1a2b3c4", "heldout", {"loss": 1.0}, **kw) == 1
    assert append_run_metrics(eval_lake, "r1a2b3c4", "heldout", {"loss": 1.0}, **kw) == 0
    assert append_run_metrics(eval_lake, "r1a2b3c4", "heldout", {"loss": 0.5}, **kw) == 1
    rows = read_evals(eval_lake).to_pylist()
    assert [r["value"] for r in rows] == [1.0, 0.5]
    assert rows[0]["mix_checksum"] == "abc" and rows[0]["records_version"] == 3
    assert eval_lake.sql("SELECT count(*) AS n FROM evals")["n"][0].as_py() == 2


def test_bad_ids_are_refused_before_anything_is_written(eval_lake: Lake) -> None:
    with pytest.raises(EvalError, match="bad record id 'XYZ'"):
        results_table(
            "r1a2b3c4", get_suite("heldout"), ["XYZ"], {"loss": [1.0], "perplexity": [1.0]}
        )
