"""A small, complete sample lake for the UI's tests, screenshots and docs.

`build_sample_lake(path)` makes records from three sources (text, chat, instruction rows),
adds score, flag and per-row eval columns through `curation.steps.apply` (so they carry real
provenance), materializes one mix twice when `queries` is available, and writes one training
run with its exposures and eval rows through the writers of `training.runs` and
`evals.writeback` (so `runs`, `exposures` and `evals` have exactly the real schemas).
Everything is deterministic but the eval rows' `at` and `git_commit` (the writer's own), and
it takes about a second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation import Lake
from curation.steps import apply
from curation.testing import make_lake

RUN_ID = "r0demo001"
BASE = "base_smollm2"
SUITE = "chat"
METRIC = "rougeL"

_TOPICS = ["rivers", "bread", "chess", "rain", "music", "bikes", "tea", "stars", "maps", "cats"]


def _unit(text: str, salt: str) -> float:
    h = hashlib.blake2b(f"{salt}:{text}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


class _ScoreStep:
    """A deterministic pseudo-quality score in [0, 1], a `short` flag and a `length_bucket`.

    The columns are null for rows ingested after it ran, like the junk batch.
    """

    name = "sample_score_v1"
    input_columns: tuple[str, ...] = ("text",)

    def params(self) -> dict[str, Any]:
        return {"salt": "q"}

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                ("sample_score_v1", pa.float64()),
                ("is_short", pa.bool_()),
                ("length_bucket", pa.string()),
            ]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        scores = [round(0.3 * _unit(t, "q") + 0.7 * min(len(t) / 200, 1.0), 4) for t in texts]
        return pa.RecordBatch.from_arrays(
            [
                pa.array(scores),
                pa.array([len(t) < 60 for t in texts]),
                pa.array(["short" if len(t) < 60 else "long" for t in texts]),
            ],
            schema=self.output_schema(),
        )


class _TokensStep:
    """`n_tokens` as a whitespace word count, so `mix check` on the sample lake reports tokens.

    The real step needs a tokenizer download.
    """

    name = "n_tokens"
    input_columns: tuple[str, ...] = ("text",)

    def params(self) -> dict[str, Any]:
        return {"tokenizer": "whitespace (sample lake)"}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("n_tokens", pa.int64())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        counts = [len(t.split()) for t in batch.column("text").to_pylist()]
        return pa.RecordBatch.from_arrays(
            [pa.array(counts, pa.int64())], schema=self.output_schema()
        )


class _EvalStep:
    """Per-row eval metric columns for the base model and the tuned run."""

    def __init__(self, label: str, lift: float) -> None:
        self.label, self.lift = label, lift
        self.name = f"eval_{label}_{SUITE}_{METRIC}"
        self.input_columns: tuple[str, ...] = ("text",)

    def params(self) -> dict[str, Any]:
        return {"label": self.label, "lift": self.lift}

    def output_schema(self) -> pa.Schema:
        return pa.schema([(self.name, pa.float64())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        values = [
            round(
                min(1.0, max(0.0, 0.35 + 0.4 * _unit(t, "e") + self.lift * (_unit(t, "l") - 0.35))),
                4,
            )
            for t in texts
        ]
        return pa.RecordBatch.from_arrays([pa.array(values)], schema=self.output_schema())


def _rows(n: int) -> dict[str, Sequence[Any]]:
    web: list[dict[str, Any]] = []
    chat: list[dict[str, Any]] = []
    inst: list[dict[str, Any]] = []
    for i in range(n):
        t = _TOPICS[i % len(_TOPICS)]
        web.append(
            {
                "text": f"Note {i} about {t}: "
                + " ".join([f"{t} fact {j}." for j in range(1 + i % 9)])
            }
        )
        chat.append(
            {
                "messages": [
                    {"role": "user", "content": f"Can you tell me something about {t}? ({i})"},
                    {
                        "role": "assistant",
                        "content": f"Sure. Here is a short answer about {t}: "
                        + "it is interesting. " * (1 + i % 6),
                    },
                ],
                "topic": t,
            }
        )
        inst.append(
            {
                "instruction": f"Summarize item {i}.",
                "input": f"{t} " * (2 + i % 5),
                "output": f"About {t}.",
            }
        )
    out: dict[str, Sequence[Any]] = {"web": web, "chat": chat, "instruct": inst}
    return out


def build_sample_lake(path: str | Path, rows_per_source: int = 40) -> Lake:
    """Create the sample lake under `path` (a fresh folder; the lake is `path/lake`).

    Versions: 2 web, 3 chat, 4 instruct ingests, 5 scores, then eval columns (base, run), a
    hash-based `embedding` (so semantic search works without a model), its k-means `cluster`
    (k=4, with the `clusters` table of top terms), `n_tokens` as a word count,
    then a late `junk` ingest that the UI tests roll back or delete.
    """
    root = Path(path)
    lake = make_lake(root, _rows(rows_per_source))
    apply(_ScoreStep(), lake)
    apply(_EvalStep(BASE, 0.0), lake)
    apply(_EvalStep(RUN_ID, 0.5), lake)
    _embed(lake)
    apply(_TokensStep(), lake)
    lake.tag("scored")
    mix_ref = _mix(lake, rows_per_source)
    _run(lake, mix_ref)
    make_junk(lake, root)
    return lake


def _embed(lake: Lake) -> None:
    try:
        from curation.steps.embed import EmbedStep
    except ImportError:
        return
    from curation.testing import FakeEmbedder

    apply(EmbedStep(FakeEmbedder(64)), lake)
    from curation.steps.cluster import cluster

    cluster(lake, 4, seed=0)


def make_junk(lake: Lake, root: Path, n: int = 6) -> None:
    """Ingest a small `junk` source (a batch to delete or a version to roll back)."""
    from curation.testing import write_jsonl

    rows = [{"text": f"BUY NOW!!! cheap offer number {i} click here"} for i in range(n)]
    lake.ingest([write_jsonl(root / "junk.jsonl", rows)], source="junk")


def _mix(lake: Lake, per_source: int) -> tuple[str, int, str] | None:
    try:
        from queries import materialize_mix, parse_spec
    except ImportError:
        return None
    base = (
        "name: sample-chat\nrecords: latest\nseed: 7\ntotal_rows: {n}\n"
        "components:\n  - name: chat\n    sql: source = 'chat'\n    weight: 2\n"
        "  - name: instruct\n    sql: source = 'instruct' AND sample_score_v1 > {q}\n    weight: 1\n"
        "splits: {{train: 0.9, val: 0.1}}\nformat: {{template: chat}}\n"
    )
    materialize_mix(lake, parse_spec(base.format(n=per_source * 3 // 4, q=0.2)))
    mix = materialize_mix(lake, parse_spec(base.format(n=per_source * 9 // 10, q=0.1)))
    return mix.name, mix.version, mix.checksum


def _run(lake: Lake, mix_ref: tuple[str, int, str] | None) -> None:
    """One finished run with its exposures and run-level evals.

    They are written by the owning packages' writers (`training.runs`, `evals.writeback`), so
    the tables are the real ones.
    """
    from evals.writeback import append_run_metrics
    from training.runs import Run, save_run, write_exposures

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    history = [
        {"step": s, "epoch": s / 10, "loss": round(2.4 * 0.85**s + 0.6, 4)} for s in range(1, 21)
    ] + [
        {"step": s, "epoch": s / 10, "eval_loss": round(2.5 * 0.88**s + 0.75, 4)}
        for s in (5, 10, 15, 20)
    ]
    name, version, checksum = mix_ref or (None, None, None)
    records_version = lake.latest_version()
    run = Run(
        run_id=RUN_ID,
        mix=name,
        mix_version=version,
        mix_checksum=checksum,
        records_version=records_version,
        config="model: smollm2-135m\nlora_r: 8\nlearning_rate: 0.0002\nepochs: 2\n",
        git_commit="0000000000000000000000000000000000000000",
        status="finished",
        metrics={"steps": 20, "train_loss": 0.70, "eval_loss": 0.98, "history": history},
        best_metrics={"train_loss": 0.70, "eval_loss": 0.98},
        adapter_path="runs/r0demo001/adapter",
        started_at=now,
        finished_at=now + dt.timedelta(minutes=7),
    )
    save_run(lake, run)
    ids = (
        lake.sql("SELECT id FROM records WHERE source = 'chat' ORDER BY id")
        .column("id")
        .to_pylist()
    )
    exposures = pa.table(
        {
            "run_id": [RUN_ID] * len(ids),
            "record_id": ids,
            "position": list(range(len(ids))),
            "step": [1 + i // 4 for i in range(len(ids))],
            "epoch": [0] * len(ids),
        }
    )
    write_exposures(lake, RUN_ID, exposures)
    means = lake.sql(
        f'SELECT avg("eval_{BASE}_{SUITE}_{METRIC}") AS b, avg("eval_{RUN_ID}_{SUITE}_{METRIC}") AS t FROM records'
    ).to_pylist()[0]
    for label, value in ((BASE, means["b"]), (RUN_ID, means["t"])):
        append_run_metrics(
            lake,
            label,
            SUITE,
            {METRIC: float(value)},
            mix=name,
            mix_checksum=checksum,
            records_version=records_version,
            split="val",
        )
