"""Search: semantic with the column's own model and a prefilter, BM25 full text, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import CurationError, Lake
from curation.search import search
from curation.steps.embed import embed
from curation.testing import FakeEmbedder, make_lake

TEXTS = [
    "I love my cat and her soft whiskers",
    "rockets fly to orbit around the planet",
    "pasta with garlic and olive oil tonight",
    "my dog loves long walks in the park",
    "the galaxy has many bright stars",
]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = make_lake(
        tmp_path,
        {"s": [{"text": t} for t in TEXTS], "t": [{"text": "cat food is expensive these days"}]},
    )
    embed(lake, FakeEmbedder(32), index_min_rows=1000)
    return lake


def test_semantic_uses_column_model(lake: Lake) -> None:
    hits = search(lake, "cat whiskers", k=2)
    assert hits[0].snippet == TEXTS[0]
    assert hits[0].score > hits[1].score and hits[0].source == "s"
    assert len(hits[0].id) == 32


def test_semantic_prefilter(lake: Lake) -> None:
    hits = search(lake, "cat whiskers", k=5, where="source = 't'")
    assert [h.source for h in hits] == ["t"]


def test_semantic_with_index(tmp_path: Path) -> None:
    rows = [
        {"text": f"{w} story number {i}"} for i in range(40) for w in ("cat", "rocket", "pasta")
    ]
    lake = make_lake(tmp_path, {"s": rows})
    assert embed(lake, FakeEmbedder(32), index_min_rows=100).indexed
    hits = search(lake, "rocket story", k=5)
    assert len(hits) == 5 and all("rocket" in h.snippet for h in hits)


def test_full_text_bm25(lake: Lake) -> None:
    version = lake.latest_version()
    hits = search(lake, "garlic pasta", k=3, fts=True)
    assert hits[0].snippet == TEXTS[2] and hits[0].score > 0
    assert lake.latest_version() == version + 1 and lake.log()[0].operation == "index"
    again = search(lake, "cat", k=5, fts=True, where="source = 's'")
    assert [h.snippet for h in again] == [TEXTS[0]]
    assert lake.latest_version() == version + 1  # index reused


def test_errors(tmp_path: Path, lake: Lake) -> None:
    with pytest.raises(CurationError, match="empty"):
        search(lake, "  ")
    with pytest.raises(CurationError, match="bad --where"):
        search(lake, "cat", where="nonexistent_column = 1")
    bare = make_lake(tmp_path / "bare", {"s": [{"text": "x"}]})
    with pytest.raises(CurationError, match="mixlake embed"):
        search(bare, "cat")


def test_old_version_uses_its_own_model(lake: Lake) -> None:
    old = lake.latest_version()
    embed(lake, FakeEmbedder(16), replace=True)
    query = "my cat soft whiskers"
    assert search(lake, query, k=1)[0].snippet == TEXTS[0]  # 16-dim query
    assert search(lake, query, k=1, ref=old)[0].snippet == TEXTS[0]  # 32-dim query
