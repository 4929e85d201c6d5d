"""`mixlake train` under torchrun: two CPU processes on the gloo backend, the tiny Llama, a lake mix.

The mix is sharded by rank, the ledger records every row's rank, step and position, and a run
resumed with another world size (same global batch) continues the very same sequence: its
(step, position) pairs equal a one-process run's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from curation import Lake
from curation.testing import make_lake
from queries import materialize_mix, parse_spec
from training import TrainingError, get_run, load_config, train
from training.runs import exposures
from training.testing import make_tiny_llama, texts_of, toy_chat_rows, toy_spec

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "training" / "configs" / "tiny-ddp.yaml"
SPEC = toy_spec(rows=12)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ddp")
    rows = toy_chat_rows(12)
    model = make_tiny_llama(root / "model", texts_of(rows))
    lake = make_lake(root, {"toy": rows})
    materialize_mix(lake, parse_spec(SPEC))
    sets = {"base_model": str(model), "mix": "toy", "data_file": None}
    # The reference: one process, 2 rows x 2 accumulation = the same 4 rows per step.
    one = load_config(CONFIG, {**sets, "gradient_accumulation_steps": 2, "output_dir": "x"})
    reference = train(one.replace(output_dir=str(root / "one")), lake, progress=False)
    return {"root": root, "lake": lake, "sets": sets, "one": one, "reference": reference}


def torchrun(
    world: dict[str, Any], *args: str, resume: bool = False, crash_at: str | None = None
) -> Any:
    sets = [f"{k}={'null' if v is None else v}" for k, v in world["sets"].items()]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--standalone",
        "-m",
        "mixlake",
        "train",
        str(CONFIG),
        "--lake",
        world["lake"].uri,
        *[x for s in [*sets, *args] for x in ("--set", s)],
        *(["--resume"] if resume else []),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("MIXLAKE_CRASH_AT", None)
    if crash_at:
        env["MIXLAKE_CRASH_AT"] = crash_at
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def losses(result_or_run: Any) -> list[float]:
    history = getattr(result_or_run, "history", None) or result_or_run.metrics["history"]
    return [h["loss"] for h in history if "loss" in h]


def loss_column(lake: Lake, run_id: str) -> dict[str, float]:
    column = f"train_loss_{run_id}"
    rows = lake.records().to_table(columns=["id", column]).to_pylist()
    return {r["id"]: r[column] for r in rows if r[column] is not None}


def ledger(lake: Lake, run_id: str) -> list[tuple[int, int, int]]:
    return [(r["step"], r["position"], r["rank"]) for r in exposures(lake, run_id).to_pylist()]


def test_two_ranks_shard_each_step_and_resume_on_one(world: dict[str, Any]) -> None:
    lake, root, reference = world["lake"], world["root"], world["reference"]
    out = root / "two"
    # 2 ranks x 2 rows x 1 accumulation; rank 0 kills itself after the checkpoint at step 2
    done = torchrun(world, f"output_dir={out}", crash_at="train-checkpoint-saved")
    assert done.returncode != 0, done.stdout + done.stderr
    (run_dir,) = out.iterdir()
    crashed = get_run(lake, run_dir.name)
    assert crashed.status == "running"  # killed: nothing marked it
    got = ledger(lake, crashed.run_id)
    expected = ledger(lake, reference.run_id)
    # the same rows at the same steps; in each step rank 0 took the first 2, rank 1 the next 2
    assert [(s, p) for s, p, _ in got] == [(s, p) for s, p, _ in expected[:8]]
    assert [r for _, _, r in got] == [0, 0, 1, 1, 0, 0, 1, 1]

    one = world["one"].replace(output_dir=str(out))
    with pytest.raises(TrainingError, match=r"took 4 items per step .* this launch takes 2"):
        train(one.replace(gradient_accumulation_steps=1), lake, resume=True, progress=False)
    resumed = train(one, lake, resume=True, progress=False)
    assert resumed.run_id == crashed.run_id and resumed.resumed_from_step == 2
    assert resumed.steps == 4 and get_run(lake, resumed.run_id).status == "finished"
    got = ledger(lake, resumed.run_id)
    assert sorted((s, p) for s, p, _ in got) == sorted((s, p) for s, p, _ in expected)
    assert {r for s, _, r in got if s > 2} == {0}
    # DDP averaged the same gradients a single process accumulates: the same losses
    assert losses(resumed) == pytest.approx(losses(reference), rel=1e-4)


def test_a_one_process_run_resumed_on_two_ranks_finishes_there(world: dict[str, Any]) -> None:
    """The whole DDP path: both ranks' exposures and losses reach rank 0, which writes them."""
    from training import callbacks

    lake, root, reference = world["lake"], world["root"], world["reference"]
    out = root / "grow"
    one = world["one"].replace(output_dir=str(out))
    original = callbacks.ProgressCallback.on_step_end

    def stop(self: Any, args: Any, state: Any, control: Any, **kw: Any) -> None:
        original(self, args, state, control, **kw)
        if state.global_step == 3:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(callbacks.ProgressCallback, "on_step_end", stop)
        with pytest.raises(KeyboardInterrupt):
            train(one, lake, progress=False)
    done = torchrun(world, f"output_dir={out}", "gradient_accumulation_steps=1", resume=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = out.iterdir()
    run = get_run(lake, run_dir.name)
    assert run.status == "finished" and run.metrics["world_size"] == 2
    got = ledger(lake, run.run_id)
    assert [(s, p) for s, p, _ in got] == [(s, p) for s, p, _ in ledger(lake, reference.run_id)]
    assert [r for s, _, r in got if s > 2] == [0, 0, 1, 1, 0, 0, 1, 1]
    rows = exposures(lake, run.run_id).to_pylist()
    last = max(r["epoch"] for r in rows)
    final = {r["record_id"] for r in rows if r["epoch"] == last}
    assert {r["rank"] for r in rows if r["epoch"] == last} == {0, 1}
    column = loss_column(lake, run.run_id)
    assert set(column) == final  # both ranks' rows got their loss
    expected = loss_column(lake, reference.run_id)
    assert column == pytest.approx(expected, rel=1e-4)
    assert losses(run) == pytest.approx(losses(reference), rel=1e-4)
