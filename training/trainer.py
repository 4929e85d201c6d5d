"""`train`: QLoRA (bitsandbytes 4-bit + peft LoRA) with trl's SFTTrainer over a streamed mix.

Everything that can be wrong with the config, the mix or the base model path is checked
before any model is loaded. The run is registered in `runs` when it starts and updated when
it ends; exposures are written at every checkpoint (to the run folder too when training from
an exported file); the per-row loss of the final epoch goes back to `records` as
`train_loss_<run_id>`. Without a lake, `training.run_import` brings a run in afterwards.

The run's folder (`run.json`, checkpoints, ledger files) is `training.run_folder`; the trl arguments and the
metrics read back from the log history are `training.sft`; the callbacks that map consumed
items to steps and rows are `training.callbacks`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation import Lake
from curation.codeversion import git_commit
from training.config import TrainConfig
from training.data import TokenStream, eval_examples
from training.distributed import (
    Ranks,
    all_agree,
    broadcast,
    check_fsdp,
    check_resume_batch,
    gather,
    global_batch,
    setup,
)
from training.errors import TrainingError
from training.models import check_base_model, load_for_training, pick_device, resolve_base
from training.run_folder import (
    ADAPTER,
    RUN_FILE,
    checkpoints,
    find_resumable,
    read_run_file,
    save_exposures,
    write_run_file,
)
from training.runs import Run, new_run_id, save_run, write_exposures, write_train_loss
from training.runs import exposures as read_exposures
from training.sft import loss_history, run_metrics, sft_config
from training.sources import ExampleSource, open_source

# Names this module has always offered (bench, scripts and older callers import them here).
__all__ = [
    "ADAPTER",
    "RUN_FILE",
    "RunResult",
    "check_source",
    "git_commit",
    "plan_steps",
    "sft_config",
    "train",
]


@dataclass(frozen=True)
class RunResult:
    """What `train` did."""

    run_id: str
    status: str
    steps: int
    run_dir: Path
    adapter_path: Path | None
    metrics: dict[str, Any]
    best_metrics: dict[str, Any]
    exposures: int
    train_loss_column: str | None
    resumed_from_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, Any] = field(default_factory=dict)
    """Rows of the split trained on, left out by reason, truncated (`RowReport.as_metrics`)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_source(source: ExampleSource, config: TrainConfig) -> int:
    """Fail on an empty split or rows that are not SFT examples; returns the split's rows."""
    n = len(source.ids(config.split))
    if n == 0:
        raise TrainingError(
            f"mix {source.info.mix!r} has no rows in split {config.split!r} ({source.info.origin})"
        )
    first = source.fetch(config.split, [0])[0]
    if "chosen" in first or "rejected" in first:
        raise TrainingError(
            f"mix {source.info.mix!r} is a preference mix (chosen/rejected); SFT needs chat, "
            "instruction or text rows"
        )
    if not (first.get("messages") or first.get("text") or first.get("completion")):
        raise TrainingError(
            f"mix {source.info.mix!r}: rows of split {config.split!r} have no messages, "
            "prompt/completion or text to train on"
        )
    return n


def plan_steps(
    config: TrainConfig, stream: TokenStream, batch: int | None = None
) -> tuple[int, int]:
    """(optimizer steps, items in all) for the config over this stream.

    Args:
        config: the run's configuration.
        stream: the training items.
        batch: items per optimizer step over all ranks (default: one process's,
            `config.effective_batch`).

    Every step takes a whole global batch, so the items in all are steps × batch (the last
    epoch's order runs on into the next one to fill the last step).
    """
    batch = batch or config.effective_batch
    if config.max_steps > 0:
        return config.max_steps, config.max_steps * batch
    total = stream.items_per_epoch() * config.num_train_epochs
    steps = max(1, math.ceil(total / batch))
    return steps, steps * batch


def train(
    config: TrainConfig, lake: Lake | None = None, resume: bool = False, progress: bool = True
) -> RunResult:
    """Fine-tune `config.base_model` with QLoRA on a mix (or an exported mix file).

    Args:
        config: the run's configuration.
        lake: the lake holding the mix (and receiving `runs`, `exposures` and the per-row
            loss column). Optional with `data_file`: then the run is only recorded in its folder.
        resume: continue the latest unfinished run under `output_dir` from its last checkpoint.
        progress: show a progress bar on stderr.

    Returns:
        The run's id, status, adapter folder and metrics.

    Raises:
        TrainingError: bad config, missing mix or base model, empty split, or nothing to resume.
    """
    ranks = setup(pick_device(config.device))
    check_fsdp(config, ranks, pick_device(config.device))
    check_base_model(config.base_model)
    source = open_source(config, lake)
    check_source(source, config)
    output_dir = Path(config.output_dir)
    start_step = 0
    if resume:
        run_dir, start_step = find_resumable(output_dir)
        record = read_run_file(run_dir)
        if record.source.checksum != source.info.checksum:
            raise TrainingError(
                f"--resume: run {record.run_id} trained on mix checksum "
                f"{record.source.checksum}, this config gives {source.info.checksum}"
            )
        check_resume_batch(record.to_dict(), ranks.world_size, config)
        run_id = record.run_id
        started = record.started_at
    else:
        run_id = broadcast(new_run_id(), ranks)
        run_dir = output_dir / run_id
        started = broadcast(_now(), ranks)
    all_agree((run_id, start_step), ranks, "the run and its checkpoint (is output_dir shared?)")
    batch = global_batch(
        ranks.world_size, config.per_device_train_batch_size, config.gradient_accumulation_steps
    )
    folder = resolve_base(config.base_model)
    from training.models import load_tokenizer

    tokenizer = load_tokenizer(folder)
    stream = TokenStream(
        source,
        config.split,
        tokenizer,
        config.max_length,
        config.packing,
        config.completion_only_loss,
        total_items=0,
        micro_batch=config.per_device_train_batch_size,
        rank=ranks.rank,
        world_size=ranks.world_size,
    )
    max_steps, total_items = plan_steps(config, stream, batch)
    stream.total_items = total_items
    stream.start_item = start_step * batch
    report = stream.report()
    if report.trained == 0:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(report.excluded.items()))
        raise TrainingError(
            f"mix {source.info.mix!r}, split {config.split!r}: none of its {report.rows} rows "
            f"carries a loss token ({reasons}); raise max_length or give rows with an "
            "assistant turn"
        )
    if ranks.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(
        run_id=run_id,
        mix=source.info.mix,
        mix_version=source.info.mix_version,
        mix_checksum=source.info.checksum,
        records_version=source.info.records_version,
        config=config.to_yaml(),
        git_commit=git_commit(),
        status="running",
        metrics={},
        best_metrics={},
        adapter_path=None,
        started_at=started,
        finished_at=None,
    )
    if ranks.is_main:
        write_run_file(run_dir, run, source, lake, ranks.world_size)
        if lake is not None:
            save_run(lake, run)
            if source.info.records_version is not None:
                lake.pin(f"run-{run_id}", int(source.info.records_version))
    previous = _interrupt_on_sigterm()
    fit = Fit(config, lake, source, stream, run, run_dir, max_steps, start_step, ranks, batch)
    try:
        result = _fit(fit, progress and ranks.is_main)
    except BaseException as e:
        if ranks.is_main:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            error = {"error": str(e)[:300]}
            failed = dataclasses.replace(run, status=status, finished_at=_now(), metrics=error)
            write_run_file(run_dir, failed, source, lake, ranks.world_size)
            if lake is not None:
                save_run(lake, failed)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return result


def _interrupt_on_sigterm() -> Any:
    """Treat SIGTERM (a killed job) like Ctrl-C, so the run is marked interrupted, not running."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


@dataclass(frozen=True)
class Fit:
    """Everything `_fit` needs about a run that is about to train."""

    config: TrainConfig
    lake: Lake | None
    source: ExampleSource
    stream: TokenStream
    run: Run
    run_dir: Path
    max_steps: int
    start_step: int
    ranks: Ranks
    batch: int
    """Items per optimizer step over all ranks."""


def _fit(fit: Fit, progress: bool) -> RunResult:
    import datasets

    from training.callbacks import LedgerCallback, ProgressCallback, StreamLedger, loss_hook
    from training.packing import PackedCollator
    from training.sft import sharded_trainer_class

    config, lake, source, stream, run, ranks = (
        fit.config,
        fit.lake,
        fit.source,
        fit.stream,
        fit.run,
        fit.ranks,
    )
    if config.cpu_threads:
        import torch

        torch.set_num_threads(config.cpu_threads)
    from transformers import set_seed

    # The trainer seeds only after the model exists; LoRA's A matrices are drawn before that.
    set_seed(config.seed)
    model, tokenizer = load_for_training(config)
    stream.tokenizer = tokenizer
    ledger = StreamLedger(stream, fit.batch, config.per_device_train_batch_size, ranks)
    if fit.start_step and ranks.is_main:
        ledger.load_losses(fit.run_dir)
    model.register_forward_hook(loss_hook(ledger), with_kwargs=True)

    def flush(after: int, upto: int) -> None:
        rows = ledger.exposures(run.run_id, after, upto)  # every rank's, on rank 0
        if not ranks.is_main:
            return
        if lake is not None:
            write_exposures(lake, run.run_id, rows, after)
        if config.data_file is not None:
            # Kept in the folder too, so `import_run` can bring a lake-less run into a lake.
            save_exposures(fit.run_dir, rows, after)

    evals = []
    if config.eval_split and source.ids(config.eval_split):
        evals = eval_examples(
            source,
            config.eval_split,
            tokenizer,
            config.max_length,
            config.completion_only_loss,
            limit=config.eval_rows,
        )
    use_eval = bool(evals)
    args = sft_config(config, fit.run_dir, fit.max_steps, use_eval)
    train_data = datasets.IterableDataset.from_generator(stream.examples)
    eval_data = datasets.Dataset.from_list(evals) if use_eval else None
    bar = ProgressCallback(ledger, fit.start_step, enabled=progress)
    trainer = sharded_trainer_class()(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        data_collator=PackedCollator(int(tokenizer.pad_token_id)),
        callbacks=[LedgerCallback(ledger, flush, fit.start_step), bar],
    )
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    trainer.remove_callback(PrinterCallback)

    hf_logging.set_verbosity_error()
    checkpoint = checkpoints(fit.run_dir)[-1][1] if fit.start_step else None
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    evaluated_last = any(
        "eval_loss" in h and h.get("step") == trainer.state.global_step
        for h in trainer.state.log_history
    )
    final_eval = trainer.evaluate() if use_eval and not evaluated_last else {}
    # Tokens of every rank on rank 0 (each bar counted its own rank's).
    counted = gather(bar.tokens, ranks)
    if ranks.is_main:
        bar.tokens = sum(counted)
        bar.tokens_per_s = bar.tokens / max(bar.seconds, 1e-9)
    adapter = fit.run_dir / ADAPTER
    history = loss_history(trainer.state.log_history)
    metrics, best = run_metrics(history, final_eval, bar, trainer.state.global_step)
    rows = stream.report().as_metrics()
    metrics.update(rows)
    metrics["world_size"] = ranks.world_size
    column = None
    exposed = 0
    done = dataclasses.replace(
        run,
        status="finished",
        metrics={**metrics, "history": history},
        best_metrics=best,
        adapter_path=str(adapter.resolve()),
        finished_at=_now(),
    )
    if config.fsdp:  # every rank takes part in gathering the sharded weights; rank 0 writes
        trainer.save_model(str(adapter))
    if ranks.is_main:
        if not config.fsdp:
            model.save_pretrained(adapter)
        tokenizer.save_pretrained(adapter)
        losses = ledger.final_epoch_losses(config.to_dict())
        if lake is not None and losses:
            write_train_loss(lake, run.run_id, losses)
            column = f"train_loss_{run.run_id}"
        exposed = read_exposures(lake, run.run_id).num_rows if lake is not None else 0
        write_run_file(fit.run_dir, done, source, lake, ranks.world_size)
        if lake is not None:
            save_run(lake, done)
    step = trainer.state.global_step
    return RunResult(
        run.run_id, "finished", step, fit.run_dir, adapter, metrics, best, exposed, column,
        fit.start_step, history, rows,
    )  # fmt: skip
