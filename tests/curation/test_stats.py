"""Stats: the original per-source table, and the enrichment stats and charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.stats import enrichment_stats, plot_all, stats
from curation.steps import apply
from curation.steps.dedup import dedup
from curation.steps.pii_step import pii
from curation.testing import make_lake


class WordsAndQuality:
    """Stands in for the tokens and heuristic steps: words as tokens, a score, reasons."""

    name = "n_tokens"
    input_columns: tuple[str, ...] = ("text",)

    def params(self) -> dict[str, Any]:
        return {}

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("n_tokens", pa.int32()),
                pa.field("quality_heuristic_v1", pa.float32()),
                pa.field("quality_heuristic_v1_reasons", pa.list_(pa.string())),
            ]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        words = [len(t.split()) for t in texts]
        return pa.RecordBatch.from_arrays(
            [
                pa.array(words, pa.int32()),
                pa.array([min(1.0, w / 10) for w in words], pa.float32()),
                pa.array([["too_short"] if w < 3 else [] for w in words], pa.list_(pa.string())),
            ],
            schema=self.output_schema(),
        )


ROWS = {
    "a": [
        {"text": "hello world"},
        {"text": "Hello, world!"},
        {"text": "call me at 415-555-2671 tonight please"},
    ],
    "b": [{"text": "one two three four five six seven eight nine ten"}, {"text": "short"}],
}


def test_enrichment_stats_and_plots(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, ROWS)
    empty = enrichment_stats(lake)
    assert (empty.tokens, empty.scores, empty.rates) == ((), (), ())
    apply(WordsAndQuality(), lake)
    dedup(lake, "exact")
    pii(lake)
    s = enrichment_stats(lake)
    assert [(t.source, t.rows, t.tokens) for t in s.tokens] == [("a", 3, 10), ("b", 2, 11)]
    (score,) = s.scores
    assert score.column == "quality_heuristic_v1" and score.rows == 5 and score.high == 1.0
    assert s.reasons == (("quality_heuristic_v1_reasons", "too_short", 3),)
    rates = {r.name: (r.flagged, r.checked) for r in s.rates}
    assert rates["duplicate (any method)"] == (1, 5)
    assert rates["has PII"] == (1, 5)
    assert "contaminated" not in rates
    paths = plot_all(lake, tmp_path / "plots")
    assert {p.name for p in paths} == {
        "lengths.png",
        "tokens.png",
        "quality_heuristic_v1.png",
        "rates.png",
    }
    assert all(p.stat().st_size > 1000 for p in paths)
    # The original per-source table still works on the enriched lake.
    assert [(x.group, x.rows) for x in stats(lake)] == [("a", 3), ("b", 2)]
