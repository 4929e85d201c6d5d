"""Heldout and generation evals on a real two-node Ray cluster, against local ones.

They commit exactly what a local eval commits: the same columns (Arrow `equals`), provenance,
journal message and run-level rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from curation import Lake
from curation.ray_engine import RayEngine, is_model_step
from curation.steps import column_provenance
from evals import EvalOptions, evaluate, read_evals
from evals.registry import get_suite
from evals.steps import SuiteStep
from evals.targets import Target

SUITES = {"heldout": "chat", "generation": "qa"}


def _eval_columns(lake: Lake) -> dict[str, Any]:
    ds = lake.records()
    names = sorted(n for n in ds.schema.names if n.startswith("eval_"))
    return {n: ds.to_table(columns=["id", n]).sort_by("id").column(n) for n in names}


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path, ray_address: str
) -> dict[str, Any]:
    from tests.evals.conftest import CHATS, QA

    root = tmp_path_factory.mktemp("ray-evals")
    from curation.testing import make_lake

    local = make_lake(root, {"chat": CHATS[:3], "qa": QA, "more": CHATS[3:]})
    shutil.copytree(root / "lake", root / "ray-lake")
    distributed = Lake(root / "ray-lake")
    options = EvalOptions(max_new_tokens=4, rows_per_batch=2)
    out: dict[str, Any] = {"local": {}, "ray": {}}
    for suite, source in SUITES.items():
        kw: dict[str, Any] = {"eval_set": source, "options": options}
        out["local"][suite] = evaluate(local, str(tiny_llama), suite, **kw)
        out["ray"][suite] = evaluate(
            distributed, str(tiny_llama), suite, engine=RayEngine(ray_address), **kw
        )
    return {**out, "local_lake": local, "ray_lake": distributed}


def test_eval_steps_run_on_actors(tiny_llama: Path) -> None:
    step = SuiteStep(get_suite("heldout"), Target("t", str(tiny_llama)), [], EvalOptions())
    assert is_model_step(step)


def test_ray_writes_the_columns_the_local_eval_writes(both: dict[str, Any]) -> None:
    assert len(both["ray_lake"].records().get_fragments()) == 3  # work to spread
    local, ray = _eval_columns(both["local_lake"]), _eval_columns(both["ray_lake"])
    assert set(local) == set(ray) and len(local) == 2 + 5  # heldout 2, generation 4 + answer
    for name, column in local.items():
        assert column.equals(ray[name]), name
        assert column.null_count < len(column)  # something was computed
    for name in local:
        a = column_provenance(both["local_lake"].records().schema.field(name))
        b = column_provenance(both["ray_lake"].records().schema.field(name))
        assert (a["step"], a["params"]) == (b["step"], b["params"])


def test_one_commit_each_with_the_same_journal_and_results(both: dict[str, Any]) -> None:
    for suite in SUITES:
        a, b = both["local"][suite], both["ray"][suite]
        assert a.version is not None and b.version == a.version
        assert a.run_level == b.run_level and a.ids == b.ids
    log = lambda lake: [e.message for e in lake.log() if e.operation == "eval"]  # noqa: E731
    assert log(both["local_lake"]) == log(both["ray_lake"]) and len(log(both["ray_lake"])) == 2
    rows = lambda lake: read_evals(lake).select(["run_id", "suite", "metric", "value"])  # noqa: E731
    assert rows(both["local_lake"]).equals(rows(both["ray_lake"]))


def test_the_cli_runs_an_eval_on_ray(
    eval_lake: Lake, tiny_llama: Path, ray_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixlake.cli import main

    lake = ["--lake", eval_lake.uri]
    args = [str(tiny_llama), "--suite", "heldout", "--eval-set", "chat", "--limit", "2"]
    assert main(["eval", *args, "--engine", "ray", "--ray-address", ray_address, *lake]) == 0
    assert "evaluated base_tiny_llama" in capsys.readouterr().err
    loss = eval_lake.sql("SELECT count(eval_base_tiny_llama_heldout_loss) AS n FROM records")
    assert loss["n"][0].as_py() == 2
    assert main(["eval", *args, "--engine", "spark", *lake]) == 2
    assert "unknown --engine 'spark'" in capsys.readouterr().err
