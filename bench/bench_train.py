"""Training data path and trainer overhead, against an HF `datasets` pipeline on the same mix.

1. Data-path throughput: tokens/s our loader delivers (exported JSONL by byte offset, and the
   lake mix by row address) against `datasets.load_dataset("json") + map(tokenize)` over the
   same exported mix, all with the same render + tokenize function and the SmolLM2 tokenizer.
2. Trainer step time (tiny random Llama with the SmolLM2 tokenizer, nf4 + LoRA, CPU): our
   streamed loader through `training.train` (with the exposure ledger and per-row losses)
   against the same SFTTrainer fed a tokenized `datasets.Dataset`.
3. Padding waste with and without packing (the share of batch positions that are padding),
   and the rows left out (no assistant turn, no loss token after truncation) and truncated.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
MIX = "chitchat-random"
MAX_LENGTH = 512
STEPS = 12
BATCH = 4
REPEATS = 2


def _best(fn: Callable[[], tuple[int, float]]) -> tuple[int, float]:
    """Run `fn` REPEATS times; keep the fastest (tokens, seconds)."""
    runs = [fn() for _ in range(REPEATS)]
    return min(runs, key=lambda r: r[1])


def _setup(work: Path) -> tuple[Any, Path, Any]:
    from curation import Lake
    from curation.models import load_tokenizer
    from queries import export_mix, load_spec, materialize_mix

    lake = Lake.create(work / "lake")
    lake.ingest(["pkg:chitchat"], source="chitchat")
    materialize_mix(lake, load_spec(ROOT / "queries" / "mixes" / f"{MIX}.yaml"))
    out = work / f"{MIX}.jsonl"
    export_mix(lake, MIX, "jsonl", out, redact=False)
    return lake, out, load_tokenizer("smollm2")


def _ours(source: Any, tokenizer: Any) -> tuple[int, float]:
    from training.data import TokenStream

    n = len(source.ids("train"))
    t0 = time.perf_counter()
    stream = TokenStream(source, "train", tokenizer, MAX_LENGTH, False, True, total_items=n)
    tokens = sum(len(item.input_ids) for item in stream)
    return tokens, time.perf_counter() - t0


def _hf_pipeline(path: Path, tokenizer: Any) -> tuple[int, float]:
    import datasets

    from training.data import encode

    datasets.disable_caching()
    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    ds = datasets.load_dataset("json", data_files=str(path), split="train", keep_in_memory=True)
    ds = ds.filter(lambda ex: ex["split"] == "train", keep_in_memory=True)

    def tokenize(ex: dict[str, Any]) -> dict[str, Any]:
        enc = encode(ex, tokenizer, MAX_LENGTH, True)
        return {"input_ids": enc.input_ids, "labels": enc.labels, "keep": enc.excluded is None}

    ds = ds.map(tokenize, remove_columns=ds.column_names, keep_in_memory=True)
    ds = ds.filter(lambda ex: ex["keep"], keep_in_memory=True)  # as ours: rows with loss
    tokens = sum(len(ids) for ids in ds["input_ids"])
    return tokens, time.perf_counter() - t0


def _train_ours(config: Any) -> float:
    from training import train

    result = train(config, None, progress=False)
    return float(result.metrics["train_seconds"]) / result.steps


def _train_hf(config: Any, path: Path, work: Path) -> float:
    import datasets
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from training.data import encode
    from training.models import load_for_training
    from training.trainer import sft_config

    model, tokenizer = load_for_training(config)
    ds = datasets.load_dataset("json", data_files=str(path), split="train", keep_in_memory=True)
    ds = ds.filter(lambda ex: ex["split"] == "train", keep_in_memory=True)

    def tokenize(ex: dict[str, Any]) -> dict[str, Any]:
        enc = encode(ex, tokenizer, config.max_length, True)
        return {"input_ids": enc.input_ids, "labels": enc.labels, "keep": enc.excluded is None}

    ds = ds.map(tokenize, remove_columns=ds.column_names, keep_in_memory=True)
    ds = ds.filter(lambda ex: ex["keep"], keep_in_memory=True).remove_columns(["keep"])
    trainer = SFTTrainer(
        model=model,
        args=sft_config(config, work / "hf-run", STEPS, False),
        train_dataset=ds,
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)
    t0 = time.perf_counter()
    trainer.train()
    return (time.perf_counter() - t0) / STEPS


def _padding(source: Any, tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Padding waste of micro-batches of BATCH items, unpacked and packed, and the row report."""
    from training.data import TokenStream
    from training.packing import padding_waste

    out: dict[str, Any] = {}
    for packing in (False, True):
        stream = TokenStream(source, "train", tokenizer, max_length, packing, True, 0)
        stream.total_items = stream.items_per_epoch()
        items = [[m.length for m in item.members] for item in stream]
        out[packing] = (len(items), padding_waste(items, BATCH))
        out["report"] = stream.report()
    return out


def run() -> str:
    """Run both comparisons; return the Markdown section."""
    from training import TrainConfig
    from training.sources import FileSource, MixSource
    from training.testing import make_tiny_llama

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        lake, path, tokenizer = _setup(work)
        rows = len(FileSource(path).ids("train"))
        file_tok, file_s = _best(lambda: _ours(FileSource(path), tokenizer))
        lake_tok, lake_s = _best(lambda: _ours(MixSource(lake, MIX), tokenizer))
        hf_tok, hf_s = _best(lambda: _hf_pipeline(path, tokenizer))
        assert file_tok == lake_tok == hf_tok, (file_tok, lake_tok, hf_tok)
        padding = {n: _padding(FileSource(path), tokenizer, n) for n in (128, MAX_LENGTH)}

        model = make_tiny_llama(work / "tiny", [], hidden_size=64, layers=2, tokenizer=tokenizer)
        config = TrainConfig(
            base_model=str(model),
            data_file=str(path),
            eval_split=None,
            max_steps=STEPS,
            per_device_train_batch_size=BATCH,
            max_length=256,
            logging_steps=STEPS,
            save_steps=10 * STEPS,
            lora_r=8,
            lora_alpha=16,
            output_dir=str(work / "runs"),
            device="cpu",
        )
        # Interleaved, so a change in machine load hits both sides alike.
        ours_steps, hf_steps = [], []
        for _ in range(2):
            ours_steps.append(_train_ours(config))
            hf_steps.append(_train_hf(config, path, work))
        ours_step, hf_step = min(ours_steps), min(hf_steps)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def rate(tokens: int, seconds: float) -> str:
        return f"{tokens / seconds:,.0f}"

    def waste_rows() -> str:
        lines = []
        for n, p in padding.items():
            r = p["report"]
            left = ", ".join(f"{k} {v}" for k, v in sorted(r.excluded.items())) or "none"
            lines.append(
                f"| {n} | {p[False][0]:,} | {p[False][1]:.1%} | {p[True][0]:,} | "
                f"{p[True][1]:.1%} | {r.truncated:,} of {r.rows:,} | {left} |"
            )
        return "\n".join(lines)

    return f"""## Training: data path and trainer overhead

Mix `{MIX}` (pkg:chitchat, {rows} train rows, {file_tok:,} tokens after the SmolLM2 chat
template, max_length {MAX_LENGTH}), each loader producing the same input ids and loss masks
with the same render + tokenize function; best of {REPEATS} runs, one process, CPU.

| loader | seconds | tokens/s | vs `datasets` |
|---|---|---|---|
| ours, exported JSONL (byte-offset random access) | {file_s:.2f} | {rate(file_tok, file_s)} | {hf_s / file_s:.2f}× |
| ours, lake mix (row address at the pinned version) | {lake_s:.2f} | {rate(lake_tok, lake_s)} | {hf_s / lake_s:.2f}× |
| HF `datasets`: load_dataset(json) + filter + map | {hf_s:.2f} | {rate(hf_tok, hf_s)} | 1.00× |

Both of ours stream lazily (tokenize on demand, any epoch order, exact resume), while the
`datasets` pipeline tokenizes everything before the first step; the shared cost is the
tokenizer, so the ratio measures the reading and bookkeeping around it.

Trainer step time, tiny random Llama (hidden 64, 2 layers, SmolLM2 tokenizer/vocabulary),
nf4 + LoRA r=8, micro-batch {BATCH}, max_length 256, {STEPS} steps, best of 2 (interleaved):

| trainer input | seconds / step | ratio |
|---|---|---|
| ours: `training.train` streaming the JSONL (with exposure ledger + per-row loss) | {ours_step:.3f} | {ours_step / hf_step:.2f}× |
| same `SFTTrainer`, pre-tokenized `datasets.Dataset` | {hf_step:.3f} | 1.00× |

Padding waste (share of batch positions that are padding) over one epoch of the train split,
micro-batch {BATCH}, batches padded to their longest item; packing fills sequences up to
max_length with whole examples, each with its own position ids (no cross-example attention):

| max_length | items unpacked | waste unpacked | items packed | waste packed | rows truncated | rows left out |
|---|---|---|---|---|---|---|
{waste_rows()}

No GPU was available to this run, so QLoRA tokens/s and peak GPU memory for SmolLM2 (and
larger models) are not measured here.
"""


if __name__ == "__main__":
    print(run())
