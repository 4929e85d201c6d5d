"""`fsdp: true`: FSDP2 arguments reach the trainer; where it cannot shard, one line at start-up.

FSDP needs GPUs: accelerate enables it only for multi-GPU launches, and on CPUs (gloo) it
would drop the plugin and train DDP. So on this machine `mixlake train` refuses `fsdp` before
any model is loaded, under torchrun too, and writes nothing; what a GPU launch would pass to
trl's `SFTConfig` is checked here through the real `SFTConfig` and accelerate's plugin.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from curation.testing import make_lake
from queries import materialize_mix, parse_spec
from training import TrainingError, list_runs, load_config, train
from training.config import TrainConfig
from training.distributed import Ranks, check_fsdp, check_resume_batch, fsdp_arguments
from training.sft import sft_config
from training.testing import make_tiny_llama, texts_of, toy_chat_rows, toy_spec

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "training" / "configs" / "tiny-ddp.yaml"
ON_CPU = r"config key fsdp: FSDP needs GPUs \(device: cuda\)"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("fsdp")
    rows = toy_chat_rows(12)
    model = make_tiny_llama(root / "model", texts_of(rows))
    lake = make_lake(root, {"toy": rows})
    materialize_mix(lake, parse_spec(toy_spec(rows=12)))
    sets = {"base_model": str(model), "mix": "toy", "data_file": None}
    return {"root": root, "lake": lake, "sets": sets}


def gpu_config(**changes: Any) -> TrainConfig:
    return TrainConfig(**{"data_file": "mix.jsonl", "device": "cuda", "fsdp": True, **changes})


def test_the_config_takes_fsdp_and_refuses_it_on_cpu(tmp_path: Path) -> None:
    config = gpu_config()
    again = tmp_path / "again.yaml"
    again.write_text(config.to_yaml())
    assert load_config(again) == config and load_config(again).fsdp is True
    assert load_config(CONFIG).fsdp is False
    with pytest.raises(TrainingError, match=ON_CPU):
        load_config(CONFIG, {"fsdp": True})
    with pytest.raises(TrainingError, match=r"fsdp: expected bool"):
        load_config(CONFIG, {"fsdp": "yes", "device": "cuda"})


def test_startup_refuses_what_would_not_shard() -> None:
    two = Ranks(rank=0, world_size=2, local_rank=0)
    check_fsdp(gpu_config(), two, "cuda")  # 2 GPU ranks: fine
    check_fsdp(gpu_config(fsdp=False), Ranks(), "cpu")  # DDP or one process: not concerned
    with pytest.raises(TrainingError, match=ON_CPU):
        check_fsdp(gpu_config(device="auto"), two, "cpu")  # `auto` found no GPU
    with pytest.raises(TrainingError, match=r"this is one process; launch with torchrun"):
        check_fsdp(gpu_config(), Ranks(), "cuda")


def test_a_resume_keeps_fsdp_as_the_run_had_it() -> None:
    previous = {"run_id": "r1", "world_size": 2, "config": gpu_config().to_dict()}
    check_resume_batch(previous, 2, gpu_config())
    with pytest.raises(TrainingError, match=r"run r1 trained with fsdp: true, .* fsdp: false"):
        check_resume_batch(previous, 2, gpu_config(fsdp=False))
    older = {"run_id": "r0", "world_size": 1, "config": {}}  # before the key existed: DDP
    with pytest.raises(TrainingError, match=r"run r0 trained with fsdp: false"):
        check_resume_batch(older, 1, gpu_config())


def test_fsdp_arguments_give_trl_and_accelerate_an_fsdp2_plugin(tmp_path: Path) -> None:
    from accelerate.utils import FullyShardedDataParallelPlugin

    assert fsdp_arguments(gpu_config(fsdp=False)) == {}
    config = TrainConfig(data_file="mix.jsonl", device="auto")  # sft_config resolves the device
    base = sft_config(config, tmp_path, 4, False)
    args = dataclasses.replace(base, **fsdp_arguments(gpu_config()))  # what sft_config adds
    assert args.fsdp is True
    assert args.fsdp_plugin_args == {
        "fsdp_version": 2,
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "cpu_ram_efficient_loading": False,
        "state_dict_type": "FULL_STATE_DICT",
        "reshard_after_forward": True,
    }
    plugin = FullyShardedDataParallelPlugin(**args.fsdp_plugin_args)
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert "FULL_STATE_DICT" in str(plugin.state_dict_type)
    # the rest of the run's arguments are untouched
    assert (args.max_steps, args.accelerator_config.dispatch_batches) == (4, False)


def test_the_trainer_gets_the_fsdp_arguments(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `_fit` hands trl when the start-up check lets `fsdp` through (on GPUs)."""
    import training.sft
    import training.trainer

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def capture() -> Any:
        def make(**kwargs: Any) -> Any:
            seen["args"] = kwargs["args"]
            raise Stop

        return make

    monkeypatch.setattr(training.trainer, "check_fsdp", lambda *a: None)
    monkeypatch.setattr(training.sft, "sharded_trainer_class", capture)
    config = load_config(CONFIG, {**world["sets"], "device": "auto", "fsdp": True})
    with pytest.raises(Stop):
        train(config.replace(output_dir=str(world["root"] / "wired")), world["lake"])
    args = seen["args"]
    assert args.fsdp is True and args.fsdp_plugin_args["fsdp_version"] == 2
    assert args.per_device_train_batch_size == 2 and args.save_steps == 2


@pytest.mark.parametrize("launcher", ["one process", "torchrun"])
def test_cli_refuses_fsdp_on_cpus_in_one_line_and_writes_nothing(
    world: dict[str, Any], launcher: str
) -> None:
    out = world["root"] / f"cli-{launcher.replace(' ', '-')}"
    sets = {**world["sets"], "output_dir": out, "device": "auto", "fsdp": "true"}
    prefix = [sys.executable, "-m"]
    if launcher == "torchrun":
        prefix += ["torch.distributed.run", "--nproc-per-node", "2", "--standalone", "-m"]
    command = [
        *prefix,
        "mixlake",
        "train",
        str(CONFIG),
        "--lake",
        world["lake"].uri,
        *[x for k, v in sets.items() for x in ("--set", f"{k}={'null' if v is None else v}")],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    runs = len(list_runs(world["lake"]))
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    text = done.stdout + done.stderr
    errors = [line for line in text.splitlines() if "FSDP needs GPUs (device: cuda)" in line]
    assert not re.search(rf'File "{ROOT}/(?!\.venv)', text), text  # no trace from our code
    if launcher == "one process":
        assert done.returncode == 2 and "Traceback" not in text, text
        assert len(errors) == 1, text
    else:  # each rank printed its one line and exited 2; torchrun reports the failed ranks
        assert done.returncode != 0 and len(errors) == 2, text
        # the first rank to exit 2 makes torchrun stop the other (SIGTERM, -15) unless it has
        # exited 2 already: either way nothing failed for another reason
        codes = re.findall(r"exitcode\s+:\s*(-?\d+)", text)
        assert "2" in codes and set(codes) <= {"2", "-15"}, text
    assert not out.exists()  # refused before the run folder
    assert len(list_runs(world["lake"])) == runs


def test_an_fsdp_run_stores_its_4bit_weights_in_the_compute_dtype(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """FSDP shards parameters of one float dtype: the packed 4-bit base must be stored so."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.models import _load_base

    seen: list[Any] = []
    monkeypatch.setattr(
        AutoModelForCausalLM, "from_pretrained", lambda folder, **kw: seen.append(kw)
    )
    _load_base(tmp_path, True, "cpu", gpu_config(), "bfloat16")
    _load_base(tmp_path, True, "cpu", gpu_config(fsdp=False), "bfloat16")
    fsdp, ddp = (kw["quantization_config"] for kw in seen)
    assert fsdp.bnb_4bit_quant_storage == torch.bfloat16 == fsdp.bnb_4bit_compute_dtype
    assert ddp.bnb_4bit_quant_storage == torch.uint8  # bitsandbytes' default, as before
