"""Machine output (`sql --format csv|json|jsonl|parquet`, `diff --ids`) is byte-exact in a pipe."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation import Lake
from curation.testing import make_lake, write_jsonl
from tests.mixlake.helpers import Cli, mixlake

# Long enough that any wrapping at 80 or 140 columns would show; quotes, commas, newlines, tabs,
# non-ASCII, and the Unicode line separators that `str.splitlines` splits on.
ROWS = [
    {
        "text": f"row {i:02d} "
        + ("a long line of words, with \"quotes\", commas and 'apostrophes' " * (i % 7 + 3))
        + "\nsecond line\ttabbed, ünïcödé 漢字 🙂\r\nthird\u2028line\u2029end "
        + "x" * (50 + 37 * i)
    }
    for i in range(50)
]
QUERY = "SELECT text FROM records ORDER BY text"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return make_lake(tmp_path_factory.mktemp("machine"), {"long": ROWS})


def _expected() -> list[dict[str, str]]:
    return sorted(({"text": r["text"]} for r in ROWS), key=lambda r: r["text"])


def test_json_in_a_pipe_is_one_parseable_array(lake: Lake) -> None:
    done = mixlake("sql", QUERY, "--format", "json", "--lake", lake.uri)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout) == _expected()


def test_jsonl_in_a_pipe_is_one_record_per_line(lake: Lake) -> None:
    done = mixlake("sql", QUERY, "--format", "jsonl", "--lake", lake.uri)
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode("utf-8")
    assert text.endswith("\n")
    assert [json.loads(line) for line in text.splitlines()] == _expected()


def test_csv_in_a_pipe_reads_back_exactly(lake: Lake) -> None:
    done = mixlake("sql", QUERY, "--format", "csv", "--lake", lake.uri)
    assert done.returncode == 0, done.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode("utf-8"), newline="")))
    assert len(rows) == 50
    assert rows == _expected()


def test_parquet_in_a_pipe_reads_back(lake: Lake) -> None:
    done = mixlake("sql", QUERY, "--format", "parquet", "--lake", lake.uri)
    assert done.returncode == 0, done.stderr.decode()
    assert pq.read_table(io.BytesIO(done.stdout)).to_pylist() == _expected()


def test_summary_goes_to_stderr_only(lake: Lake) -> None:
    done = mixlake("sql", "SELECT 1 AS one", "--format", "csv", "--lake", lake.uri)
    assert done.stdout == b'"one"\n1\n'
    assert b"rows: 1" in done.stderr


def test_out_file_gets_the_same_bytes(lake: Lake, tmp_path: Path) -> None:
    for fmt in ("csv", "json", "jsonl"):
        piped = mixlake("sql", QUERY, "--format", fmt, "--lake", lake.uri).stdout
        target = tmp_path / f"out.{fmt}"
        done = mixlake("sql", QUERY, "--format", fmt, "--out", str(target), "--lake", lake.uri)
        assert done.returncode == 0 and done.stdout == b""
        assert target.read_bytes() == piped


def test_out_suffix_names_the_format(cli: Cli, lake: Lake, tmp_path: Path) -> None:
    target = tmp_path / "rows.parquet"
    code, _, err = cli("sql", QUERY, "--out", str(target), "--lake", lake.uri)
    assert code == 0, err
    assert pq.read_table(target).num_rows == 50
    code, _, err = cli("sql", QUERY, "--out", str(tmp_path / "rows.txt"), "--lake", lake.uri)
    assert code == 2 and "give --format" in err


def test_nested_columns_in_csv_are_json_text(cli: Cli, lake: Lake) -> None:
    query = "SELECT [1, 2] AS xs, {'k': 'v'} AS s, 'plain' AS p"
    code, out, err = cli("sql", query, "--format", "csv", "--lake", lake.uri)
    assert code == 0, err
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert json.loads(row["xs"]) == [1, 2] and json.loads(row["s"]) == {"k": "v"}


def test_diff_ids_are_raw_lines(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"a": ROWS[:3]})
    lake.tag("before")
    lake.ingest([write_jsonl(tmp_path / "b.jsonl", ROWS[3:8])], source="b")
    done = mixlake("diff", "before", "latest", "--ids", "--lake", lake.uri)
    assert done.returncode == 0, done.stderr.decode()
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith(("+ ", "- "))]
    ids = set(lake.sql("SELECT id FROM records WHERE source = 'b'").column("id").to_pylist())
    assert {line[2:] for line in lines} == ids and len(lines) == 5
