"""SQL over the lake at any version, and dataset statistics."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curation import CurationError, Lake, rollback, sql, stats
from curation.query import connect
from curation.stats import plot_lengths
from curation.testing import make_lake, write_jsonl
from tests.conftest import SAMPLE_ROWS


@pytest.fixture
def lake3(tmp_path: Path) -> Lake:
    """v2: six sample rows (tagged `first`); v3: +3 web texts."""
    lake = make_lake(tmp_path, {"sample": SAMPLE_ROWS})
    lake.tag("first")
    web = [{"text": "a" * n} for n in (10, 100, 1000)]
    lake.ingest([write_jsonl(tmp_path / "web.jsonl", web)], source="web")
    return lake


def _count(lake: Lake, ref: int | str | None = None) -> int:
    return int(sql(lake, "SELECT count(*) AS n FROM records", ref).column("n")[0].as_py())


def test_sql_at_latest_version_and_tag(lake3: Lake) -> None:
    assert _count(lake3) == 9
    assert _count(lake3, 2) == 6
    assert _count(lake3, "first") == 6
    assert _count(lake3, "latest") == 9


def test_sql_group_by_and_arrow_to_polars(lake3: Lake) -> None:
    table = lake3.sql("SELECT source, kind, count(*) AS n FROM records GROUP BY ALL ORDER BY ALL")
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    assert frame.rows() == [
        ("sample", "chat", 4),
        ("sample", "preference", 1),
        ("sample", "text", 1),
        ("web", "text", 3),
    ]


def test_sql_over_nested_messages(lake3: Lake) -> None:
    got = lake3.sql(
        "SELECT m.content FROM (SELECT unnest(messages) AS m FROM records) "
        "WHERE m.role = 'assistant' ORDER BY 1"
    )
    assert "Paris." in got.column(0).to_pylist()


def test_sql_sees_other_tables(lake3: Lake, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": 1}\n')
    lake3.ingest([bad], source="bad", on_error="skip")
    rejects = lake3.sql("SELECT line, reason FROM rejects").to_pylist()
    assert rejects == [{"line": 1, "reason": "field 'text' must be a string, got int"}]
    ops = (
        lake3.sql("SELECT operation FROM journal WHERE table_name = 'records' ORDER BY version")
        .column(0)
        .to_pylist()
    )
    assert ops == ["init", "ingest", "ingest"]
    sealed = lake3.sql("SELECT operation FROM journal WHERE table_name = 'rejects'")
    assert sealed.column(0).to_pylist() == ["create", "rejects"]


def test_sql_after_rollback_reads_restored_state(lake3: Lake) -> None:
    rollback(lake3, "first")
    assert _count(lake3) == 6
    assert _count(lake3, 3) == 9


def test_sql_error_is_one_line(lake3: Lake) -> None:
    with pytest.raises(CurationError) as info:
        sql(lake3, "SELECT nope FROM records")
    assert str(info.value).startswith("SQL error: ")
    assert "nope" in str(info.value)
    assert "\n" not in str(info.value)


def test_sql_unknown_version(lake3: Lake) -> None:
    with pytest.raises(CurationError, match="no version 12"):
        sql(lake3, "SELECT 1", 12)


def test_connect_gives_a_duckdb_connection(lake3: Lake) -> None:
    con = connect(lake3, "first")
    assert con.execute("SELECT count(*) FROM records").fetchone() == (6,)


def test_stats_by_source(lake3: Lake) -> None:
    by_source = {s.group: s for s in stats(lake3)}
    assert set(by_source) == {"sample", "web"}
    web = by_source["web"]
    assert (web.rows, web.text, web.chat, web.preference) == (3, 3, 0, 0)
    assert web.chars == 1110
    assert web.max_chars == 1000
    assert web.p50_chars == 100
    sample = by_source["sample"]
    assert (sample.rows, sample.text, sample.chat, sample.preference) == (6, 1, 4, 1)
    assert sample.messages == 2 + 2 + 2 + 2 + 2


def test_stats_overall_and_at_tag(lake3: Lake) -> None:
    (overall,) = stats(lake3, by=None)
    assert (overall.group, overall.rows) == ("all", 9)
    (first,) = stats(lake3, "first", by=None)
    assert first.rows == 6


def test_stats_plot_writes_png(lake3: Lake, tmp_path: Path) -> None:
    out = plot_lengths(lake3, tmp_path / "plots" / "lengths.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
