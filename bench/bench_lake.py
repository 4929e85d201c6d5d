"""Lake benchmark: ingest throughput and memory, rollback time, filtered SQL count.

Everything runs on generated data (1M records by default; `MIXLAKE_BENCH_ROWS` overrides) in
one run, each figure next to the obvious alternative measured in the same run:

- ingest rows/s vs plain `pyarrow.json.read_json` + `lance.write_dataset` of the same file
  (both in a fresh subprocess, so peak RSS is each one's own);
- rollback time at 10k and at the full size (a manifest write: must not grow with rows);
- a filtered count at the full size: `Lake.sql` (DuckDB over the Lance dataset) vs plain
  DuckDB over a Parquet copy of the same table.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROWS = 1_000_000
WORDS = (  # noqa: SIM905
    "the quick brown fox jumps over a lazy dog while data lake model train eval mix row "
    "column version river bank night morning coffee garden tiny answer question"
).split()

_INGEST = """
import resource, sys, time
from curation import Lake
lake = Lake.create(sys.argv[2])
t = time.perf_counter()
report = lake.ingest([sys.argv[1]], source="bench")
seconds = time.perf_counter() - t
print(report.rows_added, seconds)
"""
_ROW_BY_ROW = """
import sys, time
from curation import Lake
import curation.ingest.intake
sys.modules["curation.ingest.intake"].jsonl_table = lambda block: None  # every block row by row
lake = Lake.create(sys.argv[2])
t = time.perf_counter()
report = lake.ingest([sys.argv[1]], source="bench")
seconds = time.perf_counter() - t
print(report.rows_added, seconds)
"""
_RAW = """
import resource, sys, time
import lance, pyarrow.json as pj
t = time.perf_counter()
table = pj.read_json(sys.argv[1])
lance.write_dataset(table, sys.argv[2])
seconds = time.perf_counter() - t
print(table.num_rows, seconds)
"""


def generate(path: Path, rows: int, seed: int = 0) -> Path:
    """Write `rows` JSONL records: 40% text, 40% chat `messages`, 20% Alpaca instruction."""
    rng = random.Random(seed)

    with path.open("wb") as f:
        for i in range(rows):
            f.write(orjson.dumps(sample_row(i, rng)) + b"\n")
    return path


def sample_row(i: int, rng: random.Random, tag: str | None = None) -> dict[str, object]:
    """Row `i` of the generated data: 40% text, 40% chat, 20% instruction (by `i % 5`).

    Its first words are `tag` (default: the row number), which keeps every row distinct.
    """

    def words(k: int) -> str:
        return " ".join(rng.choices(WORDS, k=k))

    first = str(i) if tag is None else tag
    if i % 5 < 2:
        return {"text": f"{first} {words(40)}", "lang": "en"}
    if i % 5 < 4:
        return {
            "messages": [
                {"role": "user", "content": f"{first} {words(12)}"},
                {"role": "assistant", "content": words(30)},
            ],
            "lang": "en",
        }
    return {"instruction": f"{first} {words(8)}", "input": words(6), "output": words(20)}


def _child(code: str, *args: str) -> tuple[int, float, float, float]:
    """Run `code` in a fresh interpreter; return (rows, wall s, CPU s, peak RSS in MiB)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {done.stderr.strip()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows, seconds = done.stdout.split()
    # ru_maxrss of children is the max over all waited-for children: only meaningful when the
    # new child beat every earlier one, so children run from the smallest expected peak up.
    return int(rows), float(seconds), cpu, after.ru_maxrss / 1024


_INGEST_INTO = """
import sys, time
from curation import Lake
t = time.perf_counter()
report = Lake(sys.argv[2]).ingest([sys.argv[1]], source="bench")
print(report.rows_added, time.perf_counter() - t)
"""


def _concurrent(files: list[Path], lake_dir: Path) -> tuple[float, int, list[int]]:
    """Ingest `files` into one fresh lake from as many processes at once.

    Returns (wall seconds until all finished, rows stored, rows each process added).
    """
    from curation import Lake

    Lake.create(str(lake_dir))
    t = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _INGEST_INTO, str(f), str(lake_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    added = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"concurrent ingest failed: {err.strip()[-2000:]}")
        added.append(int(out.split()[0]))
    wall = time.perf_counter() - t
    stored = Lake(str(lake_dir)).records().count_rows()
    return wall, stored, added


def _du(path: Path) -> int:
    """Bytes on disk under `path`."""
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


def _rollback_seconds(lake_dir: Path, data: Path) -> tuple[float, int]:
    """Median time of three rollbacks on a lake; returns (seconds, rows)."""
    from curation import Lake, rollback

    lake = Lake(str(lake_dir))
    base = lake.latest_version()
    extra = generate(data.with_name(f"extra-{lake_dir.name}.jsonl"), 1000, seed=99)
    lake.ingest([extra], source="extra")
    grown = lake.latest_version()
    times = []
    for target in (base, grown, base):  # back, forward (undo), back again
        t = time.perf_counter()
        rollback(lake, target)
        times.append(time.perf_counter() - t)
    return sorted(times)[1], lake.records().count_rows()


def _best(fn: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def run(rows: int | None = None) -> str:
    """Run the lake benchmark and return its Markdown section."""
    import os

    import duckdb
    import pyarrow.parquet as pq

    from curation import Lake

    n = rows or int(os.environ.get("MIXLAKE_BENCH_ROWS", ROWS))
    work = Path(tempfile.mkdtemp(prefix="mixlake-bench-"))
    try:
        t = time.perf_counter()
        data = generate(work / "data.jsonl", n)
        gen_s = time.perf_counter() - t
        size_mb = data.stat().st_size / 2**20
        small = generate(work / "small.jsonl", 10_000, seed=1)

        # Smallest peak first (see _child): the small ingest, ours, then the all-in-memory raw.
        small_rss = _child(_INGEST, str(small), str(work / "lake-10k"))[3]
        quarter = work / "quarter.jsonl"
        with data.open("rb") as src, quarter.open("wb") as dst:
            dst.writelines(line for _, line in zip(range(n // 4), src, strict=False))
        quarter_rss = _child(_INGEST, str(quarter), str(work / "lake-quarter"))[3]
        row_rows, row_s, _, _ = _child(_ROW_BY_ROW, str(quarter), str(work / "lake-rows"))
        ours_rows, ours_s, ours_cpu, ours_rss = _child(_INGEST, str(data), str(work / "lake"))
        raw_rows, raw_s, raw_cpu, raw_rss = _child(_RAW, str(data), str(work / "raw.lance"))
        ours_rate, raw_rate, row_rate = ours_rows / ours_s, raw_rows / raw_s, row_rows / row_s
        ours_bytes = _du(work / "lake" / "records.lance")
        raw_bytes = _du(work / "raw.lance")
        slope = (ours_rss - quarter_rss) * 2**20 / max(n - n // 4, 1)

        # Two writers at once: the writer lock serialises them, so the second finds the
        # first's rows and adds none (same file) or only its own (another file).
        one_s = _concurrent([quarter], work / "lake-one")[0]  # same process start-up cost
        same_wall, same_rows, same_added = _concurrent([quarter, quarter], work / "lake-same")
        other = work / "other.jsonl"
        generate(other, n // 4, seed=7)
        pair_wall, pair_rows, _ = _concurrent([quarter, other], work / "lake-pair")
        if same_rows != n // 4 or sorted(same_added) != [0, n // 4]:
            raise RuntimeError(f"concurrent ingest stored {same_rows} rows ({same_added})")

        small_rb, small_n = _rollback_seconds(work / "lake-10k", data)
        big_rb, big_n = _rollback_seconds(work / "lake", data)

        lake = Lake(str(work / "lake"))
        query = (
            "SELECT count(*) FROM records WHERE kind = 'chat' AND length(text) > 200 "
            "AND text LIKE '%coffee%'"
        )
        parquet = work / "records.parquet"
        pq.write_table(lake.records().to_table(), parquet)
        plain = duckdb.connect()
        plain_sql = query.replace("FROM records", f"FROM read_parquet('{parquet}')")
        ours_count = lake.sql(query).column(0)[0].as_py()
        plain_count = plain.execute(plain_sql).fetchone()[0]  # type: ignore[index]
        if ours_count != plain_count:
            raise RuntimeError(f"counts differ: lake {ours_count} vs parquet {plain_count}")
        ours_q = _best(lambda: lake.sql(query))
        plain_q = _best(lambda: plain.execute(plain_sql).fetchall())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    return "\n".join(
        [
            "## Lake: ingest, rollback, SQL",
            "",
            f"Data: {n:,} generated JSONL records ({size_mb:.0f} MiB; 40% text, 40% chat "
            f"`messages`, 20% Alpaca instruction, each with an extra field that goes to `meta`), "
            f"generated in {gen_s:.1f}s.",
            "",
            "| measurement | mixlake | alternative | ratio |",
            "|---|---|---|---|",
            f"| ingest {n:,} rows (rows/s) | {ours_rate:,.0f} (`Lake.ingest`, {ours_s:.1f}s) "
            f"| {raw_rate:,.0f} (`pyarrow.json.read_json` + `lance.write_dataset`, "
            f"{raw_s:.1f}s) | **{ours_rate / raw_rate:.2f}** |",
            f"| CPU time of that ingest (s, all threads) | {ours_cpu:.1f} | {raw_cpu:.1f} "
            f"| {raw_cpu / ours_cpu:.2f} |",
            f"| bytes written (MiB) | {ours_bytes / 2**20:,.0f} (`records`) "
            f"| {raw_bytes / 2**20:,.0f} | {ours_bytes / raw_bytes:.2f} |",
            f"| ingest, bulk path vs row by row (rows/s, first {row_rows:,} rows) "
            f"| {ours_rate:,.0f} (bulk) | {row_rate:,.0f} (every block row by row) "
            f"| **{ours_rate / row_rate:.1f}×** |",
            f"| peak RSS of that ingest (MiB) | {ours_rss:,.0f} ({small_rss:,.0f} at 10,000 "
            f"rows, {quarter_rss:,.0f} at {n // 4:,}: +{slope:.0f} bytes/row beyond that) "
            f"| {raw_rss:,.0f} (whole file as one Arrow table) | {ours_rss / raw_rss:.2f} |",
            f"| two ingests of the same {n // 4:,}-row file at once (s until both finish) "
            f"| {same_wall:.1f} ({same_rows:,} rows stored; added {sorted(same_added)}) "
            f"| {one_s:.1f} (one ingest alone, process start included) | {same_wall / one_s:.2f} |",
            f"| two ingests of different {n // 4:,}-row files at once (s) | {pair_wall:.1f} "
            f"({pair_rows:,} rows) | {2 * one_s:.1f} (two alone, one after the other) "
            f"| {pair_wall / (2 * one_s):.2f} |",
            f"| rollback (ms, median of 3) | {small_rb * 1000:.0f} at {small_n:,} rows "
            f"| {big_rb * 1000:.0f} at {big_n:,} rows | {big_rb / small_rb:.2f} |",
            f"| filtered count at {n:,} rows (ms, best of 3; {ours_count:,} match) "
            f"| {ours_q * 1000:.0f} (`Lake.sql` over Lance) "
            f"| {plain_q * 1000:.0f} (DuckDB over a Parquet copy) | {ours_q / plain_q:.2f} |",
            "",
            f"Query: `{query}`.",
            "",
            "What the ingest ratio buys: the raw path parses in multithreaded C++ and stores "
            "whatever it finds; `Lake.ingest` checks every row (shape, types, empty fields, "
            "exact `file:line` errors), normalises the six input shapes into the core columns, "
            "hashes the canonical record for its `id` (SHA-256), drops rows already in the "
            "lake or earlier in the input and writes one version, all in one streaming pass. "
            "It also writes more: `records` stores every chat's rendered `text` next to its "
            "`messages`, plus `id`, `meta`, `source`, `batch` and a timestamp (the bytes "
            "row above).",
            "",
            "How: JSONL is read in 8 MiB blocks that Arrow's JSON reader parses and "
            "`curation/ingest/bulk.py` normalises with Arrow compute; the row-by-row normaliser, "
            "which defines the result and names the exact line of every error, only sees "
            "what the bulk path hands back (see docs/lake.md). Four stages overlap, each a "
            "block ahead of the next (`curation/ingest/pipeline.py`): Arrow parse; normalise and "
            "build the canonical forms; SHA-256 and dedup; Lance's encoding and write. Time "
            "per 1M rows, measured stage by stage on this data: Arrow parse 1.1-1.3s "
            "(1.7-2.0s CPU), normalise 0.7-1.1s, canonical forms 0.5s, SHA-256 0.7s (a "
            "hashlib loop: OpenSSL's SHA-256 holds the GIL for inputs this short), dedup "
            "0.1s, Lance encode+write of `records` 1.3-1.5s. Lance gets 64k-row batches "
            "(8k-row batches cost it 10% more).",
            "",
            "Memory: the stages hold a few blocks and their batches between them, and the "
            "ids seen (16 bytes each, in sorted NumPy runs). Lance's writer grows with the rows it has "
            "written of a nested column like `messages`, so ingest writes 262,144-row chunks, "
            "each with its own writer (`lance.fragment.write_fragments`), and commits them as "
            "one `LanceOperation.Append`: still one version, nothing visible before the "
            "commit. The multi-GB section below measures the bound.",
            "",
            "Concurrent writers: every write holds the lake's writer lock (an `flock`, or a "
            "lease object on S3) from reading the latest version to its commit, so a second "
            "ingest waits, then dedups against the first one's rows: the same file twice "
            "stores each row once, and the loser costs its own parse and hash (it re-reads "
            "the ids the winner wrote) rather than a failed commit and a retry.",
        ]
    )


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else None))
