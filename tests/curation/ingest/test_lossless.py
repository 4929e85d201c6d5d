"""Lossless ingest: every field of an input survives exactly somewhere, or the row is refused.

Each test is a reproduction from issue 11 ("silent data loss at ingest"): message fields,
duplicate keys, `--map` conflicts, big integers, CSV quoting, Parquet NaN.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import CurationError, Lake, list_rejects
from curation.ingest.row import RowRejected, normalize_row, parse_mapping
from curation.lossless import MESSAGE_FIELDS_KEY, loads
from curation.schema import record_id
from curation.testing import assert_paths_agree, write_jsonl
from curation.testing.agreement import bulk_outcomes

TOOL_CALL = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]


def _records(lake: Lake) -> list[dict[str, Any]]:
    return lake.records().to_table().to_pylist()


def _ingest_lines(lake: Lake, tmp_path: Path, *lines: str, **options: Any) -> Any:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return lake.ingest([path], source="t", **options)


def test_message_fields_are_kept_in_meta_aligned_with_the_messages(
    lake: Lake, tmp_path: Path
) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "Weather?", "name": "ann"},
            {"role": "assistant", "content": "", "tool_calls": TOOL_CALL, "weight": 0},
            {"role": "tool", "content": "sunny", "tool_call_id": "c1", "extra": None},
            {"role": "assistant", "content": "Sunny."},
        ],
        "topic": "w",
    }
    # Enough plain rows that the file goes through the bulk path too.
    rows = [row] + [{"text": f"plain {i}"} for i in range(50)]
    lake.ingest([write_jsonl(tmp_path / "a.jsonl", rows)], source="t")
    (got,) = [r for r in _records(lake) if r["kind"] == "chat"]
    meta = loads(got["meta"])
    assert meta["topic"] == "w"
    assert meta[MESSAGE_FIELDS_KEY] == [
        {"name": "ann"},
        {"tool_calls": TOOL_CALL, "weight": 0},
        {"tool_call_id": "c1"},  # a null field counts as absent, here too
        None,
    ]
    # The extra fields are content: they are part of the id, so a chat that differs only
    # in its tool calls is another record (not a duplicate that would drop them).
    plain = record_id(
        "chat", got["text"], [(m["role"], m["content"]) for m in got["messages"]], None
    )
    assert got["id"] != plain


def test_ids_of_rows_without_message_fields_do_not_change(lake: Lake, tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"text": "t", "x": 1},
    ]
    lake.ingest([write_jsonl(tmp_path / "b.jsonl", rows)], source="t")
    ids = {r["id"] for r in _records(lake)}
    assert ids == {
        record_id("chat", "q\n\na", (("user", "q"), ("assistant", "a")), None),
        record_id("text", "t", None, None),
    }


def test_sharegpt_message_keeps_an_unused_role_key(lake: Lake, tmp_path: Path) -> None:
    row = {"conversations": [{"from": "human", "value": "hi", "role": None, "lang": "en"}]}
    n = normalize_row(row)
    assert loads(n.meta or "{}")[MESSAGE_FIELDS_KEY] == [{"lang": "en"}]
    both = {"messages": [{"role": "user", "from": "human", "content": "c", "value": "v"}]}
    assert loads(normalize_row(both).meta or "{}")[MESSAGE_FIELDS_KEY] == [
        {"from": "human", "value": "v"}
    ]


def test_input_using_a_reserved_key_is_refused() -> None:
    with pytest.raises(RowRejected, match=r"'mixlake\.message_fields' is reserved"):
        normalize_row({"text": "t", MESSAGE_FIELDS_KEY: [1]})
    with pytest.raises(RowRejected, match=r"'mixlake\.float' is reserved"):
        normalize_row({"text": "t", "x": {"mixlake.float": "NaN"}})


def test_preference_lists_keep_everything_or_are_refused() -> None:
    base = {"prompt": [{"role": "user", "content": "p"}], "system": "s"}
    ok = normalize_row({**base, "chosen": "a", "rejected": "b"})
    assert loads(ok.meta or "{}") == {"system": "s"}  # a message-list prompt: system kept
    with pytest.raises(RowRejected, match="must hold one assistant message"):
        normalize_row(
            {
                **base,
                "chosen": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "a"}],
                "rejected": "b",
            }
        )
    named = normalize_row(
        {**base, "chosen": [{"role": "assistant", "content": "a", "name": "x"}], "rejected": "b"}
    )
    assert loads(named.meta or "{}")[MESSAGE_FIELDS_KEY] == [None, {"name": "x"}]


@pytest.mark.parametrize(
    "line",
    [
        '{"text": "a", "text": "b"}',
        '{"messages": [{"role": "user", "content": "x", "role": "bot"}]}',
    ],
)
def test_duplicate_keys_are_an_error_or_a_reject(lake: Lake, tmp_path: Path, line: str) -> None:
    good = '{"text": "fine"}'
    with pytest.raises(CurationError, match=r"in\.jsonl:2: duplicate key '(text|role)'"):
        _ingest_lines(lake, tmp_path, good, line)
    assert lake.records().count_rows() == 0
    report = _ingest_lines(lake, tmp_path, good, line, on_error="skip")
    assert (report.rows_added, report.rejected) == (1, 1)
    assert "duplicate key" in list_rejects(lake).column("reason")[0].as_py()


def test_map_onto_an_existing_field_is_refused(lake: Lake, tmp_path: Path) -> None:
    lines = ['{"body": "b1"}'] * 1 + ['{"body": "b2", "text": "own"}']
    with pytest.raises(CurationError, match=r":2: --map text=body would overwrite"):
        _ingest_lines(lake, tmp_path, *lines, mapping={"text": "body"})
    assert lake.records().count_rows() == 0


def test_map_conflicts_in_the_options_are_errors() -> None:
    with pytest.raises(CurationError, match="--map text= is given twice"):
        parse_mapping(["text=a", "text=b"])
    with pytest.raises(CurationError, match="map one field twice"):
        parse_mapping(["text=a", "prompt=a"])
    assert parse_mapping(["text=a", "prompt=b"]) == {"text": "a", "prompt": "b"}


def test_python_mapping_of_one_field_twice_is_refused(lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(CurationError, match="map one field twice"):
        _ingest_lines(lake, tmp_path, '{"a": "x"}', mapping={"text": "a", "prompt": "a"})


def test_integers_past_64_bits_keep_their_digits(lake: Lake, tmp_path: Path) -> None:
    big = 123456789012345678901234567890
    lines = [
        f'{{"text": "a", "n": {big}, "m": [{-big}], "u": 18446744073709551615, "f": 1.5}}',
        '{"text": "b", "n": 1}',
    ]
    _ingest_lines(lake, tmp_path, *lines)
    metas = {r["text"]: r["meta"] for r in _records(lake)}
    assert str(big) in metas["a"] and str(-big) in metas["a"]
    assert loads(metas["a"]) == {"n": big, "m": [-big], "u": 2**64 - 1, "f": 1.5}


def test_csv_stray_quote_is_an_error_not_a_merged_record(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('text,lang\nfirst,en\n"stray,en\nthird,en\nfourth,en\n')
    with pytest.raises(CurationError, match=r"q\.csv:3: bad CSV quoting: a quote is never closed"):
        lake.ingest([path], source="t")
    assert lake.records().count_rows() == 0
    report = lake.ingest([path], source="t", on_error="skip")
    assert (report.rows_added, report.rejected) == (1, 1)


def test_csv_text_after_a_closing_quote_and_short_rows(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('text,lang\n"a"b,en\nshort\nok,en\n')
    report = lake.ingest([path], source="t", on_error="skip")
    assert (report.rows_added, report.rejected) == (1, 2)
    reasons = sorted(list_rejects(lake).column("reason").to_pylist())
    assert reasons[0].startswith("1 fewer field(s)") and "bad CSV quoting" in reasons[1]


def test_csv_header_with_a_column_twice(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("text,text\na,b\n")
    with pytest.raises(CurationError, match=r"h\.csv:1: the header names column 'text' twice"):
        lake.ingest([path], source="t")


def test_parquet_nan_and_infinity_are_kept_as_values(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    table = pa.table(
        {
            "text": [f"row {i}" for i in range(4)],
            "score": [math.nan, math.inf, -math.inf, 0.5],
            "nested": [{"v": math.nan}, {"v": 1.0}, None, {"v": None}],
        }
    )
    pq.write_table(table, path)
    lake.ingest([path], source="t")
    metas = {r["text"]: loads(r["meta"]) for r in _records(lake)}
    assert math.isnan(metas["row 0"]["score"]) and math.isnan(metas["row 0"]["nested"]["v"])
    assert metas["row 1"]["score"] == math.inf and metas["row 2"]["score"] == -math.inf
    assert metas["row 3"] == {"score": 0.5, "nested": {"v": None}}
    # meta stays strict JSON (DuckDB reads it): the NaN is a tagged value.
    raw = {r["text"]: r["meta"] for r in _records(lake)}["row 0"]
    assert json.loads(raw, parse_constant=lambda c: pytest.fail(c))["score"] == {
        "mixlake.float": "NaN"
    }
    got = lake.sql("SELECT json_extract_string(meta, '$.score') AS s FROM records ORDER BY text")
    assert got.column("s").to_pylist()[3] == "0.5"


def test_bulk_path_keeps_nan_and_infinity_exactly_as_the_row_path() -> None:
    table = pa.table(
        {
            "text": [f"row {i}" for i in range(4)],
            "score": [math.nan, math.inf, -math.inf, 0.5],
            "nested": [{"v": math.nan}, {"v": 1.0}, None, {"v": None}],
        }
    )
    assert assert_paths_agree(table, json_source=False) == 4  # tagged floats, in bulk too


def test_message_fields_and_big_integers_are_left_to_the_row_path() -> None:
    rows = [
        {"messages": [{"role": "user", "content": "q", "name": "ann"}]},
        {"conversations": [{"from": "human", "value": "hi", "lang": "en"}]},
    ]
    assert bulk_outcomes(pa.Table.from_struct_array(pa.array(rows)), json_source=False) == {}
    big = pa.table({"text": ["t"], "n": pa.array([2**64 - 1], pa.uint64())})
    assert assert_paths_agree(big, json_source=False) == 1  # up to 64 bits, in bulk


def test_parquet_column_named_twice_is_an_error(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["text", "text"])
    pq.write_table(table, path)
    with pytest.raises(CurationError, match="column 'text' appears twice"):
        lake.ingest([path], source="t")


def test_datasetdict_folder_ingests_every_split_and_keeps_it(lake: Lake, tmp_path: Path) -> None:
    import datasets

    from curation.ingest.read_columnar import read_tables

    folder = tmp_path / "dd"
    datasets.disable_progress_bars()
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([{"text": "a"}, {"text": "b"}]),
            "test": datasets.Dataset.from_list([{"text": "c"}]),
        }
    ).save_to_disk(str(folder))
    lake.ingest([folder], source="dd")
    splits = {r["text"]: loads(r["meta"])["split"] for r in _records(lake)}
    assert splits == {"a": "train", "b": "train", "c": "test"}
    only = [t for _, t in read_tables(folder, "hf", split="test")]
    assert [t.column("text").to_pylist() for t in only] == [["c"]]
    assert only[0].column("split").to_pylist() == ["test"]
    with pytest.raises(CurationError, match="no split 'dev'"):
        list(read_tables(folder, "hf", split="dev"))
