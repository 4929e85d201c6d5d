"""`--json`: every table and the closing summary as one JSON object per line on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from curation import Lake
from curation.testing import make_lake
from tests.conftest import SAMPLE_ROWS
from tests.mixlake.helpers import Cli


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = make_lake(tmp_path, {"sample": SAMPLE_ROWS})
    lake.tag("first")
    return lake


def _lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines, "no JSON on stdout"
    assert all(line["type"] in ("table", "summary") for line in lines)
    assert lines[-1]["type"] == "summary"
    assert all(line["type"] == "table" for line in lines[:-1])
    return lines


@pytest.mark.parametrize(
    "args",
    [
        ["log"],
        ["tags"],
        ["head", "-n", "2"],
        ["stats"],
        ["diff", "1", "latest"],
        ["sql", "SELECT kind, count(*) AS n FROM records GROUP BY 1 ORDER BY 1"],
        ["rejects"],
        ["mix", "ls"],
        ["runs"],
        ["evals"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_every_line_is_a_table_or_the_summary(cli: Cli, lake: Lake, args: list[str]) -> None:
    code, out, err = cli(*args, "--json", "--lake", lake.uri)
    assert code == 0, err
    _lines(out)


def test_shape_of_tables_and_summary(cli: Cli, lake: Lake) -> None:
    query = "SELECT kind, count(*) AS n FROM records GROUP BY 1 ORDER BY 1"
    code, out, _ = cli("--json", "sql", query, "--lake", lake.uri)
    assert code == 0
    table, summary = _lines(out)
    assert table["columns"] == ["kind", "n"]
    assert table["rows"] == [["chat", 4], ["preference", 1], ["text", 1]]
    assert summary == {"type": "summary", "title": "sql", "values": {"rows": 3, "version": 2}}


def test_text_for_people_goes_to_stderr(cli: Cli, lake: Lake) -> None:
    record = lake.sql("SELECT min(id) AS i FROM records").column("i")[0].as_py()
    code, out, err = cli("show", record, "--json", "--lake", lake.uri)
    assert code == 0
    (summary,) = _lines(out)
    assert summary["values"] == {"id": record, "version": 2}
    assert "source" in err  # the record's fields, printed for people


def test_json_mode_ends_with_the_invocation(cli: Cli, lake: Lake) -> None:
    assert cli("log", "--json", "--lake", lake.uri)[0] == 0
    code, out, err = cli("log", "--lake", lake.uri)
    assert code == 0
    assert not out.startswith("{") and "records versions" in out and "✓ log" in err
