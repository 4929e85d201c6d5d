"""The trl side of a run: its `SFTConfig`, its trainer, and its metrics read from the log history.

Data preparation is ours (tokenized, masked, in mix order, sharded by rank), so the config
switches trl's and accelerate's off.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.config import TrainConfig

if TYPE_CHECKING:
    from training.callbacks import ProgressCallback


def sft_config(config: TrainConfig, output_dir: Path, max_steps: int, evaluate: bool) -> Any:
    """The trl `SFTConfig` for a run (data preparation is ours: tokenized, masked, in order)."""
    from trl import SFTConfig

    from training.distributed import fsdp_arguments
    from training.models import pick_device

    device = pick_device(config.device)
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_steps,
        optim=config.optim,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if evaluate and config.eval_steps else "no",
        eval_steps=config.eval_steps or None,
        seed=config.seed,
        max_length=config.max_length,
        packing=False,
        completion_only_loss=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        ignore_data_skip=True,
        use_cpu=device == "cpu",
        bf16=device == "cuda" and config.bnb_4bit_compute_dtype == "bfloat16",
        fp16=device == "cuda" and config.bnb_4bit_compute_dtype == "float16",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        log_level="error",
        # Each rank reads its own items (`training.distributed`); nothing is dispatched.
        accelerator_config={"dispatch_batches": False, "split_batches": False},
        # Every LoRA weight gets a gradient at every step: DDP need not search for unused ones.
        ddp_find_unused_parameters=False,
        **fsdp_arguments(config),
    )


def sharded_trainer_class() -> Any:
    """The `SFTTrainer` of trl, taking the training items as each rank's stream yields them.

    Our stream already holds only this rank's items; accelerate would wrap an iterable
    dataset in `IterableDatasetShard` and keep one micro-batch in W of them, so that wrapper
    is made a passthrough (as transformers does for its rank-aware samplers).
    """
    from accelerate.data_loader import IterableDatasetShard
    from trl import SFTTrainer

    class ShardedSFTTrainer(SFTTrainer):  # type: ignore[misc]
        def get_train_dataloader(self) -> Any:
            loader = super().get_train_dataloader()
            shard = getattr(loader, "dataset", None)
            if isinstance(shard, IterableDatasetShard):
                shard.num_processes = 1
                shard.process_index = 0
            return loader

    return ShardedSFTTrainer


def loss_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trainer's log entries with a train or eval loss, cut to the keys a run keeps."""
    keys = ("step", "epoch", "loss", "eval_loss", "learning_rate")
    return [
        {k: v for k, v in h.items() if k in keys}
        for h in log_history
        if "loss" in h or "eval_loss" in h
    ]


def run_metrics(
    history: list[dict[str, Any]], final_eval: dict[str, Any], bar: ProgressCallback, steps: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metrics and best metrics of a run.

    Args:
        history: The trainer's log history (dicts with `loss` and/or `eval_loss`).
        final_eval: The evaluation after the last step (`{}` when none ran).
        bar: The progress callback that counted tokens and time.
        steps: Optimizer steps run.

    Returns:
        `(metrics, best)`: the last losses with steps, tokens and throughput; the lowest
        losses.
    """
    train_losses = [h["loss"] for h in history if "loss" in h]
    eval_losses = [h["eval_loss"] for h in history if "eval_loss" in h]
    if "eval_loss" in final_eval:
        eval_losses.append(final_eval["eval_loss"])
    metrics: dict[str, Any] = {
        "steps": steps,
        "tokens": bar.tokens,
        "tokens_per_s": bar.tokens_per_s,
        "train_seconds": bar.seconds,
    }
    best: dict[str, Any] = {}
    if train_losses:
        metrics["train_loss"] = train_losses[-1]
        best["train_loss"] = min(train_losses)
    if eval_losses:
        metrics["eval_loss"] = eval_losses[-1]
        best["eval_loss"] = min(eval_losses)
    return metrics, best
