"""Training across processes (`torchrun` / `accelerate launch`): ranks, the data shard, gathers.

A run under a launcher is data-parallel (DDP): every rank holds the whole model and trains
its share of each global batch. The data order is a function of the mix, its seed and the
epoch only (`training.data.epoch_order`): the run reads one global sequence of items, and
optimizer step s consumes items `[(s-1)·N, s·N)` with `N = world_size × micro_batch ×
gradient_accumulation` whatever the world size, so a run resumed with another world size
(and the same N) continues the very same sequence. Inside a step, micro-batch m (0-based over
the run) is the items `[m·W·B, (m+1)·W·B)`; rank r takes the r-th block of B of them
(`rank_of_item`). Each rank reads and tokenizes only its own items (with packing, every rank
packs the whole epoch to find the item boundaries, then keeps its own).

Only rank 0 writes: to the lake (the `runs` row, exposures, the loss column, pins) and to
the run folder (`run.json`, ledger files, losses; the trainer saves checkpoints from rank 0
too). The other ranks send it their exposures and per-row losses with
`torch.distributed.gather_object` at every checkpoint and at the end (gloo on CPUs, NCCL on
GPUs), so nothing depends on a filesystem shared between nodes except what the trainer's own
checkpoints need for `--resume`.

With `fsdp: true` (GPUs only) the same sharding of the data holds; the trainer wraps the
model in FSDP2 instead of DDP (`fsdp_arguments`), so each rank keeps only its shard of the
LoRA weights, their gradients and optimizer state, and of every unquantized weight.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

from training.config import FSDP_ON_CPU, TrainConfig
from training.errors import TrainingError

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place in the launch."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1


def ranks_from_env() -> Ranks:
    """The ranks `torchrun` / `accelerate launch` set (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`).

    Raises:
        TrainingError: values that are not a consistent rank assignment.
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise TrainingError(
            "RANK / WORLD_SIZE / LOCAL_RANK are not integers; launch with torchrun or "
            "accelerate launch"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise TrainingError(f"RANK={rank} WORLD_SIZE={world}: not a rank of the launch")
    return Ranks(rank, world, local)


def setup(device: str) -> Ranks:
    """Join the launch's process group (when there is one) and return this process's ranks.

    The group is accelerate's (`PartialState`), the same the trainer then uses: gloo on CPUs
    (`device: cpu`), NCCL on GPUs.
    """
    ranks = ranks_from_env()
    if ranks.distributed:
        from accelerate import PartialState

        PartialState(cpu=device == "cpu")
    return ranks


def broadcast(value: T, ranks: Ranks) -> T:
    """Rank 0's `value` on every rank."""
    if not ranks.distributed:
        return value
    import torch.distributed as dist

    box: list[Any] = [value if ranks.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]


def gather(value: T, ranks: Ranks) -> list[T]:
    """Every rank's `value`, in rank order, on rank 0 (an empty list on the others)."""
    if not ranks.distributed:
        return [value]
    import torch.distributed as dist

    out: list[Any] | None = [None] * ranks.world_size if ranks.is_main else None
    dist.gather_object(value, out, dst=0)
    return list(out) if out is not None else []


def all_agree(value: T, ranks: Ranks, what: str) -> None:
    """Fail on every rank when the ranks do not hold the same `value` (e.g. the run id).

    Raises:
        TrainingError: naming `what` and the values seen.
    """
    if not ranks.distributed:
        return
    import torch.distributed as dist

    seen: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(seen, value)
    if any(v != seen[0] for v in seen):
        raise TrainingError(f"the ranks disagree on {what}: {seen}")


def rank_of_item(index: int, micro_batch: int, world_size: int) -> int:
    """The rank that trains item `index` of the run's global sequence.

    Example:
        >>> [rank_of_item(i, 2, 2) for i in range(8)]
        [0, 0, 1, 1, 0, 0, 1, 1]
    """
    return (index // micro_batch) % world_size


def global_batch(world_size: int, micro_batch: int, accumulation: int) -> int:
    """Items per optimizer step over all ranks."""
    return world_size * micro_batch * accumulation


def check_resume_batch(previous: dict[str, Any], world_size: int, config: Any) -> None:
    """Refuse a resume whose global batch (its data would shift) or `fsdp` differs from the run's.

    Args:
        previous: the run's `run.json`.
        world_size: this launch's.
        config: this launch's `TrainConfig`.

    Raises:
        TrainingError: one line naming both global batches (or both `fsdp` values).
    """
    old = previous.get("config") or {}
    if bool(old.get("fsdp", False)) != config.fsdp:
        raise TrainingError(
            f"--resume: run {previous.get('run_id')} trained with fsdp: "
            f"{str(bool(old.get('fsdp', False))).lower()}, this launch has fsdp: "
            f"{str(config.fsdp).lower()}; its checkpoints load only the way they were saved, "
            "keep fsdp as it was"
        )
    old_world = int(previous.get("world_size") or 1)
    old_b = int(old.get("per_device_train_batch_size", config.per_device_train_batch_size))
    old_g = int(old.get("gradient_accumulation_steps", config.gradient_accumulation_steps))
    before = global_batch(old_world, old_b, old_g)
    now = global_batch(
        world_size, config.per_device_train_batch_size, config.gradient_accumulation_steps
    )
    if before != now:
        raise TrainingError(
            f"--resume: run {previous.get('run_id')} took {before} items per step "
            f"({old_world} ranks × {old_b} × {old_g} accumulation), this launch takes {now} "
            f"({world_size} × {config.per_device_train_batch_size} × "
            f"{config.gradient_accumulation_steps}); keep world size × "
            "per_device_train_batch_size × gradient_accumulation_steps the same"
        )


def check_fsdp(config: TrainConfig, ranks: Ranks, device: str) -> None:
    """Refuse, before anything is loaded, an `fsdp: true` launch that would not shard.

    Args:
        config: the run's configuration.
        ranks: this launch's.
        device: the device the run trains on (`models.pick_device`), cpu or cuda.

    Raises:
        TrainingError: FSDP on CPUs (accelerate enables it only for multi-GPU launches, so the
            trainer would run DDP instead), or on a single process (nothing to shard across).
    """
    if not config.fsdp:
        return
    if device != "cuda":
        raise TrainingError(FSDP_ON_CPU)
    if not ranks.distributed:
        raise TrainingError(
            "config key fsdp: FSDP shards the model across ranks and this is one process; "
            "launch with torchrun --nproc-per-node N (one GPU each, N >= 2) or drop fsdp"
        )


def fsdp_arguments(config: TrainConfig) -> dict[str, Any]:
    """The `fsdp` / `fsdp_config` arguments of the run's `SFTConfig` (empty without `fsdp`).

    FSDP2 (`fully_shard`) wraps each decoder layer (the model's `_no_split_modules`) and the
    whole model. Checkpoints hold full state dicts (what a resume on another world size needs;
    not run here: FSDP needs GPUs, `check_fsdp`). An FSDP run stores the 4-bit weights in the
    compute dtype (`models.quantization_config`'s `quant_storage`), so they are sharded with
    the LoRA weights, norms, embeddings and head. `cpu_ram_efficient_loading` stays off: each
    rank loads the base on its own GPU (`models.load_for_training`), then `fully_shard` keeps
    its shard.
    """
    if not config.fsdp:
        return {}
    return {
        "fsdp": True,
        "fsdp_config": {
            "version": 2,
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "reshard_after_forward": True,
            "state_dict_type": "FULL_STATE_DICT",
            "cpu_ram_efficient_loading": False,
        },
    }
