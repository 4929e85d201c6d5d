"""A tuned run is evaluated as it was trained (nf4 base + adapter).

The full-precision base is an option with its own label.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from curation.testing import make_lake
from evals import evaluate
from evals.data import from_rendered
from evals.scoring import loss_text, score_texts
from queries import materialize_mix, parse_spec
from training import TrainConfig, TrainingError, train
from training.testing import make_tiny_llama, texts_of, toy_chat_rows, toy_spec

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

SPEC = toy_spec(splits="{train: 0.5, test: 0.5}")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("precision")
    rows = toy_chat_rows(8)
    model = make_tiny_llama(root / "model", texts_of(rows))
    lake = make_lake(root, {"toy": rows})
    materialize_mix(lake, parse_spec(SPEC))
    config = TrainConfig(
        base_model=str(model),
        mix="toy",
        eval_split=None,
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=5e-2,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        max_length=64,
        save_steps=100,
        output_dir=str(root / "runs"),
        device="cpu",
        cpu_threads=1,
    )
    return {"lake": lake, "model": model, "run": train(config, lake, progress=False)}


def _as_trained_losses(base: Path, adapter: Path, lake: Any, ids: list[str]) -> list[float]:
    """The run's model built by hand the way training builds it."""
    import torch
    from peft import PeftModel, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        base, quantization_config=quant, dtype=torch.bfloat16, device_map="cpu"
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    for module in model.modules():  # the training path's kernel (no CPU repack)
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    model = PeftModel.from_pretrained(model, adapter).eval()
    tok = AutoTokenizer.from_pretrained(base)
    from queries import open_mix

    examples = {e.id: e for e in from_rendered(open_mix(lake, "toy").examples("test"))}
    scored = score_texts(model, tok, [loss_text(tok, examples[i]) for i in ids])
    return [s.loss_sum / s.tokens for s in scored]


def test_a_run_is_evaluated_on_its_nf4_base_by_default(tuned: dict[str, Any]) -> None:
    lake, run = tuned["lake"], tuned["run"]
    as_trained = evaluate(lake, run.run_id, "heldout")
    full = evaluate(lake, run.run_id, "heldout", precision="full")
    assert as_trained.target == run.run_id and as_trained.run_level["nf4_base"] == 1.0
    assert full.target == f"{run.run_id}_fullprec" and full.run_level["nf4_base"] == 0.0
    assert as_trained.columns[0] == f"eval_{run.run_id}_heldout_loss"
    assert full.columns[0] == f"eval_{run.run_id}_fullprec_heldout_loss"
    expected = _as_trained_losses(tuned["model"], run.adapter_path, lake, as_trained.ids)

    def gap(losses: list[Any]) -> float:
        return max(abs(a - b) for a, b in zip(losses, expected, strict=True))

    # nf4 moves this tiny model's losses by ~5e-4; the inference kernel by ~3e-5
    assert gap(as_trained.per_row["loss"]) < 1e-4 < gap(full.per_row["loss"])


def test_a_base_model_can_be_quantized_like_a_run(tuned: dict[str, Any]) -> None:
    lake, model = tuned["lake"], tuned["model"]
    nf4 = evaluate(lake, str(model), "heldout", mix="toy", precision="nf4")
    assert nf4.target == "base_model_nf4" and nf4.run_level["nf4_base"] == 1.0
    plain = evaluate(lake, str(model), "heldout", mix="toy")
    assert plain.target == "base_model" and plain.run_level["nf4_base"] == 0.0


def test_an_offline_adapter_is_evaluated_as_its_run_json_says(
    tuned: dict[str, Any], tmp_path: Path
) -> None:
    from evals.targets import adapter_target

    adapter = str(tuned["run"].adapter_path)
    as_trained = adapter_target("r1", "smollm2", adapter)
    assert as_trained.label == "r1" and as_trained.quantization == {
        "quant_type": "nf4",
        "double_quant": True,
        "compute_dtype": "bfloat16",
        "device": "cpu",
    }
    full = adapter_target("r1", "smollm2", adapter, "full")
    assert full.label == "r1_fullprec" and full.quantization is None
    bare = tmp_path / "run" / "adapter"
    bare.mkdir(parents=True)
    record = json.loads((Path(adapter).parent / "run.json").read_text())
    record["config"]["load_in_4bit"] = False  # a run trained on a full-precision base
    (bare.parent / "run.json").write_text(json.dumps(record))
    assert adapter_target("r2", "smollm2", str(bare)).quantization is None
    (bare.parent / "run.json").write_text('{"config": {"load_in_4bit": false}}')
    with pytest.raises(TrainingError, match=r"run\.json: not a run record \(missing run_id"):
        adapter_target("r2", "smollm2", str(bare))  # the typed record, not a guess
    assert adapter_target("base_x", "x", None, "nf4").label == "base_x_nf4"
