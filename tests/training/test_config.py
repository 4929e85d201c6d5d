"""The training config: shipped YAMLs load, errors name the key, the file and what is allowed."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from training.config import TrainConfig, field_docs, load_config
from training.errors import TrainingError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "training" / "configs").glob("*.yaml"))


def test_configs_are_shipped() -> None:
    assert {p.name for p in CONFIGS} >= {"smollm2-chitchat.yaml", "tiny-test.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_round_trips(path: Path, tmp_path: Path) -> None:
    config = load_config(path)
    again = tmp_path / "again.yaml"
    again.write_text(config.to_yaml())
    assert load_config(again) == config


def test_every_field_has_a_docstring() -> None:
    docs = field_docs()
    assert [f.name for f in fields(TrainConfig)] == list(docs)
    assert all(docs.values())
    assert docs["optim"].startswith("Optimizer")


def test_unknown_key_names_the_key_the_file_and_the_allowed_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mix: m\nlearning_rte: 0.1\n")
    with pytest.raises(TrainingError) as e:
        load_config(path)
    text = str(e.value)
    assert "learning_rte" in text and str(path) in text and "learning_rate" in text


def test_bad_value_names_the_key_and_the_allowed_values(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mix: m\nlr_scheduler_type: wobbly\n")
    with pytest.raises(TrainingError, match=r"lr_scheduler_type.*wobbly.*cosine"):
        load_config(path)
    with pytest.raises(TrainingError, match=r"lora_r: expected int"):
        load_config(None, {"mix": "m", "lora_r": "sixteen"})
    with pytest.raises(TrainingError, match=r"lora_dropout"):
        load_config(None, {"mix": "m", "lora_dropout": 1.5})
    with pytest.raises(TrainingError, match=r"exactly one of `mix`"):
        load_config(None, {"mix": "m", "data_file": "x.jsonl"})


def test_set_overrides_parse_as_yaml() -> None:
    config = load_config(
        CONFIGS[0], ["max_steps=3", "packing=true", "target_modules=[q_proj]", "mix_version=2"]
    )
    assert config.max_steps == 3 and config.packing is True
    assert config.target_modules == ("q_proj",) and config.mix_version == 2
    with pytest.raises(TrainingError, match="key=value"):
        load_config(CONFIGS[0], ["max_steps"])
    with pytest.raises(TrainingError, match="unknown config key 'nope'"):
        load_config(CONFIGS[0], ["nope=1"])


def test_config_is_frozen() -> None:
    config = TrainConfig(mix="m")
    with pytest.raises(AttributeError):
        config.lora_r = 3  # type: ignore[misc]
    assert config.replace(lora_r=4).lora_r == 4
    assert config.effective_batch == 4


def test_docs_reference_every_field() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    missing = [name for name, doc in field_docs().items() if f"| `{name}` |" not in page]
    assert not missing, f"docs/training.md lacks {missing}"
