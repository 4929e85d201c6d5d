"""The training config: a frozen dataclass, 1:1 with its YAML, checked on construction.

Each field carries its own docstring (the string right below it); `field_docs()` reads them
back for error messages and the config reference in docs/training.md.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from training.errors import TrainingError

QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = ("bfloat16", "float16", "float32")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts")
OPTIMIZERS = (
    "paged_adamw_32bit",
    "paged_adamw_8bit",
    "adamw_torch",
    "adamw_8bit",
    "adafactor",
    "sgd",
)
SPLITS = ("train", "val", "test")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
FSDP_ON_CPU = (
    "config key fsdp: FSDP needs GPUs (device: cuda); accelerate shards only multi-GPU "
    "launches and would train DDP on CPUs (gloo): drop fsdp, DDP is what runs there"
)


@dataclass(frozen=True)
class TrainConfig:
    """A QLoRA fine-tuning run over a materialized mix (or an exported mix file)."""

    base_model: str = "smollm2"
    """A local Hugging Face model folder, or the alias `smollm2` (the shipped SmolLM2-135M)."""

    mix: str | None = None
    """Name of a materialized mix in the lake (give this or `data_file`)."""

    mix_version: int | None = None
    """Version of the mix to train on; latest when empty."""

    data_file: str | None = None
    """An exported mix JSONL (`mixlake mix export`), used instead of the lake (e.g. on a GPU box)."""

    split: str = "train"
    """The mix split to train on."""

    eval_split: str | None = "val"
    """The mix split evaluated every `eval_steps` (empty to skip; skipped when it has no rows)."""

    eval_rows: int = 64
    """Rows of `eval_split` evaluated (the first ones in mix order)."""

    load_in_4bit: bool = True
    """Quantize the base model's linear layers to 4 bits with bitsandbytes (QLoRA)."""

    bnb_4bit_quant_type: str = "nf4"
    """4-bit data type: `nf4` (QLoRA's NormalFloat) or `fp4`."""

    bnb_4bit_use_double_quant: bool = True
    """Quantize the quantization constants too (saves ~0.4 bits per parameter)."""

    bnb_4bit_compute_dtype: str = "bfloat16"
    """Dtype the model computes in: bfloat16, float16 or float32 (use float32 on CPUs without
    bf16 instructions: bf16 matmuls there are ~50x slower)."""

    lora_r: int = 16
    """LoRA rank."""

    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""

    lora_dropout: float = 0.05
    """Dropout on the LoRA input, in [0, 1)."""

    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    """Module names that get LoRA adapters."""

    optim: str = "paged_adamw_32bit"
    """Optimizer name, as transformers knows it."""

    learning_rate: float = 2e-4
    """Peak learning rate."""

    lr_scheduler_type: str = "cosine"
    """Learning-rate schedule after warmup."""

    warmup_steps: int = 0
    """Optimizer steps of linear warmup from 0 to `learning_rate`."""

    num_train_epochs: int = 1
    """Passes over the split (each epoch after the first is reshuffled from the mix seed)."""

    max_steps: int = -1
    """Stop after this many optimizer steps (overrides `num_train_epochs` when > 0)."""

    per_device_train_batch_size: int = 4
    """Examples (or packed sequences) per micro-batch."""

    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step."""

    max_length: int = 512
    """Tokens per example (longer ones are truncated; a row left with no loss token is not trained) or per packed sequence."""

    packing: bool = False
    """Concatenate consecutive examples into sequences of up to `max_length` tokens (each keeps its own positions and attention)."""

    completion_only_loss: bool = True
    """Loss on assistant replies (and their end token) / completions only; chats without an assistant turn are left out, counted. All tokens for plain-text rows."""

    eval_steps: int = 0
    """Evaluate on `eval_split` every N optimizer steps (0: only at the end)."""

    logging_steps: int = 5
    """Record the training loss every N optimizer steps."""

    save_steps: int = 50
    """Write a checkpoint every N optimizer steps (used by `--resume`)."""

    seed: int = 42
    """Seed of the LoRA initialisation and dropout (the data order comes from the mix seed)."""

    output_dir: str = "runs"
    """Folder that receives one sub-folder per run (checkpoints, adapter, run.json)."""

    device: str = "auto"
    """auto (cuda when available), cpu or cuda."""

    cpu_threads: int = 0
    """Torch CPU threads (0: torch's default). 1 is much faster on a busy shared machine, where
    two threads spin waiting for each other."""

    fsdp: bool = False
    """Under torchrun / accelerate launch on GPUs, shard the LoRA weights, their gradients and
    optimizer state and the unquantized weights across ranks with FSDP2 (`fully_shard` per
    decoder layer) instead of DDP. GPUs only: on CPUs accelerate would silently train DDP."""

    def __post_init__(self) -> None:
        """Normalise `target_modules` and check the values (a `TrainingError` names the key)."""
        if isinstance(self.target_modules, list | str):
            mods = (
                [self.target_modules]
                if isinstance(self.target_modules, str)
                else self.target_modules
            )
            object.__setattr__(self, "target_modules", tuple(mods))
        _check_types(self)
        if (self.mix is None) == (self.data_file is None):
            raise TrainingError("config: give exactly one of `mix` (a lake mix) or `data_file`")
        _choice("split", self.split, SPLITS)
        if self.eval_split is not None:
            _choice("eval_split", self.eval_split, SPLITS)
        _choice("bnb_4bit_quant_type", self.bnb_4bit_quant_type, QUANT_TYPES)
        _choice("bnb_4bit_compute_dtype", self.bnb_4bit_compute_dtype, COMPUTE_DTYPES)
        _choice("optim", self.optim, OPTIMIZERS)
        _choice("lr_scheduler_type", self.lr_scheduler_type, SCHEDULERS)
        _choice("device", self.device, DEVICES)
        for key in ("lora_r", "lora_alpha", "per_device_train_batch_size", "max_length"):
            _positive(key, getattr(self, key))
        for key in ("gradient_accumulation_steps", "num_train_epochs", "logging_steps"):
            _positive(key, getattr(self, key))
        _positive("save_steps", self.save_steps)
        _positive("eval_rows", self.eval_rows)
        for key in ("warmup_steps", "eval_steps", "cpu_threads"):
            if getattr(self, key) < 0:
                raise TrainingError(f"config key {key}: must be >= 0, got {getattr(self, key)}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise TrainingError(f"config key max_steps: must be > 0 or -1, got {self.max_steps}")
        if not 0 <= self.lora_dropout < 1:
            raise TrainingError(
                f"config key lora_dropout: must be in [0, 1), got {self.lora_dropout}"
            )
        if not self.learning_rate > 0:
            raise TrainingError(f"config key learning_rate: must be > 0, got {self.learning_rate}")
        if not self.target_modules:
            raise TrainingError("config key target_modules: give at least one module name")
        if self.mix_version is not None and self.mix is None:
            raise TrainingError("config key mix_version: only with `mix`")
        if self.fsdp and self.device == "cpu":
            raise TrainingError(FSDP_ON_CPU)

    @property
    def effective_batch(self) -> int:
        """Examples (or packed sequences) per optimizer step."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps

    def to_dict(self) -> dict[str, Any]:
        """The config as plain YAML-able values."""
        out = dataclasses.asdict(self)
        out["target_modules"] = list(self.target_modules)
        return out

    def to_yaml(self) -> str:
        """The config as YAML (loads back into an equal config)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def load_config(
    path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> TrainConfig:
    """Load a config from YAML, then apply `key=value` overrides (values parsed as YAML).

    Args:
        path: a YAML file; None starts from the defaults.
        overrides: `["key=value", …]` (as `--set` gives them) or a dict.

    Raises:
        TrainingError: unreadable file, unknown key (naming the file and the allowed keys) or a
            bad value (naming the key and what is allowed).
    """
    where = str(path) if path is not None else "--set"
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise TrainingError(f"config file {p} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise TrainingError(f"{p}: not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise TrainingError(f"{p}: the config must be a mapping of key: value")
        values.update(loaded or {})
    for key, value in _parse_overrides(overrides).items():
        values[key] = value
    allowed = [f.name for f in fields(TrainConfig)]
    unknown = sorted(k for k in values if k not in allowed)
    if unknown:
        raise TrainingError(
            f"{where}: unknown config key {unknown[0]!r}; allowed keys: {', '.join(allowed)}"
        )
    try:
        return TrainConfig(**values)
    except TrainingError as e:
        raise TrainingError(f"{where}: {e}") from None


def _parse_overrides(overrides: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise TrainingError(f"--set {item!r}: use key=value, e.g. --set max_steps=20")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return out


@cache
def field_docs() -> dict[str, str]:
    """Field name → its docstring, read from this module's source."""
    source = textwrap.dedent(inspect.getsource(TrainConfig))
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    docs: dict[str, str] = {}
    previous: str | None = None
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            previous = node.target.id
        elif (
            previous
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docs[previous] = node.value.value.strip()
            previous = None
    return docs


_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (float, int),
    "str": (str,),
}


def _check_types(config: TrainConfig) -> None:
    for f in fields(config):
        value = getattr(config, f.name)
        declared = str(f.type)
        optional = "None" in declared
        if value is None:
            if not optional:
                raise TrainingError(f"config key {f.name}: a value is required")
            continue
        if declared.startswith("tuple"):
            if not all(isinstance(v, str) for v in value):
                raise TrainingError(f"config key {f.name}: must be a list of module names")
            continue
        base = declared.split("|")[0].strip()
        kinds = _TYPES.get(base)
        if kinds is None:
            continue
        ok = isinstance(value, kinds) and not (base != "bool" and isinstance(value, bool))
        if not ok:
            raise TrainingError(
                f"config key {f.name}: expected {base}, got {value!r} ({type(value).__name__})"
                f" — {field_docs().get(f.name, '')}"
            )


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise TrainingError(
            f"config key {key}: {value!r} is not allowed; use one of {', '.join(allowed)}"
        )


def _positive(key: str, value: int) -> None:
    if value <= 0:
        raise TrainingError(f"config key {key}: must be > 0, got {value}")
