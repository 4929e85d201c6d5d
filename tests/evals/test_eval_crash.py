"""An eval killed mid-way (kill -9 after a finished batch) resumes on rerun.

Nothing is committed before; nothing finished is recomputed; the values and aggregates are
those of an eval that was never interrupted; one commit, one journal entry.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from curation import Lake
from curation.faults import CRASH_ENV
from evals import EvalOptions, evaluate, suites

REPO = Path(__file__).resolve().parents[2]
LOSS = "eval_base_tiny_llama_heldout_loss"
CHILD = """
import sys
from curation import Lake
from evals import EvalOptions, evaluate
limit = int(sys.argv[3]) or None
evaluate(Lake(sys.argv[1]), sys.argv[2], "heldout", eval_set="chat", limit=limit,
         options=EvalOptions(rows_per_batch=2))
"""


def _killed_eval(lake: Path, model: Path, point: str, limit: int = 0) -> None:
    env = {**os.environ, CRASH_ENV: point, "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(lake), str(model), str(limit)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


def _rows_checkpointed(lake: Path) -> int:
    done = 0
    for path in (lake / "_checkpoints").glob("*/batch-*.arrow"):
        with pa.ipc.open_file(path) as reader:
            column = reader.get_batch(0).column(LOSS)
        done += len(column) - column.null_count
    return done


def test_a_killed_eval_resumes_without_recomputing(
    eval_lake: Lake, tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = Path(eval_lake.uri)
    shutil.copytree(uri, tmp_path / "clean")
    version = eval_lake.latest_version()
    _killed_eval(uri, tiny_llama, "step:batch-done:2")
    crashed = Lake(uri)
    assert crashed.latest_version() == version  # nothing committed
    assert LOSS not in crashed.records().schema.names
    finished = _rows_checkpointed(uri)
    assert 0 < finished < 6  # some chat rows were done, some were not

    scored: list[Any] = []
    real = suites.score_texts

    def counting(model: Any, tokenizer: Any, items: Any, **kw: Any) -> Any:
        scored.extend(items)
        return real(model, tokenizer, items, **kw)

    monkeypatch.setattr(suites, "score_texts", counting)
    options = EvalOptions(rows_per_batch=2)
    resumed = evaluate(crashed, str(tiny_llama), "heldout", eval_set="chat", options=options)
    assert len(scored) == 6 - finished  # the finished batches were not computed again
    monkeypatch.setattr(suites, "score_texts", real)
    clean_lake = Lake(tmp_path / "clean")
    clean = evaluate(clean_lake, str(tiny_llama), "heldout", eval_set="chat", options=options)

    def column(lake: Lake) -> pa.ChunkedArray:
        return lake.records().to_table(columns=["id", LOSS]).sort_by("id").column(LOSS)

    assert column(crashed).equals(column(clean_lake))
    assert resumed.run_level == clean.run_level and resumed.rows == 6
    assert resumed.version == version + 1
    assert [e.operation for e in crashed.log()].count("eval") == 1
    assert not list((uri / "_checkpoints").glob("*/batch-*.arrow"))  # cleaned up on commit


def test_a_rerun_on_other_rows_does_not_take_the_crashed_runs_work_for_its_own(
    eval_lake: Lake, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = Path(eval_lake.uri)
    _killed_eval(uri, tiny_llama, "step:fragment-done", limit=2)  # chat's fragment, 2 rows
    assert _rows_checkpointed(uri) == 0 and list((uri / "_checkpoints").glob("*/fragment-*"))
    scored: list[Any] = []
    real = suites.score_texts

    def counting(model: Any, tokenizer: Any, items: Any, **kw: Any) -> Any:
        scored.extend(items)
        return real(model, tokenizer, items, **kw)

    monkeypatch.setattr(suites, "score_texts", counting)
    result = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat")
    assert len(scored) == 6 and result.rows == 6  # all six, not the crashed run's two
    values = eval_lake.records().to_table(columns=[LOSS]).column(LOSS)
    assert len(values) - values.null_count == 6
