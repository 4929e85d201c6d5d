"""The exposure ledger and `impact` quote values with `curation.sqltext`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curation.testing import make_lake
from training import TrainingError, impact
from training.runs import exposures, write_exposures


def _rows(run_id: str, steps: list[int]) -> pa.Table:
    n = len(steps)
    return pa.table(
        {
            "run_id": [run_id] * n,
            "record_id": [f"id{i}" for i in range(n)],
            "position": list(range(n)),
            "step": steps,
            "epoch": [0] * n,
        }
    )


def test_a_run_id_with_a_quote_keeps_its_own_exposures(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": [{"text": "a"}]})
    write_exposures(lake, "r'1", _rows("r'1", [1, 2, 3]))
    write_exposures(lake, "r2", _rows("r2", [1, 2]))
    # a resumed run drops its own rows past the step, nobody else's
    write_exposures(lake, "r'1", _rows("r'1", [3]), after_step=2)
    assert exposures(lake, "r'1")["step"].to_pylist() == [1, 2, 3]
    assert exposures(lake, "r2").num_rows == 2


def test_impact_refuses_more_than_one_statement(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": [{"text": "a"}]})
    with pytest.raises(TrainingError, match="SQL statements"):
        impact(lake, where="1=1; DROP TABLE records")
    assert impact(lake, batch="it's").rows == 0
