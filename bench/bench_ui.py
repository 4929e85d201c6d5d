"""UI benchmark: the records grid and facets on a 1M-row lake, against DuckDB directly.

Generated data (1M records by default; `MIXLAKE_BENCH_ROWS` overrides), three sources, a
float score and a bool flag added as columns by `curation.steps.apply`. Each figure is the
median of 5 runs of the UI's own code path (`mixlake.web.grid.records_page`,
`mixlake.web.facets.facets`) next to one DuckDB query answering the same question over the
same Lance dataset:

- grid page: 100 rows sorted by the score, at offset 0 and at offset rows/2, with a WHERE
  filter; DuckDB: `SELECT … ORDER BY score DESC LIMIT 100 OFFSET n` (text column included);
- facet refresh: every facet with one source filter; DuckDB: the same GROUP BY/histogram
  queries written by hand, once each;
- map load: the embedding map's body (`mixlake.web.mapview.map_body`) the first time (the
  PCA projection of a 32-dim `embedding` column computed and cached, then colours) and again
  (cached projection, coloured by source), and the "matches" refresh after a facet filter;
  DuckDB: reading the same columns (`id, embedding`; `source`; the filter's ids) to Arrow.
"""

from __future__ import annotations

import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

ROWS = 1_000_000
REPEAT = 5
WORDS = [
    "data",
    "lake",
    "model",
    "train",
    "eval",
    "mix",
    "river",
    "bank",
    "night",
    "morning",
    "coffee",
    "garden",
]


class _Score:
    """A cheap vectorised score and flag from the text length (so 1M rows take seconds)."""

    name = "bench_score_v1"
    input_columns: tuple[str, ...] = ("text",)

    def params(self) -> dict[str, Any]:
        return {}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("bench_score_v1", pa.float64()), ("bench_flag", pa.bool_())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = pc.utf8_length(batch.column("text")).cast(pa.float64())
        score = pc.divide(
            pc.bit_wise_and(pc.multiply(n, 2654435761.0).cast(pa.int64()), 1023), 1023.0
        )
        flag = pc.less(n, 40)
        return pa.RecordBatch.from_arrays([score, flag], schema=self.output_schema())


class _Embed:
    """A cheap 32-dim `embedding` from the text length and source letter (not a model: the
    map's cost is the column's size, not what the vectors mean)."""

    name = "embedding"
    input_columns: tuple[str, ...] = ("text",)
    DIM = 32

    def params(self) -> dict[str, Any]:
        return {"dim": self.DIM}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("embedding", pa.list_(pa.float32(), self.DIM))])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import numpy as np

        n = pc.utf8_length(batch.column("text")).to_numpy().astype(np.float32)
        head = pc.utf8_slice_codeunits(batch.column("text"), 0, 1)
        s = np.frombuffer(b"".join(x.encode() for x in head.to_pylist()), np.uint8)
        k = np.arange(self.DIM, dtype=np.float32)
        m = np.sin(np.outer(n / 9.0, k + 1) + s[:, None].astype(np.float32)).astype(np.float32)
        flat = pa.array(m.reshape(-1), pa.float32())
        arr = pa.FixedSizeListArray.from_arrays(flat, self.DIM)
        return pa.RecordBatch.from_arrays([arr], schema=self.output_schema())


def _lake(root: Path, rows: int) -> Any:
    import orjson

    from curation import Lake
    from curation.steps import apply

    lake = Lake.create(root / "lake")
    per = rows // 3
    for s, source in enumerate(("web", "chat", "code")):
        path = root / f"{source}.jsonl"
        with path.open("wb") as f:
            for i in range(per):
                words = " ".join(WORDS[(i * 7 + k + s) % len(WORDS)] for k in range(3 + i % 17))
                f.write(orjson.dumps({"text": f"{source} {i} {words}"}) + b"\n")
        lake.ingest([path], source=source)
    apply(_Score(), lake)
    apply(_Embed(), lake)
    return lake


def _map_rows(lake: Any, con: Any, chosen: list[Any]) -> list[tuple[str, float, float]]:
    """Map load cold (projection computed) and warm, and the filter refresh, against DuckDB
    reading the same columns."""
    from mixlake.web import embedmap, mapview

    version = lake.latest_version()
    cold = []
    for _ in range(3):
        embedmap._CACHE.clear()
        t = time.perf_counter()
        mapview.map_body(lake, version, "source", "", [])
        cold.append(time.perf_counter() - t)
    read = _median(lambda: con.sql("SELECT id, embedding FROM records").to_arrow_table())
    warm = _median(lambda: mapview.map_body(lake, version, "source", "", []))
    src = _median(lambda: con.sql("SELECT source FROM records").to_arrow_table())
    match = _median(lambda: mapview.map_body(lake, version, "", "", chosen, "match"))
    ids = _median(lambda: con.sql("SELECT id FROM records WHERE source = 'chat'").to_arrow_table())
    points = len(embedmap.projection(lake, version).ids)
    return [
        (f"map load, first ({points:,} points: PCA + body)", statistics.median(cold) * 1000, read),
        ("map load, cached projection, coloured by source", warm, src),
        ("map refresh after a facet filter (matches only)", match, ids),
    ]


def _median(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def run() -> str:
    """Build the lake, time the UI paths and DuckDB, return the Markdown section."""
    from mixlake.web import facets, grid
    from mixlake.web.facets import Filter
    from mixlake.web.sqlbox import locked_connection

    rows = int(os.environ.get("MIXLAKE_BENCH_ROWS", ROWS))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        lake = _lake(Path(tmp), rows)
        build = time.perf_counter() - t
        total = lake.records().count_rows()
        where = "bench_score_v1 > 0.2"
        con = duckdb.connect()
        con.register("records", lake.records())
        direct = (
            "SELECT id, source, kind, left(text, 160) AS text, bench_score_v1, bench_flag "
            f"FROM records WHERE {where} ORDER BY bench_score_v1 DESC, id LIMIT 100 OFFSET ?"
        )
        out = []
        for offset in (0, total // 2):
            page = functools.partial(
                grid.records_page, lake, None, where, 100, offset, sort="bench_score_v1", desc=True
            )
            ui = _median(page)
            db = _median(functools.partial(lambda o: con.execute(direct, [o]).fetchall(), offset))
            out.append((f"grid page, sorted by score, offset {offset:,}", ui, db))
        chosen = [Filter("source", "in", values=("chat",))]
        schema = lake.records().schema
        ui_con = locked_connection(lake)
        ui = _median(lambda: facets.facets(ui_con, schema, "", chosen))
        hand = [
            "SELECT source, count(*) FROM records GROUP BY 1",
            "SELECT kind, count(*) FROM records WHERE source = 'chat' GROUP BY 1",
            "SELECT bench_flag, count(*) FROM records WHERE source = 'chat' GROUP BY 1",
            "SELECT min(bench_score_v1), max(bench_score_v1) FROM records WHERE source = 'chat'",
            "SELECT least(19, floor(bench_score_v1 * 20))::INT AS b, count(*) FROM records "
            "WHERE source = 'chat' GROUP BY 1",
        ]
        db = _median(lambda: [con.execute(q).fetchall() for q in hand])
        out.append(("facet refresh (5 facets, one source filter)", ui, db))
        unfiltered = _median(lambda: grid.records_page(lake, None, "", 100, 0))
        out += _map_rows(lake, con, chosen)
    lines = [
        "## UI: grid, facets and the embedding map\n",
        f"`python -m bench.run ui` · {total:,} rows (built in {build:.0f} s) · median of "
        f"{REPEAT} · WHERE `{where}` on the grid pages.\n",
        "| query | UI code path (ms) | DuckDB directly (ms) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {ui:.0f} | {db:.0f} |" for name, ui, db in out]
    lines.append(f"| grid page, no filter, by id, offset 0 | {unfiltered:.0f} | — |")
    lines.append(
        "\nThe grid reads a page in two steps (ids by DuckDB, then those rows by Lance), so "
        "the text column is read for the 100 rows shown. The map's first load computes the "
        "PCA projection (two streaming passes over the vectors) and keeps it for that version; "
        "later loads and filter refreshes reuse it and send 16 bytes a point (4 bytes after a "
        "filter change).\n"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
