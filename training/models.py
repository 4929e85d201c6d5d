"""Model loading: 4-bit (bitsandbytes nf4) base + LoRA (peft) for training and inference.

Base models are local folders or the alias `smollm2` (prepared once from the shipped GGUF by
`curation.models`); nothing is downloaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from curation.errors import one_line
from training.config import TrainConfig
from training.errors import TrainingError

# On CPUs with AVX-512 bf16, bitsandbytes warns at import that it could not fetch a faster
# 4-bit kernel from the Hugging Face hub (the `kernels` package, a download); it then uses the
# kernel it ships. Nothing a user could act on offline, so only its errors are shown.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

SMOLLM2 = "smollm2"


def check_base_model(name_or_path: str) -> None:
    """Fail fast (before anything is loaded) on a base model that cannot exist.

    Raises:
        TrainingError: not the alias `smollm2` and not a folder with a `config.json`.
    """
    if name_or_path == SMOLLM2:
        return
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise TrainingError(
            f"config key base_model: {name_or_path!r} is not an existing folder (give the alias "
            f"`{SMOLLM2}` or a local Hugging Face model folder; nothing is downloaded)"
        )
    if not (path / "config.json").is_file():
        raise TrainingError(
            f"config key base_model: {path} has no config.json (not a Hugging Face model folder)"
        )


def resolve_base(name_or_path: str) -> Path:
    """The local folder of a base model (`smollm2` is prepared on first use)."""
    from curation import CurationError
    from curation.models import resolve_model

    check_base_model(name_or_path)
    try:
        return resolve_model(name_or_path)
    except CurationError as e:
        raise TrainingError(f"base model {name_or_path!r}: {e}") from None


def pick_device(device: str) -> str:
    """`auto` → cuda when available, else cpu; `cuda` without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("config key device: cuda asked for but no GPU is visible")
    return device


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer of a model folder, with a pad token (eos when the model has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError) as e:
        raise TrainingError(f"tokenizer in {folder}: {one_line(e)}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(
    quant_type: str = "nf4",
    double_quant: bool = True,
    compute_dtype: str = "bfloat16",
    quant_storage: str | None = None,
) -> Any:
    """A bitsandbytes 4-bit config.

    Args:
        quant_type: `nf4` or `fp4`.
        double_quant: quantize the quantization constants too.
        compute_dtype: the dtype the 4-bit layers compute in.
        quant_storage: the dtype the packed 4-bit weights are stored as (default uint8).
            FSDP shards only parameters of one float dtype, so an FSDP run stores them as
            its compute dtype (`bnb_4bit_quant_storage`, as peft's FSDP+QLoRA guide does).
    """
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant_type,
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
        bnb_4bit_quant_storage=getattr(torch, quant_storage or "uint8"),
    )


def _load_base(
    folder: Path,
    load_in_4bit: bool,
    device: str,
    config: TrainConfig | None,
    dtype: str,
    quant_type: str = "nf4",
    double_quant: bool = True,
) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dtype_name = config.bnb_4bit_compute_dtype if config else dtype
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype_name), "device_map": device}
    if load_in_4bit:
        kwargs["quantization_config"] = (
            quantization_config(
                config.bnb_4bit_quant_type,
                config.bnb_4bit_use_double_quant,
                config.bnb_4bit_compute_dtype,
                config.bnb_4bit_compute_dtype if config.fsdp else None,
            )
            if config
            else quantization_config(quant_type, double_quant, dtype)
        )
    try:
        return AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except (OSError, ValueError) as e:
        raise TrainingError(f"base model {folder}: {one_line(e)}") from e


def keep_cpu_weights_trainable(model: Any) -> int:
    """Stop bitsandbytes repacking 4-bit weights for its CPU inference kernel.

    On a CPU with AVX-512 bf16, `Linear4bit.forward` in eval mode without grad (a mid-run
    evaluation) repacks the weight in place for `gemv_4bit`, which has no autograd: training
    after it runs silently wrong (LoRA gradients off by ~100%). With the flag off, eval
    forwards take the same dequantize-and-matmul path as training, so evaluating leaves
    training bit-identical.

    Returns:
        The 4-bit layers changed.
    """
    changed = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed


def load_for_training(config: TrainConfig) -> tuple[Any, Any]:
    """Load the base model (4-bit when configured) with fresh LoRA adapters, and its tokenizer.

    Returns:
        `(peft_model, tokenizer)`; only the LoRA weights are trainable.

    Raises:
        TrainingError: missing model folder, or `target_modules` absent from the model.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    folder = resolve_base(config.base_model)
    device = pick_device(config.device)
    if device == "cuda":  # under a launcher each rank trains on its own GPU
        import os

        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    tokenizer = load_tokenizer(folder)
    model = _load_base(folder, config.load_in_4bit, device, config, config.bnb_4bit_compute_dtype)
    if config.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        keep_cpu_weights_trainable(model)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in config.target_modules if m not in names]
    if missing:
        linear = sorted(n for n in names if n.endswith("proj"))
        raise TrainingError(
            f"config key target_modules: {', '.join(missing)} not in {config.base_model} "
            f"(its projections: {', '.join(linear) or 'none'})"
        )
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    from training.packing import no_kv_cache

    return no_kv_cache(get_peft_model(model, lora)), tokenizer


def load_for_inference(
    base: str,
    adapter: str | Path | None = None,
    load_in_4bit: bool = False,
    device: str = "auto",
    dtype: str | None = None,
    quant_type: str = "nf4",
    double_quant: bool = True,
) -> tuple[Any, Any]:
    """Load a base model (optionally 4-bit) with an optional trained LoRA adapter, for generation.

    Args:
        base: `smollm2` or a local model folder.
        adapter: a folder written by `train` (`<run>/adapter`), or None for the base model.
        load_in_4bit: quantize the base as in training (nf4); plain bf16 otherwise.
        device: auto, cpu or cuda.
        dtype: bfloat16, float16 or float32 (with 4-bit: the compute dtype); default bfloat16
            on a GPU, float32 on a CPU.
        quant_type: with 4-bit, `nf4` or `fp4`, as the run trained.
        double_quant: with 4-bit, whether the quantization constants are quantized too.

    Returns:
        `(model, tokenizer)` with the model in eval mode.

    Raises:
        TrainingError: missing model or adapter folder.
    """
    folder = resolve_base(base)
    tokenizer = load_tokenizer(folder)
    where = pick_device(device)
    model = _load_base(
        folder,
        load_in_4bit,
        where,
        None,
        dtype or ("bfloat16" if where == "cuda" else "float32"),
        quant_type,
        double_quant,
    )
    if load_in_4bit:
        _as_trained(model)
    if adapter is not None:
        from peft import PeftModel

        path = Path(adapter)
        if not (path / "adapter_config.json").is_file():
            raise TrainingError(f"adapter {path}: no adapter_config.json (not a LoRA adapter)")
        model = PeftModel.from_pretrained(model, path)
    model.eval()
    return model, tokenizer


def _as_trained(model: Any) -> None:
    """Cast the 16-bit parameters that are not 4-bit weights to float32.

    As `prepare_model_for_kbit_training` does for training (norms, embeddings, head).
    """
    import torch

    for param in model.parameters():
        half = param.dtype in (torch.float16, torch.bfloat16)
        if half and param.__class__.__name__ != "Params4bit":
            param.data = param.data.to(torch.float32)


def adapter_run_config(adapter: str | Path) -> dict[str, Any] | None:
    """The config an adapter was trained with: its run folder's `run.json` (a `RunRecord`).

    Returns None when the adapter has no `run.json` beside it (a folder from elsewhere).

    Raises:
        TrainingError: the `run.json` is there but malformed (file and field named).
    """
    from training.run_record import RunRecord

    folder = Path(adapter).parent
    if not (folder / "run.json").is_file():
        return None
    return RunRecord.from_file(folder).config


def adapter_base(adapter: str | Path) -> str:
    """The base model an adapter was trained on, as recorded in its run.json."""
    config = adapter_run_config(adapter)
    if config is None:
        raise TrainingError(f"adapter {adapter}: no run.json beside it; give the base model")
    if not config.get("base_model"):
        raise TrainingError(f"adapter {adapter}: its run.json names no base_model; give it")
    return str(config["base_model"])


def generate(
    model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int
) -> str:
    """Greedy chat completion of `messages` with the tokenizer's chat template.

    The one greedy generate of `curation.generate`, for a single chat.
    """
    from curation.generate import greedy_generate

    return greedy_generate(model, tokenizer, [messages], max_new_tokens=max_new_tokens)[0]
