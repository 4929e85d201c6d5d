"""`--where` takes one SQL expression, and values typed on the command line never become SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import Lake
from curation.testing import make_lake, write_jsonl
from tests.mixlake.helpers import Cli

ROWS = [{"text": f"row {i} about bread and the market"} for i in range(6)]
INJECTION = "1=1; DROP TABLE x"

WHERE_COMMANDS = [
    ["delete"],
    ["embed"],
    ["dedup", "exact"],
    ["pii"],
    ["decontaminate", "--against", "bench"],
    ["cluster"],
    ["tokens"],
    ["score", "quality_heuristic_v1"],
    ["search", "bread"],
    ["impact"],
]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return make_lake(tmp_path, {"web": ROWS, "bench": [{"text": "an eval row about bread"}]})


@pytest.mark.parametrize("command", WHERE_COMMANDS, ids=lambda c: c[0])
def test_where_with_two_statements_is_refused_and_nothing_changes(
    cli: Cli, lake: Lake, command: list[str]
) -> None:
    before = (lake.latest_version(), lake.records().count_rows())
    code, _, err = cli(*command, "--where", INJECTION, "--lake", lake.uri)
    assert code == 2, err
    assert err == (
        f"error: bad --where predicate {INJECTION!r}: it holds 2 SQL statements; "
        "give one boolean expression (no ';')\n"
    )
    again = Lake(lake.uri)
    assert (again.latest_version(), again.records().count_rows()) == before


def test_a_semicolon_inside_a_string_is_one_expression(cli: Cli, lake: Lake) -> None:
    code, _, err = cli("delete", "--where", "text = 'a; DROP TABLE x'", "--lake", lake.uri)
    assert code == 0, err
    assert "nothing matched" in err
    assert Lake(lake.uri).records().count_rows() == 7


def test_delete_where_still_deletes(cli: Cli, lake: Lake) -> None:
    code, _, err = cli("delete", "--where", "source = 'bench'", "--lake", lake.uri)
    assert code == 0, err
    assert "rows removed: 1" in err
    assert Lake(lake.uri).records().count_rows() == 6


def test_rejects_batch_is_a_value_not_sql(cli: Cli, lake: Lake, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": 42}\n')
    assert cli("ingest", str(bad), "-s", "bad", "--on-error", "skip", "--lake", lake.uri)[0] == 0
    code, _, err = cli("rejects", "--lake", lake.uri)
    assert code == 0 and "shown: 1" in err
    code, out, err = cli("rejects", "--batch", "x' OR batch LIKE '%", "--lake", lake.uri)
    assert code == 0, err
    assert "shown: 0" in err and "must be a string" not in out


def test_show_refuses_an_id_that_is_not_hex(cli: Cli, lake: Lake) -> None:
    code, _, err = cli("show", "x' OR id LIKE '%", "--lake", lake.uri)
    assert code == 2 and "ids are lowercase hex" in err


def test_decontaminate_against_a_source_with_a_quote(cli: Cli, tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"web": ROWS})
    lake.ingest(
        [write_jsonl(tmp_path / "o.jsonl", [{"text": "x " + ROWS[0]["text"]}])], source="o'hara"
    )
    code, _, err = cli("decontaminate", "--against", "o'hara", "--n", "4", "--lake", lake.uri)
    assert code == 0, err
    assert "contaminated: 6" in err  # every web row, not the eval row itself
