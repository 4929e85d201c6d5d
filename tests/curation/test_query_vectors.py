"""SQL predicates on vector (fixed-size list) columns, and filter pushdown into Lance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import lance
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curation import Lake, sql
from curation.query import connect
from curation.steps.embed import embed
from curation.testing import FakeEmbedder, make_lake

ROWS = [{"text": f"note {i} about {['cats', 'dogs', 'tea'][i % 3]}"} for i in range(30)]


@pytest.fixture(scope="module")
def vector_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """30 rows from two sources; the 20 about cats or tea have an 8-dim `embedding`."""
    tmp_path = tmp_path_factory.mktemp("vectors")
    lake = make_lake(tmp_path, {"notes": ROWS[:20], "web": ROWS[20:]})
    embed(lake, FakeEmbedder(8), where="text NOT LIKE '%dogs%'")
    return lake


def _expected(lake: Lake, query: str) -> list[tuple[Any, ...]]:
    """The answer from an in-memory Arrow copy of `records` (no Lance scan involved)."""
    con = duckdb.connect()
    con.register("records", lake.records().to_table())
    return con.sql(query).fetchall()


@pytest.mark.parametrize(
    "where",
    [
        "embedding IS NOT NULL",
        "embedding IS NULL",
        "len(embedding) > 0",
        "embedding[2] < 0",
        "embedding[1] <> 0 AND embedding IS NOT NULL",
        "embedding IS NOT NULL AND source = 'web'",
        "embedding IS NULL AND id IS NOT NULL AND kind = 'text'",
        "embedding IS NULL OR text LIKE '%tea%'",
    ],
)
@pytest.mark.parametrize("select", ["count(*)", "id", "id, embedding, source"])
def test_predicates_on_a_vector_column(vector_lake: Lake, where: str, select: str) -> None:
    query = f"SELECT {select} FROM records WHERE {where} ORDER BY ALL"
    assert connect(vector_lake).sql(query).fetchall() == _expected(vector_lake, query)


def test_embedding_is_not_null_counts_embedded_rows(vector_lake: Lake) -> None:
    query = "SELECT count(*) AS n FROM records WHERE embedding IS NOT NULL"
    assert sql(vector_lake, query).column("n").to_pylist() == [20]


def test_vector_column_added_with_lance(tmp_path: Path) -> None:
    """Any fixed-size list column, not only the embed step's."""
    lake = make_lake(tmp_path, {"notes": ROWS[:4]})
    ids = lake.records().to_table(columns=["id"]).column("id").to_pylist()
    vectors = pa.array([[1.0, 2.0] if i % 2 else None for i in range(4)], pa.list_(pa.float32(), 2))
    lake.records().merge(pa.table({"id": ids, "vec": vectors}), "id")
    query = "SELECT count(*) AS n FROM records WHERE vec IS NULL AND vec[2] IS NULL"
    assert sql(lake, query).column("n").to_pylist() == [2]


class _LanceScans:
    """Records the (columns, filter) of every scan that reaches Lance."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[list[str] | None, Any]] = []
        original = lance.LanceDataset.scanner

        def spy(ds: Any, columns: Any = None, filter: Any = None, **kwargs: Any) -> Any:
            self.calls.append((columns, filter))
            return original(ds, columns=columns, filter=filter, **kwargs)

        monkeypatch.setattr(lance.LanceDataset, "scanner", spy)


def test_scalar_filters_are_still_pushed_into_lance(
    vector_lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = _LanceScans(monkeypatch)
    got = sql(vector_lake, "SELECT count(*) AS n FROM records WHERE source = 'web'")
    assert got.column("n").to_pylist() == [10]
    [(_, pushed)] = scans.calls
    assert isinstance(pushed, pc.Expression) and "source" in str(pushed)


def test_vector_filters_read_only_the_columns_they_need(
    vector_lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = _LanceScans(monkeypatch)
    query = "SELECT id FROM records WHERE embedding IS NOT NULL AND source = 'web'"
    assert len(sql(vector_lake, query)) == 7
    [(columns, pushed)] = scans.calls
    assert pushed is None
    assert sorted(columns or []) == ["embedding", "id", "source"]
