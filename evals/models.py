"""Loading the model of an eval target, through training's model loading (base + LoRA adapter).

A target with `quantization` (a run, by default) is loaded as it was trained: the 4-bit base
(the run's quant type, double quantization and compute dtype) with its adapter, on the run's
device. A full-precision target is cast to float32 on a CPU: bf16 matmuls are slower than fp32
on most CPUs.
"""

from __future__ import annotations

import warnings
from typing import Any

from evals.errors import EvalError
from evals.targets import Target
from training.errors import TrainingError


def load_model(target: Target, device: str = "auto") -> tuple[Any, Any]:
    """Load `(model, tokenizer)` for a target, in eval mode, with a pad token.

    Raises:
        EvalError: the base model or the run's adapter cannot be loaded.
    """
    from transformers.utils import logging as hf_logging

    from training.models import load_for_inference

    # our own progress bar counts rows; transformers' per-tensor loading bar is noise here
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft probes deprecated HF attributes
            q = target.quantization
            if q:
                model, tokenizer = load_for_inference(
                    target.base,
                    adapter=target.adapter,
                    load_in_4bit=True,
                    device=q["device"] if device == "auto" else device,
                    dtype=q["compute_dtype"],
                    quant_type=q["quant_type"],
                    double_quant=q["double_quant"],
                )
            else:
                model, tokenizer = load_for_inference(
                    target.base, adapter=target.adapter, load_in_4bit=False, device=device
                )
    except TrainingError as e:
        raise EvalError(f"eval target {target.label}: {e}") from None
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    if _device_type(model) == "cpu" and not target.quantization:
        model = model.float()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer


def _device_type(model: Any) -> str:
    try:
        return str(next(model.parameters()).device.type)
    except (StopIteration, AttributeError):
        return "cpu"
