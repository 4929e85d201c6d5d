"""Dedup: exact, near and semantic groups, representatives by quality, `is_dup`, reruns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from curation import CurationError, Lake
from curation.steps import apply
from curation.steps.dedup import ExactDedup, dedup, normalize_text
from curation.steps.embed import embed
from curation.testing import FakeEmbedder, make_lake, write_jsonl

BASE = (
    "the committee met on tuesday to discuss the new budget for the city parks and decided "
    "to plant three hundred trees along the river before the summer festival begins"
)
ROWS = [
    {"text": "Hello, World!"},
    {"text": "hello   world"},
    {"text": "HELLO WORLD."},
    {"text": BASE},
    {"text": BASE.replace("three hundred", "four hundred")},
    {"text": "A completely different sentence about astronomy and distant galaxies."},
    {"text": "Yet another unrelated line on cooking pasta with garlic and olive oil."},
]


def by_text(lake: Lake, *columns: str) -> dict[str, dict[str, Any]]:
    table = lake.dataset("records").to_table(columns=["id", "text", *columns])
    return {r["text"]: r for r in table.to_pylist()}


def test_normalize_text() -> None:
    assert normalize_text("  Hello,\tWORLD!! ") == "hello world"


def test_exact_groups_keep_smallest_id(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS})
    report = dedup(lake, "exact")
    assert (report.groups, report.rows_in_groups, report.rows_marked) == (1, 3, 2)
    rows = by_text(lake, "is_dup_exact", "dup_group_exact", "is_dup")
    hello = [rows[t] for t in ("Hello, World!", "hello   world", "HELLO WORLD.")]
    assert {r["dup_group_exact"] for r in hello} == {0}
    keep = min(hello, key=lambda r: r["id"])
    assert [r["is_dup_exact"] for r in hello] == [r is not keep for r in hello]
    assert rows[BASE]["dup_group_exact"] is None and rows[BASE]["is_dup_exact"] is False
    assert report.is_dup_rows == 2


def test_near_groups_one_word_edits_only(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS})
    report = dedup(lake, "near", threshold=0.5, shingle=3)
    rows = by_text(lake, "dup_group_near")
    near_group = rows[BASE]["dup_group_near"]
    assert near_group is not None
    assert rows[BASE.replace("three hundred", "four hundred")]["dup_group_near"] == near_group
    assert rows[ROWS[5]["text"]]["dup_group_near"] is None
    assert report.groups == 2  # the hello-world rows normalise to one shingle set too


def test_is_dup_is_any_method_and_rerun_is_noop(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS})
    dedup(lake, "exact")
    near = dedup(lake, "near", threshold=0.5, shingle=3)
    assert near.is_dup_rows == 3  # two hello-world copies + one budget edit
    version = lake.latest_version()
    again = dedup(lake, "near", threshold=0.5, shingle=3)
    assert again.step.no_op and again.groups == 2 and lake.latest_version() == version
    with pytest.raises(CurationError, match="--replace"):
        dedup(lake, "near", threshold=0.9, shingle=3)
    replaced = dedup(lake, "near", threshold=0.95, shingle=3, replace=True)
    assert replaced.groups == 1 and replaced.is_dup_rows == 2


class QualityStub:
    """Stands in for the heuristic scorer: more spaces, higher quality."""

    name = "quality_heuristic_v1"
    input_columns: tuple[str, ...] = ("text",)

    def params(self) -> dict[str, Any]:
        return {}

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field(self.name, pa.float64())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        scores = [t.count(" ") / 100 for t in batch.column("text").to_pylist()]
        return pa.RecordBatch.from_arrays(
            [pa.array(scores, pa.float64())], schema=self.output_schema()
        )


def test_representative_is_highest_quality(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS})
    apply(QualityStub(), lake)
    report = dedup(lake, "exact")
    assert report.step.version is not None
    rows = by_text(lake, "is_dup_exact")
    # "hello   world" has the most spaces, so it is kept whatever its id.
    assert rows["hello   world"]["is_dup_exact"] is False
    assert rows["Hello, World!"]["is_dup_exact"] is True
    assert rows["HELLO WORLD."]["is_dup_exact"] is True
    from curation.steps import column_provenance

    field = lake.dataset("records").schema.field("is_dup_exact")
    assert column_provenance(field)["params"]["rank_by"] == "quality_heuristic_v1"


def test_semantic_within_clusters(tmp_path: Path) -> None:
    rows = [
        {"text": "red apples grow on tall trees in autumn"},
        {"text": "in autumn tall trees grow red apples on"},  # same words: cosine 1
        {"text": "quantum computers use qubits for computation"},
        {"text": "the river flows quietly past the old mill"},
    ]
    lake = make_lake(tmp_path, {"s": rows})
    with pytest.raises(CurationError, match="mixlake embed"):
        dedup(lake, "semantic")
    embed(lake, FakeEmbedder(32))
    report = dedup(lake, "semantic", threshold=0.99, clusters=2)
    assert (report.groups, report.rows_marked) == (1, 1)
    marks = by_text(lake, "dup_group_semantic")
    assert (
        marks[rows[0]["text"]]["dup_group_semantic"] == marks[rows[1]["text"]]["dup_group_semantic"]
    )
    assert marks[rows[2]["text"]]["dup_group_semantic"] is None
    # Rows embedded later are left null, then filled by a plain rerun.
    lake.ingest(
        [write_jsonl(tmp_path / "more.jsonl", [{"text": "red apples grow on tall trees"}])],
        source="s",
    )
    embed(lake, FakeEmbedder(32), where="text = 'red apples grow on tall trees'")
    assert (
        by_text(lake, "is_dup_semantic")["red apples grow on tall trees"]["is_dup_semantic"] is None
    )
    again = dedup(lake, "semantic", threshold=0.99, clusters=2)
    assert again.step.rows_computed == 1


def test_where_limits_rows_and_bad_threshold(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS})
    report = dedup(lake, "exact", where="text != 'HELLO WORLD.'")
    assert report.rows_in_groups == 2
    rows = by_text(lake, "is_dup_exact", "is_dup")
    assert rows["HELLO WORLD."]["is_dup_exact"] is None and rows["HELLO WORLD."]["is_dup"] is None
    with pytest.raises(CurationError, match="threshold"):
        dedup(lake, "near", threshold=1.5)
    with pytest.raises(CurationError, match="unknown dedup method"):
        dedup(lake, "fuzzy")


class _CrashingExact(ExactDedup):
    """Dies on the second batch, like a Ctrl-C in the middle of the step."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return super().__call__(batch)


def test_interrupted_dedup_resumes(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS})
    version = lake.latest_version()
    with pytest.raises((KeyboardInterrupt, CurationError)):
        apply(_CrashingExact(), lake, batch_size=3)
    assert lake.latest_version() == version
    report = apply(ExactDedup(), lake, batch_size=3)
    assert report.resumed and report.rows_computed == len(ROWS) - 3  # first batch reused
    marks = by_text(lake, "is_dup_exact")
    assert sum(bool(r["is_dup_exact"]) for r in marks.values()) == 2
