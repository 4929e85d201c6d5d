"""Ingest: every input shape and format lands in the core columns, once."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import CurationError, Lake
from curation.ingest import parse_mapping
from curation.schema import RECORDS_SCHEMA, record_id
from curation.testing import write_jsonl
from tests.conftest import SAMPLE_ROWS


def _rows(lake: Lake, ref: int | str | None = None) -> list[dict[str, Any]]:
    return sorted(lake.records(ref).to_table().to_pylist(), key=lambda r: r["text"])


def _one(lake: Lake, tmp_path: Path, row: dict[str, Any], **options: Any) -> dict[str, Any]:
    lake.ingest([write_jsonl(tmp_path / "one.jsonl", [row])], source="t", **options)
    (got,) = lake.records().to_table().to_pylist()
    return got


def _turns(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in record["messages"]]


def test_text_row(lake: Lake, tmp_path: Path) -> None:
    got = _one(lake, tmp_path, {"text": "Hello world.", "lang": "en", "score": 3})
    assert got["kind"] == "text"
    assert got["text"] == "Hello world."
    assert got["messages"] is None
    assert json.loads(got["meta"]) == {"lang": "en", "score": 3}
    assert got["source"] == "t"
    assert got["id"] == record_id("text", "Hello world.", None, None)


def test_alpaca_instruction_input_output(lake: Lake, tmp_path: Path) -> None:
    got = _one(
        lake,
        tmp_path,
        {"instruction": "Add.", "input": "2 and 3", "output": "5", "system": "Be brief."},
    )
    assert got["kind"] == "chat"
    assert _turns(got) == [("system", "Be brief."), ("user", "Add.\n\n2 and 3"), ("assistant", "5")]
    assert got["text"] == "Be brief.\n\nAdd.\n\n2 and 3\n\n5"
    assert got["meta"] is None


def test_alpaca_empty_input_is_left_out(lake: Lake, tmp_path: Path) -> None:
    got = _one(lake, tmp_path, {"instruction": "Say hi.", "input": "", "output": "Hi!"})
    assert _turns(got) == [("user", "Say hi."), ("assistant", "Hi!")]


def test_chat_messages_keep_roles_and_extra_fields(lake: Lake, tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "system", "content": "You help."},
            {"role": "User", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ],
        "topic": "greeting",
    }
    got = _one(lake, tmp_path, row)
    assert got["kind"] == "chat"
    assert _turns(got) == [("system", "You help."), ("user", "Hi"), ("assistant", "Hello")]
    assert json.loads(got["meta"]) == {"topic": "greeting"}


def test_sharegpt_conversations_map_roles(lake: Lake, tmp_path: Path) -> None:
    row = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}
    got = _one(lake, tmp_path, row)
    assert _turns(got) == [("user", "Hi"), ("assistant", "Yo")]


def test_sharegpt_and_messages_of_same_turns_share_an_id(lake: Lake, tmp_path: Path) -> None:
    a = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}
    b = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    report = lake.ingest([write_jsonl(tmp_path / "x.jsonl", [a, b])], source="t")
    assert (report.rows_added, report.duplicates_in_input) == (1, 1)


@pytest.mark.parametrize("answer_key", ["completion", "response"])
def test_prompt_completion(lake: Lake, tmp_path: Path, answer_key: str) -> None:
    got = _one(lake, tmp_path, {"prompt": "Capital of France?", answer_key: "Paris."})
    assert got["kind"] == "chat"
    assert _turns(got) == [("user", "Capital of France?"), ("assistant", "Paris.")]


def test_preference_pair(lake: Lake, tmp_path: Path) -> None:
    got = _one(lake, tmp_path, {"prompt": "Be kind.", "chosen": "You did well.", "rejected": "No."})
    assert got["kind"] == "preference"
    assert _turns(got) == [("user", "Be kind."), ("assistant", "You did well.")]
    assert got["rejected"] == "No."


def test_preference_with_message_lists(lake: Lake, tmp_path: Path) -> None:
    row = {
        "prompt": [{"role": "user", "content": "Pick one."}],
        "chosen": [{"role": "assistant", "content": "A"}],
        "rejected": [{"role": "assistant", "content": "B"}],
    }
    got = _one(lake, tmp_path, row)
    assert _turns(got) == [("user", "Pick one."), ("assistant", "A")]
    assert got["rejected"] == "B"


def test_map_renames_fields(lake: Lake, tmp_path: Path) -> None:
    got = _one(lake, tmp_path, {"body": "Mapped text.", "url": "u"}, mapping={"text": "body"})
    assert (got["kind"], got["text"]) == ("text", "Mapped text.")
    assert json.loads(got["meta"]) == {"url": "u"}


def test_map_to_instruction_fields(lake: Lake, tmp_path: Path) -> None:
    got = _one(
        lake,
        tmp_path,
        {"q": "Why?", "a": "Because."},
        mapping=parse_mapping(["instruction=q", "output=a"]),
    )
    assert _turns(got) == [("user", "Why?"), ("assistant", "Because.")]


@pytest.mark.parametrize("bad", ["text", "text=", "=body"])
def test_parse_mapping_rejects_bad_items(bad: str) -> None:
    with pytest.raises(CurationError, match="TARGET=FIELD"):
        parse_mapping([bad])


def test_map_onto_unknown_target_is_refused(lake: Lake, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"body": "x"}])
    with pytest.raises(CurationError, match="cannot map onto 'body_text'"):
        lake.ingest([path], source="t", mapping={"body_text": "body"})


def test_kind_hint_requires_that_kind(lake: Lake, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "plain"}])
    with pytest.raises(CurationError, match=r"a\.jsonl:1: expected a chat record"):
        lake.ingest([path], source="t", kind="chat")
    assert lake.ingest([path], source="t", kind="text").rows_added == 1


def test_every_sample_shape_in_one_ingest(lake: Lake, tmp_path: Path) -> None:
    report = lake.ingest([write_jsonl(tmp_path / "s.jsonl", SAMPLE_ROWS)], source="sample")
    assert report.rows_added == len(SAMPLE_ROWS)
    assert dict(report.by_kind) == {"text": 1, "chat": 4, "preference": 1}
    table = lake.records().to_table()
    assert table.schema.equals(RECORDS_SCHEMA)
    assert set(table.column("batch").to_pylist()) == {report.batch}
    assert len(set(table.column("ingested_at").to_pylist())) == 1


# --------------------------------------------------------------------------- formats


def _formats_lake(tmp_path: Path, name: str) -> Lake:
    return Lake.create(tmp_path / f"lake-{name}")


def test_jsonl_gz_json_array_parquet_csv_all_agree(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Add.", "input": "1 and 1", "output": "2"},
        {"text": "Some plain text."},
    ]
    base = _formats_lake(tmp_path, "base")
    base.ingest([write_jsonl(tmp_path / "d.jsonl", rows)], source="t")
    expected = [r["id"] for r in _rows(base)]

    gz = tmp_path / "d.jsonl.gz"
    gz.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in rows)))
    array = tmp_path / "d.json"
    array.write_text(json.dumps(rows))
    parquet = tmp_path / "d.parquet"
    columns = ("instruction", "input", "output", "text")
    pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in columns}), parquet)
    csv_file = tmp_path / "d.csv"
    csv_file.write_text('instruction,input,output,text\nAdd.,1 and 1,2,\n,,,"Some plain text."\n')

    for path in (gz, array, parquet):
        lake = _formats_lake(tmp_path, path.name)
        report = lake.ingest([path], source="t")
        assert report.rows_added == 2, path
        assert [r["id"] for r in _rows(lake)] == expected, path
    # Parquet nulls and empty CSV cells mean "no such field", so mixed shapes work there too.
    lake = _formats_lake(tmp_path, "csv")
    assert lake.ingest([csv_file], source="t").rows_added == 2
    assert [r["id"] for r in _rows(lake)] == expected


def test_json_file_with_lines_is_detected_as_jsonl(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert lake.ingest([path], source="t").rows_added == 2


def test_tsv(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\nA tab separated row.\tgood\n")
    report = lake.ingest([path], source="t")
    assert report.rows_added == 1
    assert json.loads(_rows(lake)[0]["meta"]) == {"label": "good"}


def test_hugging_face_save_to_disk_folder(lake: Lake, tmp_path: Path) -> None:
    import datasets  # a dev dependency: a missing one must fail, not skip

    rows = {
        "messages": [
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
            [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "See you"}],
        ],
        "split_tag": ["a", "b"],
    }
    folder = tmp_path / "hf"
    datasets.Dataset.from_dict(rows).save_to_disk(str(folder))
    report = lake.ingest([folder], source="hf")
    assert report.rows_added == 2
    assert report.by_kind["chat"] == 2
    assert {json.loads(r["meta"])["split_tag"] for r in _rows(lake)} == {"a", "b"}


def test_chitchat_package_adapter(lake: Lake) -> None:
    report = lake.ingest(["pkg:chitchat"], source="chitchat")
    assert report.rows_added > 5000
    assert report.rejected == 0
    assert report.rows_read == report.rows_added + report.duplicates_in_input
    sample = lake.records().head(50).to_pylist()
    assert all(r["kind"] == "chat" for r in sample)
    assert all(r["messages"][0]["role"] == "user" for r in sample)
    assert all("conversation_id" in json.loads(r["meta"]) for r in sample)


def test_several_files_one_version(lake: Lake, tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "one"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": "two"}, {"text": "three"}])
    before = lake.latest_version()
    report = lake.ingest([a, b], source="t")
    assert report.rows_added == 3
    assert lake.latest_version() == before + 1
    assert report.files == [str(a), str(b)]


# --------------------------------------------------------------------- ids and versions


def test_reingest_adds_nothing_and_creates_no_version(sample_lake: Lake, tmp_path: Path) -> None:
    version = sample_lake.latest_version()
    report = sample_lake.ingest([tmp_path / "sample.jsonl"], source="sample")
    assert not report.new_version
    assert (report.rows_added, report.already_present) == (0, len(SAMPLE_ROWS))
    assert sample_lake.latest_version() == version
    assert sample_lake.records().count_rows() == len(SAMPLE_ROWS)


def test_cross_source_duplicates_are_counted_not_added(sample_lake: Lake, tmp_path: Path) -> None:
    rows = [SAMPLE_ROWS[0], {"text": "Only in the other source."}]
    report = sample_lake.ingest([write_jsonl(tmp_path / "o.jsonl", rows)], source="other")
    assert (report.rows_added, report.already_present) == (1, 1)
    sources = sample_lake.sql("SELECT source, count(*) AS n FROM records GROUP BY source")
    assert dict(zip(*sources.to_pydict().values(), strict=True)) == {"sample": 6, "other": 1}


def test_duplicates_within_one_input(lake: Lake, tmp_path: Path) -> None:
    rows = [{"text": "same"}, {"text": "same", "meta_differs": 1}, {"text": "other"}]
    report = lake.ingest([write_jsonl(tmp_path / "d.jsonl", rows)], source="t")
    assert (report.rows_added, report.duplicates_in_input) == (2, 1)


def test_version_message_and_journal(lake: Lake, tmp_path: Path) -> None:
    report = lake.ingest([write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])], source="web")
    entry = lake.log()[0]
    assert entry.version == report.version_after
    assert entry.operation == "ingest"
    assert entry.rows == 1
    assert "source=web: +1 rows" in entry.message
    assert "a.jsonl" in entry.message
    journal = lake.journal_entries()[report.version_after]
    assert json.loads(journal["args"])["batch"] == report.batch


def test_many_batches_stream_into_one_version(lake: Lake, tmp_path: Path) -> None:
    rows = [{"text": f"row number {i}"} for i in range(2500)]
    before = lake.latest_version()
    report = lake.ingest([write_jsonl(tmp_path / "m.jsonl", rows)], source="t", batch_rows=512)
    assert report.rows_added == 2500
    assert lake.latest_version() == before + 1
    assert lake.records().count_rows() == 2500


def test_duplicate_counts_across_batches_and_table(sample_lake: Lake, tmp_path: Path) -> None:
    rows = [
        {"text": "new a"},
        SAMPLE_ROWS[0],  # in the table
        {"text": "new b"},
        {"text": "new a"},  # repeat, next batch
        SAMPLE_ROWS[0],  # in the table again
        {"text": "new b"},
        {"text": "new c"},
    ]
    report = sample_lake.ingest([write_jsonl(tmp_path / "d.jsonl", rows)], source="t", batch_rows=2)
    assert (report.rows_added, report.already_present, report.duplicates_in_input) == (3, 2, 2)
    assert dict(report.by_kind) == {"text": 3}
    assert sample_lake.records().count_rows() == len(SAMPLE_ROWS) + 3
