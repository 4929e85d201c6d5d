"""Training on the real code path (bnb nf4 + peft + trl) with loss-free rows and mid-run evals.

Excluded rows are counted and never exposed; evaluating changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from curation.testing import make_lake
from queries import materialize_mix, parse_spec
from training import TrainConfig, train
from training.data import NO_ASSISTANT
from training.runs import exposures
from training.testing import make_tiny_llama, texts_of, toy_chat_rows, toy_spec

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

USER_ONLY = [
    {"messages": [{"role": "user", "content": f"what color is the plum number {i} ?"}]}
    for i in (20, 21)
]
SPEC = toy_spec("mixed")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rows-model")
    return make_tiny_llama(root / "model", texts_of([*toy_chat_rows(8), *USER_ONLY]))


def config(model: Path, out: Path, **changes: Any) -> TrainConfig:
    return TrainConfig(
        base_model=str(model),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        learning_rate=3e-2,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        max_length=64,
        logging_steps=1,
        save_steps=100,
        output_dir=str(out),
        device="cpu",
        cpu_threads=1,
        **changes,
    )


def test_rows_without_an_assistant_turn_are_counted_not_trained(
    model: Path, tmp_path: Path
) -> None:
    """They were trained on every token (system prompt included) and entered the ledger."""
    lake = make_lake(tmp_path, {"toy": [*toy_chat_rows(6), *USER_ONLY]})
    materialize_mix(lake, parse_spec(SPEC))
    result = train(
        config(model, tmp_path / "runs", mix="mixed", eval_split=None), lake, progress=False
    )
    assert result.rows == {
        "rows_in_split": 8,
        "rows_trained": 6,
        "rows_excluded": {NO_ASSISTANT: 2},
        "rows_truncated": 0,
    }
    assert result.metrics["rows_excluded"] == {NO_ASSISTANT: 2}
    user_only = {
        r["id"]
        for r in lake.records().to_table(columns=["id", "messages"]).to_pylist()
        if len(r["messages"]) == 1
    }
    assert len(user_only) == 2
    ledger = exposures(lake, result.run_id).to_pylist()
    assert len(ledger) == 6 and not {r["record_id"] for r in ledger} & user_only
    column = f"train_loss_{result.run_id}"
    losses = {
        r["id"]: r[column] for r in lake.records().to_table(columns=["id", column]).to_pylist()
    }
    assert all(losses[i] is None for i in user_only)
    assert sum(v is not None for v in losses.values()) == 6


def _export(path: Path) -> Path:
    rows = [{"id": f"t{i}", "split": "train", **r} for i, r in enumerate(toy_chat_rows(8))] + [
        {"id": f"v{i}", "split": "val", **r} for i, r in enumerate(toy_chat_rows(2))
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_mid_run_evaluation_leaves_training_bit_identical(model: Path, tmp_path: Path) -> None:
    """A run with an eval after every step trains exactly as one without evals.

    On a CPU with AVX-512 bf16, bitsandbytes repacked the 4-bit weights at the first eval
    forward and training went on through a kernel without autograd (gradients ~100% off).
    """
    from safetensors.torch import load_file

    data = _export(tmp_path / "mix.jsonl")
    runs = {}
    for every in (0, 1):
        cfg = config(
            model, tmp_path / f"eval{every}", data_file=str(data), max_steps=4, eval_steps=every
        )
        runs[every] = train(cfg, None, progress=False)
    plain, evaluated = runs[0], runs[1]
    assert [h["eval_loss"] for h in evaluated.history if "eval_loss" in h][:4]
    losses = [[h["loss"] for h in r.history if "loss" in h] for r in (plain, evaluated)]
    assert len(losses[0]) == 4 and losses[0] == losses[1]
    weights = [load_file(r.adapter_path / "adapter_model.safetensors") for r in (plain, evaluated)]
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        assert tensor.equal(weights[1][name]), name
