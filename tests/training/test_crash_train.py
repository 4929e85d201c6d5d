"""Fault injection for `mixlake train`: kill -9 at the commit points of its lake writes.

A run writes its `runs` row, exposures and pin, then `train_loss_<run>` onto `records` through
`apply` (crash points `step:*`). Killed at any of them, the lake must keep its invariants and
a rerun of the same command must succeed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.testing import make_lake
from queries import materialize_mix, parse_spec
from tests.curation.crashkit import check_lake, mixlake
from training.testing import make_tiny_llama, texts_of, toy_chat_rows, toy_spec

SPEC = toy_spec()
CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "tiny-test.yaml"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, list[str]]:
    rows = toy_chat_rows(8)
    model = make_tiny_llama(tmp_path / "model", texts_of(rows))
    lake = make_lake(tmp_path, {"toy": rows})
    materialize_mix(lake, parse_spec(SPEC))
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG.read_text().replace("data_file: mix.jsonl", "mix: toy"))
    sets = [f"base_model={model}", "max_steps=2", f"output_dir={tmp_path / 'runs'}"]
    args = ["train", str(config), *[x for s in sets for x in ("--set", s)]]
    return Path(lake.uri), args


@pytest.mark.parametrize("point", ["step:before-commit", "step:after-commit"])
def test_train_killed_at_its_loss_write(world: tuple[Path, list[str]], point: str) -> None:
    lake, args = world
    before = check_lake(lake)
    run = mixlake(lake, *args, crash_at=point)
    assert run.killed, f"train did not reach {point}: {run.code} {run.err[-600:]}"
    state = check_lake(lake)
    has_loss = any(c.startswith("train_loss_") for c in state.columns)
    assert state.version == before.version + (1 if point.endswith("after-commit") else 0)
    assert has_loss == point.endswith("after-commit")
    assert state.ids == before.ids
    rerun = mixlake(lake, *args)
    assert rerun.code == 0, rerun.err[-600:]
    after = check_lake(lake)
    assert any(c.startswith("train_loss_") for c in after.columns)
