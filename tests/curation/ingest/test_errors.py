"""Bad input: one clear `file:line: reason`, and the lake exactly as it was."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import CurationError, Lake, list_rejects
from curation.testing import write_jsonl
from tests.curation.ingest.kit import GOOD, lines_file, state

BAD_LINES: list[tuple[str, str]] = [
    ('{"text": "truncated', "invalid JSON"),
    ('{"text": 42}', "field 'text' must be a string, got int"),
    ('{"text": "   "}', "field 'text' is empty"),
    ("{}", "no recognised fields (has: none)"),
    ('["a", "list"]', "expected a JSON object, got array"),
    ('{"messages": "hello"}', "field 'messages' must be a list of messages, got string"),
    ('{"messages": []}', "field 'messages' is empty"),
    ('{"messages": [{"role": "wizard", "content": "x"}]}', "messages[0] has an unknown role"),
    ('{"messages": [{"role": "user", "content": null}]}', "messages[0].content must be a string"),
    ('{"instruction": "Do.", "output": ["x"]}', "field 'output' must be a string, got array"),
    ('{"instruction": "Do.", "input": 5, "output": "x"}', "field 'input' must be a string"),
    ('{"chosen": "a", "rejected": "b"}', "preference row has no 'prompt'"),
    ('{"prompt": "p", "completion": "c", "system": 1}', "field 'system' must be a string"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_bad_row_fails_with_file_line_and_leaves_lake(
    sample_lake: Lake, tmp_path: Path, line: str, reason: str
) -> None:
    path = lines_file(tmp_path, '{"text": "fine"}', '{"text": "also fine"}', line)
    before = state(sample_lake)
    with pytest.raises(CurationError) as info:
        sample_lake.ingest([path], source="bad")
    message = str(info.value)
    assert message.startswith(f"{path}:3: ")
    assert reason in message
    assert "\n" not in message
    assert state(sample_lake) == before


def test_wrong_encoding_names_line_and_byte(sample_lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    before = state(sample_lake)
    with pytest.raises(CurationError, match=r"latin1\.jsonl:2: not valid UTF-8 \(byte 0xe9"):
        sample_lake.ingest([path], source="bad")
    assert state(sample_lake) == before


def test_bad_line_inside_gzip(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "a"}\n\n{"text": \n'))
    with pytest.raises(CurationError, match=r"d\.jsonl\.gz:3: invalid JSON"):
        lake.ingest([path], source="t")


def test_blank_lines_are_skipped(lake: Lake, tmp_path: Path) -> None:
    path = lines_file(tmp_path, '{"text": "a"}', "", "   ", '{"text": "b"}')
    assert lake.ingest([path], source="t").rows_added == 2


def test_missing_file(sample_lake: Lake, tmp_path: Path) -> None:
    before = state(sample_lake)
    with pytest.raises(CurationError, match=r"nope\.jsonl: no such file or folder"):
        sample_lake.ingest([write_jsonl(tmp_path / "ok.jsonl", GOOD), tmp_path / "nope.jsonl"], "s")
    assert state(sample_lake) == before


def test_unknown_format_option(lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(CurationError, match="unknown format 'xml'"):
        lake.ingest([write_jsonl(tmp_path / "a.jsonl", GOOD)], "s", fmt="xml")


def test_undetectable_format(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "data.xml"
    path.write_text("<rows/>")
    with pytest.raises(CurationError, match=r"data\.xml: cannot tell the format.*--format"):
        lake.ingest([path], source="s")


def test_folder_that_is_not_a_dataset(lake: Lake, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CurationError, match="not a Hugging Face save_to_disk dataset"):
        lake.ingest([tmp_path / "empty"], source="s")


def test_bad_json_array_names_line(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": "b",,}\n]\n')
    with pytest.raises(CurationError, match=r"arr\.json:3: invalid JSON"):
        lake.ingest([path], source="s")


def test_bad_item_in_json_array_names_item(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text('[{"text": "a"}, {"text": null}]')
    with pytest.raises(CurationError, match=r"arr\.json:2: field 'text' is null"):
        lake.ingest([path], source="s")


def test_parquet_wrong_type_names_row(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["ok", "fine"], "messages": [None, "not a list"]}), path)
    with pytest.raises(CurationError, match=r"d\.parquet:2: field 'messages' must be a list"):
        lake.ingest([path], source="s")


def test_unreadable_parquet(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(CurationError, match=r"broken\.parquet: not a readable Parquet file"):
        lake.ingest([path], source="s")


def test_csv_row_with_extra_fields(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('text\nfine\n"ok",surplus\n')
    with pytest.raises(CurationError, match=r"d\.csv:3: 1 more field\(s\) than the header has"):
        lake.ingest([path], source="s")


def test_csv_wrong_encoding(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"text\nfine\ncaf\xe9\n")
    with pytest.raises(CurationError, match=r"d\.csv:3: not valid UTF-8 \(byte 0xe9 in 'text'"):
        lake.ingest([path], source="s")
    report = lake.ingest([path], source="s", on_error="skip")
    assert (report.rows_added, report.rejected) == (1, 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"source": " "}, "--source must name"),
        ({"source": "s", "kind": "poem"}, "unknown kind 'poem'"),
        ({"source": "s", "on_error": "ignore"}, "unknown --on-error 'ignore'"),
    ],
)
def test_bad_arguments(lake: Lake, tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(CurationError, match=message):
        lake.ingest([write_jsonl(tmp_path / "a.jsonl", GOOD)], **options)


def test_no_files(lake: Lake) -> None:
    with pytest.raises(CurationError, match="nothing to ingest"):
        lake.ingest([], source="s")


# ------------------------------------------------------------------- --on-error=skip


def test_skip_keeps_good_rows_and_stores_rejects(lake: Lake, tmp_path: Path) -> None:
    path = lines_file(
        tmp_path,
        '{"text": "good one"}',
        '{"text": "truncated',
        '{"text": 42}',
        '{"text": "good two"}',
        "{}",
    )
    report = lake.ingest([path], source="web", on_error="skip")
    assert (report.rows_added, report.rejected, report.rows_read) == (2, 3, 5)
    assert report.new_version
    assert "3 rejected" in lake.log()[0].message
    rejects = list_rejects(lake, report.batch).to_pylist()
    assert sorted(r["line"] for r in rejects) == [2, 3, 5]
    by_line = {r["line"]: r for r in rejects}
    assert by_line[2]["reason"].startswith("invalid JSON")
    assert by_line[2]["raw"] == '{"text": "truncated'
    assert by_line[3]["reason"] == "field 'text' must be a string, got int"
    assert by_line[3]["raw"] == '{"text":42}'
    assert {r["file"] for r in rejects} == {str(path)}
    assert {r["source"] for r in rejects} == {"web"}
    assert sum(report.reject_reasons.values()) == 3


def test_skip_with_every_row_bad_makes_no_version_but_keeps_rejects(
    lake: Lake, tmp_path: Path
) -> None:
    before = lake.latest_version()
    report = lake.ingest([lines_file(tmp_path, "{}", "[]")], source="s", on_error="skip")
    assert not report.new_version
    assert lake.latest_version() == before
    assert list_rejects(lake, report.batch).num_rows == 2


def test_list_rejects_without_table_is_empty(lake: Lake) -> None:
    assert list_rejects(lake).num_rows == 0


# ------------------------------------------- inputs that once gave a traceback (issue 11)


def _truncated_gz(tmp_path: Path) -> tuple[list[str], str]:
    path = tmp_path / "t.jsonl.gz"
    data = gzip.compress(b"".join(b'{"text": "row %d"}\n' % i for i in range(2000)))
    path.write_bytes(data[: len(data) // 2])
    return [str(path)], r"t\.jsonl\.gz: the gzip data is truncated"


def _not_gzip(tmp_path: Path) -> tuple[list[str], str]:
    path = tmp_path / "n.jsonl.gz"
    path.write_text('{"text": "plain, not gzip"}\n')
    return [str(path)], r"n\.jsonl\.gz: not a gzip file"


def _deep(tmp_path: Path) -> tuple[list[str], str]:
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "t", "x": ' + "[" * 10_000 + "]" * 10_000 + "}\n")
    return [str(path)], r"deep\.jsonl:2: invalid JSON: nested deeper than 1024 levels"


def _deep_array(tmp_path: Path) -> tuple[list[str], str]:
    path = tmp_path / "deep.json"
    path.write_text('[{"text": "t", "x": ' + "[" * 10_000 + "]" * 10_000 + "}]")
    return [str(path)], r"deep\.json: invalid JSON: nested deeper than 1024 levels"


def _broken_hf(tmp_path: Path) -> tuple[list[str], str]:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "state.json").write_text('{"_data_files": [{"filename": "data-0.arrow"}]}')
    (folder / "data-0.arrow").write_bytes(b"ARROW1 but not really")
    return [str(folder)], r"data-0\.arrow: not a readable Arrow file"


def _hf_bad_state(tmp_path: Path) -> tuple[list[str], str]:
    folder = tmp_path / "hf2"
    folder.mkdir()
    (folder / "state.json").write_text("{not json")
    return [str(folder)], r"state\.json: not a readable dataset state"


def _chitchat_on_jsonl(tmp_path: Path) -> tuple[list[str], str]:
    path = write_jsonl(tmp_path / "c.jsonl", GOOD)
    return [str(path), "--format", "chitchat"], r"c\.jsonl: not a chitchat file"


def _symlink_loop(tmp_path: Path) -> tuple[list[str], str]:
    link = tmp_path / "loop.jsonl"
    link.symlink_to(link)
    return [str(link)], r"loop\.jsonl: a symbolic link loop"


HOSTILE = [
    _truncated_gz,
    _not_gzip,
    _deep,
    _deep_array,
    _broken_hf,
    _hf_bad_state,
    _chitchat_on_jsonl,
    _symlink_loop,
]


@pytest.mark.parametrize("make", HOSTILE, ids=lambda f: f.__name__.strip("_"))
def test_hostile_input_is_one_line_and_leaves_the_lake(
    sample_lake: Lake, tmp_path: Path, make: Callable[[Path], tuple[list[str], str]]
) -> None:
    args, pattern = make(tmp_path)
    paths, options = args[:1], args[1:]
    before = state(sample_lake)
    fmt = options[1] if options else "auto"
    with pytest.raises(CurationError) as info:
        sample_lake.ingest(paths, source="bad", fmt=fmt)
    assert "\n" not in str(info.value)
    assert __import__("re").search(pattern, str(info.value)), str(info.value)
    assert state(sample_lake) == before


@pytest.mark.parametrize("make", HOSTILE, ids=lambda f: f.__name__.strip("_"))
def test_hostile_input_through_the_cli(
    sample_lake: Lake,
    tmp_path: Path,
    make: Callable[[Path], tuple[list[str], str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mixlake.cli import main

    args, pattern = make(tmp_path)
    before = state(sample_lake)
    code = main(["ingest", *args, "--source", "bad", "--lake", sample_lake.uri])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert __import__("re").search(pattern, err.replace("\n", "")), err
    assert state(sample_lake) == before
