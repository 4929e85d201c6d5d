"""The real code path (bitsandbytes nf4 + peft LoRA + trl SFTTrainer) on a tiny random Llama.

Its tokenizer is trained on the fly; the trainer is fed from a materialized lake mix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from curation import Lake
from curation.testing import make_lake
from queries import materialize_mix, open_mix, parse_spec
from training import TrainConfig, TrainingError, get_run, impact, load_for_inference, train
from training.data import epoch_order
from training.runs import exposures
from training.testing import make_tiny_llama, texts_of, toy_chat_rows, toy_spec

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

SPEC = toy_spec()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("train")
    rows = toy_chat_rows(8)
    model = make_tiny_llama(root / "model", texts_of(rows))
    lake = make_lake(root, {"toy": rows})
    mix = materialize_mix(lake, parse_spec(SPEC))
    config = TrainConfig(
        base_model=str(model),
        mix="toy",
        num_train_epochs=4,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        learning_rate=3e-2,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        max_length=64,
        logging_steps=1,
        save_steps=100,
        output_dir=str(root / "runs"),
        device="cpu",
    )
    result = train(config, lake, progress=False)
    return {"root": root, "lake": lake, "mix": mix, "config": config, "result": result}


def mix_ids(lake: Lake) -> list[str]:
    return [str(i) for i in open_mix(lake, "toy").rows("train").column("id").to_pylist()]


def test_loss_decreases_on_a_repeated_tiny_mix(world: dict[str, Any]) -> None:
    result = world["result"]
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert result.steps == 8 and len(losses) == 8
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.1, losses


def test_exposure_ledger_equals_the_mix_order(world: dict[str, Any]) -> None:
    lake, result = world["lake"], world["result"]
    ledger = exposures(lake, result.run_id).to_pylist()
    ids = mix_ids(lake)
    seed = open_mix(lake, "toy").spec.seed
    expected = [ids[int(i)] for e in range(4) for i in epoch_order(8, e, seed)]
    assert [r["record_id"] for r in ledger] == expected
    assert [r["step"] for r in ledger] == [s for s in range(1, 9) for _ in range(4)]
    assert [r["epoch"] for r in ledger] == [e for e in range(4) for _ in range(8)]
    assert [r["position"] for r in ledger[:8]] == list(range(8))
    assert result.exposures == 32


def test_run_is_registered_pinned_and_writes_per_row_loss(world: dict[str, Any]) -> None:
    lake, result, mix = world["lake"], world["result"], world["mix"]
    run = get_run(lake, result.run_id)
    assert run.run_id.startswith("r") and len(run.run_id) == 9
    assert run.status == "finished" and run.mix == "toy" and run.mix_version == 1
    assert run.mix_checksum == mix.checksum and run.records_version == mix.records_version
    assert run.metrics["steps"] == 8 and run.best_metrics["train_loss"] <= run.metrics["train_loss"]
    assert Path(run.adapter_path or "", "adapter_config.json").is_file()
    assert lake.tags(include_pins=True)[f"pin-run-{run.run_id}"] == mix.records_version
    column = f"train_loss_{run.run_id}"
    assert result.train_loss_column == column
    values = lake.records().to_table(columns=[column]).column(column).to_pylist()
    assert len(values) == 8 and all(v is not None and v > 0 for v in values)


def test_impact_lists_runs_and_mixes_that_used_rows(world: dict[str, Any]) -> None:
    lake, result = world["lake"], world["result"]
    first = mix_ids(lake)[0]
    found = impact(lake, where=f"id = '{first}'")
    assert found.rows == 1
    assert [(r["run_id"], r["rows"], r["exposures"]) for r in found.runs] == [(result.run_id, 1, 4)]
    assert found.mixes == [{"mix": "toy", "mix_version": 1, "rows": 1}]
    assert impact(lake, where="source = 'nothing'").runs == []
    with pytest.raises(TrainingError, match="one of them"):
        impact(lake)


def _plain_peft(base: str, adapter: str | None) -> tuple[Any, Any]:
    """The base model (float32) with the adapter, loaded by transformers and peft alone."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    return model.eval(), tokenizer


def _prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> Any:
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]


def test_adapter_generates_what_plain_transformers_generates(world: dict[str, Any]) -> None:
    import torch

    from training.models import generate

    base, adapter = world["config"].base_model, world["result"].adapter_path
    model, tokenizer = load_for_inference(base, adapter)
    messages = [{"role": "user", "content": "what color is the sky"}]
    text = generate(model, tokenizer, messages, 6)
    assert text.strip(), "the tuned model generated nothing"

    ref, ref_tokenizer = _plain_peft(base, adapter)
    ids = _prompt_ids(ref_tokenizer, messages)
    with torch.inference_mode():
        out = ref.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=6,
            do_sample=False,
            pad_token_id=ref_tokenizer.pad_token_id,
        )
    want = ref_tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert text.strip() == want.strip()
    # the adapter is in the forward pass: the tuned logits are not the base model's
    plain, _ = _plain_peft(base, None)
    with torch.inference_mode():
        tuned_logits = model(input_ids=ids.to(next(model.parameters()).device)).logits.cpu()
        base_logits = plain(input_ids=ids).logits
    assert not torch.allclose(tuned_logits, base_logits, atol=1e-3), "the adapter changed nothing"


def test_resume_continues_at_the_right_step_and_row(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import callbacks

    lake = world["lake"]
    config = world["config"].replace(
        max_steps=6,
        gradient_accumulation_steps=1,
        save_steps=3,
        logging_steps=3,
        output_dir=str(world["root"] / "resume-runs"),
    )
    original = callbacks.ProgressCallback.on_step_end

    def crash(self: Any, args: Any, state: Any, control: Any, **kw: Any) -> None:
        original(self, args, state, control, **kw)
        if state.global_step == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.ProgressCallback, "on_step_end", crash)
    with pytest.raises(KeyboardInterrupt):
        train(config, lake, progress=False)
    monkeypatch.undo()
    crashed = [r for r in (get_run(lake, r.run_id) for r in _runs(lake)) if r.status != "finished"]
    assert [r.status for r in crashed] == ["interrupted"]
    result = train(config, lake, resume=True, progress=False)
    assert result.run_id == crashed[0].run_id
    assert result.resumed_from_step == 3 and result.steps == 6
    ids = mix_ids(lake)
    seed = open_mix(lake, "toy").spec.seed
    order = [ids[int(i)] for e in range(2) for i in epoch_order(8, e, seed)][:12]
    ledger = exposures(lake, result.run_id).to_pylist()
    assert [r["record_id"] for r in ledger] == order
    assert [r["step"] for r in ledger] == [s for s in range(1, 7) for _ in range(2)]
    assert get_run(lake, result.run_id).status == "finished"


def _runs(lake: Lake) -> list[Any]:
    from training import list_runs

    return list_runs(lake)


def test_errors_come_before_any_model_is_loaded(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import training.trainer as trainer

    def boom(*a: Any, **k: Any) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(trainer, "resolve_base", boom)
    monkeypatch.setattr(trainer, "load_for_training", boom)
    lake, config = world["lake"], world["config"]
    with pytest.raises(TrainingError, match="no mix 'nope'"):
        train(config.replace(mix="nope"), lake)
    with pytest.raises(TrainingError, match=r"base_model.*not an existing folder"):
        train(config.replace(base_model=str(tmp_path / "missing")), lake)
    pref = tmp_path / "pref.jsonl"
    pref.write_text('{"id": "a", "prompt": "p", "chosen": "c", "rejected": "r"}\n')
    with pytest.raises(TrainingError, match=r"pref\.jsonl:1: a preference row"):
        train(config.replace(mix=None, data_file=str(pref)), lake)
    with pytest.raises(TrainingError, match="no rows in split 'val'"):
        train(config.replace(split="val"), lake)
    with pytest.raises(TrainingError, match="--resume: no unfinished run"):
        train(config.replace(output_dir=str(tmp_path / "empty")), lake, resume=True)


def test_cli_train_runs_show_impact(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import orjson

    from mixlake.cli import main

    lake, result = world["lake"], world["result"]
    uri = ["--lake", lake.uri]
    assert main(["runs", *uri]) == 0
    assert result.run_id in capsys.readouterr().out
    png = tmp_path / "loss.png"
    assert main(["runs", "show", result.run_id, "--plot", str(png), *uri]) == 0
    assert png.stat().st_size > 1000 and "loss curve" in capsys.readouterr().out
    assert main(["impact", "--where", "source = 'toy'", *uri]) == 0
    out = capsys.readouterr().out
    assert result.run_id in out and "toy" in out

    # An exported mix file trains the same way; the lake (present) still gets the run.
    export = tmp_path / "toy.jsonl"
    examples = open_mix(lake, "toy").examples("train")
    export.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in examples))
    config = Path(__file__).resolve().parents[2] / "training" / "configs" / "tiny-test.yaml"
    sets = [
        f"base_model={world['config'].base_model}",
        f"data_file={export}",
        "max_steps=2",
        f"output_dir={tmp_path / 'cli-runs'}",
    ]
    args = ["train", str(config), *[x for s in sets for x in ("--set", s)], *uri]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "trained" in err and "exposures: 8" in err
    assert main(["train", str(config), "--set", "lora_rank=3", *uri]) == 2
    assert "unknown config key 'lora_rank'" in capsys.readouterr().err
