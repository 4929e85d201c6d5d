"""The shipped row/bulk agreement check fails when the paths differ or nothing is compared."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from curation.ingest.read_jsonl import jsonl_table
from curation.testing import assert_paths_agree
from curation.testing.agreement import bulk_outcomes, row_outcome


def _jsonl(rows: list[dict[str, object]]) -> pa.Table:
    parsed = jsonl_table(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    assert parsed is not None
    return parsed[0]


def test_counts_the_rows_compared() -> None:
    rows = [{"text": "a", "n": 1}, {"text": ""}, {"prompt": "p", "completion": "c"}]
    table = _jsonl(rows)
    assert assert_paths_agree(table, rows, json_source=True) == 2  # the blank text goes back
    table = pa.Table.from_struct_array(pa.array(rows))  # columns: the union of the rows' keys
    assert assert_paths_agree(table, json_source=False) == 2


def test_names_the_first_row_that_differs() -> None:
    rows = [{"text": "same"}, {"text": "bulk sees this"}, {"text": "and this"}]
    told = [rows[0], {"text": "the row path sees this"}, {"text": "and that"}]
    with pytest.raises(AssertionError, match=r"row 1 differs between the paths"):
        assert_paths_agree(_jsonl(rows), told, json_source=True)


def test_a_different_id_alone_is_a_difference() -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}]}]
    outcome = bulk_outcomes(_jsonl(rows), json_source=True)[0]
    assert isinstance(outcome, tuple) and outcome[-1] == row_outcome(rows[0])[-1]
    swapped = [{"messages": [{"role": "assistant", "content": "q"}]}]
    with pytest.raises(AssertionError, match="row 0 differs"):
        assert_paths_agree(_jsonl(rows), swapped, json_source=True)


def test_refuses_to_pass_comparing_nothing() -> None:
    rows = [{"text": ""}, {"messages": []}]  # both rejected: the bulk path hands both back
    with pytest.raises(AssertionError, match="nothing was compared"):
        assert_paths_agree(_jsonl(rows), rows, json_source=True)
    with pytest.raises(AssertionError, match="nothing was compared"):
        assert_paths_agree(pa.table({"text": pa.array([], pa.string())}), json_source=False)


def test_rows_must_match_the_table() -> None:
    with pytest.raises(AssertionError, match="2 rows for a table of 1"):
        assert_paths_agree(_jsonl([{"text": "a"}]), [{"text": "a"}] * 2, json_source=True)


def test_the_row_path_rejection_is_its_reason() -> None:
    assert row_outcome({"text": " "}).startswith("rejected: ")
