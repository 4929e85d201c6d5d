"""Mix materialization: a 100k-row mix from a 1M-row table, mixlake vs. HF `datasets`.

The table has the `records` schema plus `n_tokens`, `quality_heuristic_v1` and `cluster`
(written straight with Lance: ingesting 1M synthetic rows would measure ingest, not mixes).
The mix has three components: a random sample of good `web` rows (50%), `forum` rows in a
token range stratified by cluster (30%), and the best `code` rows by quality (20%).

The alternative is the same selection with Hugging Face `datasets` on the same Arrow table in
memory (so loading is not counted against it): `filter` per component on the fastest path
(batched, Arrow format), `shuffle`/`sort`, per-cluster datasets interleaved evenly for the
stratified one, then `interleave_datasets` with the weights as probabilities and `select` of
the first 100k rows. mixlake's time is the whole `materialize_mix`: SQL at the pinned version,
sampling, splits, leakage check, checksum, and writing `mix__bench` and `mixes`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation import Lake
from curation.schema import RECORDS_SCHEMA
from queries import materialize_mix, parse_spec

ROWS = 1_000_000
MIX_ROWS = 100_000
SOURCES = np.array(["web", "forum", "code", "news"])
SPEC = f"""
name: bench
seed: 1
total_rows: {MIX_ROWS}
components:
  - name: good-web
    sql: source = 'web' AND quality_heuristic_v1 > 0.7
    weight: 0.5
  - name: forum-mid
    sql: source = 'forum' AND n_tokens BETWEEN 100 AND 400
    weight: 0.3
    stratify_by: cluster
  - name: best-code
    sql: source = 'code'
    weight: 0.2
    order_by: quality_heuristic_v1 DESC
splits: {{train: 0.9, val: 0.05, test: 0.05}}
format: {{template: text}}
"""


def make_table(n: int = ROWS, seed: int = 0) -> pa.Table:
    """`n` synthetic records with the enrichment columns the spec selects on."""
    rng = np.random.default_rng(seed)
    ids = pa.array(_hex_ids(n, rng))
    source = SOURCES[rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])]
    words = np.array(["data", "lake", "mix", "train", "eval", "token", "row", "lance"])
    text = pc.binary_join_element_wise(
        pa.array(source),
        pa.array(np.char.mod("%d", np.arange(n))),
        pa.array(words[np.arange(n) % 8]),
        " ",
    )
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    core = {
        "id": ids,
        "source": pa.array(source),
        "kind": pa.array(np.full(n, "text")),
        "text": text,
        "messages": pa.nulls(n, RECORDS_SCHEMA.field("messages").type),
        "rejected": pa.nulls(n, pa.string()),
        "meta": pa.nulls(n, pa.string()),
        "batch": pa.array(np.full(n, "bench")),
        "ingested_at": pa.array(np.full(n, now), RECORDS_SCHEMA.field("ingested_at").type),
    }
    table = pa.table(core, schema=RECORDS_SCHEMA)
    return (
        table.append_column("n_tokens", pa.array(rng.integers(10, 1000, n), pa.int32()))
        .append_column("quality_heuristic_v1", pa.array(rng.random(n), pa.float32()))
        .append_column("cluster", pa.array(rng.integers(0, 20, n), pa.int32()))
    )


def _hex_ids(n: int, rng: np.random.Generator) -> list[str]:
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    return [f"{a:016x}{b:016x}" for a, b in raw.tolist()]


def with_hf(table: pa.Table, seed: int = 1) -> list[str]:
    """The same selection with HF `datasets`: filter, shuffle/sort, interleave, select."""
    import datasets

    datasets.disable_progress_bars()
    ds = datasets.Dataset(
        table.select(["id", "source", "n_tokens", "quality_heuristic_v1", "cluster"])
    )
    fast = ds.with_format("arrow")

    def keep(pred: Any) -> datasets.Dataset:
        return fast.filter(pred, batched=True, batch_size=65536).with_format(None)

    web = keep(
        lambda t: pc.and_(pc.equal(t["source"], "web"), pc.greater(t["quality_heuristic_v1"], 0.7))
    ).shuffle(seed=seed)
    forum = keep(
        lambda t: pc.and_(
            pc.equal(t["source"], "forum"),
            pc.and_(pc.greater_equal(t["n_tokens"], 100), pc.less_equal(t["n_tokens"], 400)),
        )
    )
    per_cluster = [
        forum.with_format("arrow")
        .filter(lambda t, c=c: pc.equal(t["cluster"], c), batched=True, batch_size=65536)
        .with_format(None)
        .shuffle(seed=seed + c)
        for c in range(20)
    ]
    forum_even = datasets.interleave_datasets(
        per_cluster, probabilities=[1 / 20] * 20, seed=seed, stopping_strategy="all_exhausted"
    )
    code = keep(lambda t: pc.equal(t["source"], "code")).sort("quality_heuristic_v1", reverse=True)
    mixed = datasets.interleave_datasets(
        [web, forum_even, code],
        probabilities=[0.5, 0.3, 0.2],
        seed=seed,
        stopping_strategy="first_exhausted",
    )
    return list(mixed.select(range(min(MIX_ROWS, len(mixed))))["id"])


def run() -> str:
    """Time both, same run, same data; return the Markdown section."""
    with tempfile.TemporaryDirectory() as tmp:
        table = make_table()
        lake = Lake.create(Path(tmp) / "lake")
        lance.write_dataset(table, lake.table_uri("records"), mode="overwrite")
        spec = parse_spec(SPEC)
        t0 = time.perf_counter()
        mix = materialize_mix(lake, spec)
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        hf_ids = with_hf(table)
        theirs = time.perf_counter() - t0
        comps = {c: v["rows"] for c, v in mix.components.items()}
        t0 = time.perf_counter()
        again = materialize_mix(lake, parse_spec(SPEC.replace("seed: 1", "seed: 2")))
        second = time.perf_counter() - t0
    ratio = theirs / ours
    return "\n".join(
        [
            "## Mixes: materializing a 100k-row mix from a 1M-row table",
            "",
            f"Table: {ROWS:,} rows (`records` schema + `n_tokens`, `quality_heuristic_v1`, "
            "`cluster`), 4 sources. Mix: "
            f"{MIX_ROWS:,} rows from 3 components (random 50%, stratified by cluster 30%, "
            "top by quality 20%), splits 90/5/5.",
            "",
            "| how | seconds | rows | ratio |",
            "|---|---:|---:|---:|",
            f"| mixlake `materialize_mix` (SQL, sample, split, leakage check, write) | "
            f"{ours:.2f} | {mix.row_count:,} | 1.0× |",
            f"| mixlake again, another seed (new mix version) | {second:.2f} | "
            f"{again.row_count:,} | {second / ours:.2f}× |",
            f"| HF `datasets`: filter + shuffle/sort + `interleave_datasets` + select (in memory, "
            f"no write) | {theirs:.2f} | {len(hf_ids):,} | {ratio:.1f}× slower |",
            "",
            f"mixlake is **{ratio:.1f}×** faster. Its per-component rows are exact "
            f"({', '.join(f'{k} {v:,}' for k, v in comps.items())}); `interleave_datasets` "
            "with probabilities only meets the weights in expectation: "
            f"{_shares(hf_ids, table)}.",
        ]
    )


def _shares(ids: list[str], table: pa.Table) -> str:
    picked = table.filter(pc.is_in(table.column("id"), value_set=pa.array(ids)))
    counts = picked.group_by("source").aggregate([("id", "count")]).to_pylist()
    return ", ".join(
        f"{r['source']} {r['id_count']:,}" for r in sorted(counts, key=lambda r: r["source"])
    )
