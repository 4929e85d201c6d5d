"""Trainer callbacks: the progress bar (with tokens/s), the exposure ledger, per-row losses."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback

from curation.faults import crash_point
from training.data import TokenStream
from training.distributed import Ranks, gather
from training.run_folder import (
    LOSSES_FILE,
    RowLosses,
    final_epoch_losses,
    load_row_losses,
    save_row_losses,
)

__all__ = ["LOSSES_FILE", "LedgerCallback", "ProgressCallback", "StreamLedger", "loss_hook"]


class StreamLedger:
    """Maps the items the trainer consumed to optimizer steps, and collects per-row losses.

    Item i (counting from 0 over the whole run, all ranks together) belongs to optimizer step
    `i // items_per_step + 1`. The k-th training forward of rank r holds items
    `start + k·W·B + r·B … start + k·W·B + (r+1)·B − 1` (W ranks, micro-batch B).
    Per-row losses are recorded as `pending` and moved to rank 0's `losses` by `collect`.
    """

    def __init__(
        self,
        stream: TokenStream,
        items_per_step: int,
        micro_batch: int,
        ranks: Ranks | None = None,
    ) -> None:
        self.stream = stream
        self.items_per_step = items_per_step
        self.micro_batch = micro_batch
        self.ranks = ranks or Ranks()
        self.forwards = 0
        self.pruned_tokens = 0
        self.losses: RowLosses = {}
        """Every per-row loss of the run so far (complete on rank 0 after `collect`)."""
        self.pending: RowLosses = {}
        """Losses this rank recorded since the last `collect`."""

    def step_of(self, index: int) -> int:
        """The optimizer step (1-based) that consumes item `index`."""
        return index // self.items_per_step + 1

    def exposures(self, run_id: str, after_step: int, upto_step: int) -> pa.Table:
        """Exposure rows for steps in (after_step, upto_step], of every rank, on rank 0.

        A collective under a launcher: every rank calls it; rank 0 gets all ranks' rows in
        consumption order (the others get an empty table).
        """
        mine = []
        for item in sorted(self.stream.produced.values(), key=lambda i: i.index):
            step = self.step_of(item.index)
            if after_step < step <= upto_step:
                for j, m in enumerate(item.members):
                    mine.append((item.index, j, m.record_id, m.position, step, m.epoch))
        rows = sorted(
            (row, rank) for rank, part in enumerate(gather(mine, self.ranks)) for row in part
        )
        cols: dict[str, list[Any]] = {k: [] for k in ("record_id", "position", "step", "epoch")}
        for (_, _, record_id, position, step, epoch), _rank in rows:
            cols["record_id"].append(record_id)
            cols["position"].append(position)
            cols["step"].append(step)
            cols["epoch"].append(epoch)
        n = len(rows)
        ranks = pa.array([rank for _, rank in rows], pa.int32())
        return pa.table({"run_id": [run_id] * n, **cols, "rank": ranks})

    def collect(self) -> None:
        """Move every rank's pending losses into rank 0's `losses` (a collective)."""
        for part in gather(self.pending, self.ranks):
            for key, values in part.items():
                self.losses.setdefault(key, []).extend(values)
        self.pending = {}

    def tokens_upto(self, step: int) -> int:
        """Tokens in the items of steps up to `step` produced by this process."""
        return self.pruned_tokens + sum(
            len(i.input_ids) for i in self.stream.produced.values() if self.step_of(i.index) <= step
        )

    def prune(self, upto_step: int) -> None:
        """Forget items of steps up to `upto_step` (already written), keeping their token count."""
        produced = self.stream.produced
        for index in [i for i in produced if self.step_of(i) <= upto_step]:
            self.pruned_tokens += len(produced.pop(index).input_ids)

    def on_forward(self, log_probs: Any, label_mask: Any) -> None:
        """Record the per-row loss of one training micro-batch."""
        world, rank = self.ranks.world_size, self.ranks.rank
        first = self.stream.start_item + (self.forwards * world + rank) * self.micro_batch
        self.forwards += 1
        produced = self.stream.produced
        lp = log_probs.detach().float().cpu()
        mask = label_mask.detach().float().cpu()
        for row in range(lp.shape[0]):
            item = produced.get(first + row)
            if item is None:
                continue
            offset = 0
            for m in item.members:
                lo, hi = max(offset - 1, 0), max(offset + m.length - 1, 0)
                n = float(mask[row, lo:hi].sum())
                if n > 0:
                    loss = -float(lp[row, lo:hi].sum()) / n
                    self.pending.setdefault((m.epoch, m.record_id), []).append(loss)
                offset += m.length

    def final_epoch_losses(self, config: dict[str, Any] | None = None) -> dict[str, float]:
        """Mean loss per record id over its occurrences in the final epoch (rank 0)."""
        return final_epoch_losses(self.losses, config)

    def save_losses(self, folder: Path) -> None:
        """Persist the losses in the run folder (a resumed run keeps them); rank 0 only."""
        if self.ranks.is_main:
            save_row_losses(folder, self.losses)

    def load_losses(self, folder: Path) -> None:
        """Load losses saved by `save_losses`."""
        self.losses.update(load_row_losses(folder))


def loss_hook(ledger: StreamLedger) -> Callable[..., None]:
    """A forward hook feeding training forwards' per-token log-probs to the ledger."""

    def hook(module: Any, args: Any, kwargs: Any, output: Any) -> None:
        if module.training and getattr(output, "log_probs", None) is not None:
            ledger.on_forward(output.log_probs, output.label_mask)

    return hook


class LedgerCallback(TrainerCallback):
    """Writes exposures (and saves losses) at every checkpoint and at the end."""

    def __init__(
        self, ledger: StreamLedger, flush: Callable[[int, int], None], start_step: int
    ) -> None:
        self.ledger = ledger
        self.flush = flush
        self.written = start_step

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Checkpoint written: persist what the steps up to it consumed (every rank calls it)."""
        self.ledger.collect()
        self.flush(self.written, state.global_step)
        self.ledger.save_losses(Path(args.output_dir))
        self.written = state.global_step
        self.ledger.prune(state.global_step)
        if self.ledger.ranks.is_main:  # the checkpoint and its ledger are on disk and in the lake
            crash_point("train-checkpoint-saved")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Training finished: persist the rest (every rank calls it)."""
        self.ledger.collect()
        if state.global_step > self.written:
            self.flush(self.written, state.global_step)
            self.written = state.global_step
        self.ledger.save_losses(Path(args.output_dir))


class ProgressCallback(TrainerCallback):
    """A rich progress bar: step, loss, tokens/s."""

    def __init__(self, ledger: StreamLedger, start_step: int, enabled: bool = True) -> None:
        self.ledger = ledger
        self.start_step = start_step
        self.enabled = enabled
        self.progress: Progress | None = None
        self.task: Any = None
        self.t0 = 0.0
        self.tokens = 0
        self.loss: float | None = None
        self.tokens_per_s = 0.0
        self.seconds = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Open the bar."""
        self.t0 = time.perf_counter()
        if not self.enabled:
            return
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} · {task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "training", total=state.max_steps, completed=state.global_step, loss="-", tps="-"
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Advance the bar and update tokens/s."""
        self.tokens = self.ledger.tokens_upto(state.global_step)
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        self.seconds = elapsed
        self.tokens_per_s = self.tokens / elapsed
        if self.progress is not None:
            self.progress.update(
                self.task,
                completed=state.global_step,
                loss="-" if self.loss is None else f"{self.loss:.3f}",
                tps=f"{self.tokens_per_s:,.0f}",
            )

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        """Remember the latest loss."""
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the bar."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
