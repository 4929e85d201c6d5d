"""Export: rendered rows in mix order in every format, a manifest, PII redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.testing import make_lake
from queries import QueryError, export_mix, materialize_mix, parse_spec, read_manifest

SPEC = """
name: ex
seed: 5
total_rows: 40
components:
  - name: all
    sql: "true"
splits: {train: 0.75, val: 0.25}
format: {template: chat}
"""


@pytest.fixture(scope="module")
def exported_lake(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("export")
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Hi, I am user{i}, mail me at user{i}@example.com"},
                {"role": "assistant", "content": f"Hello user{i}! Noted."},
            ]
        }
        for i in range(50)
    ]
    lake = make_lake(tmp, {"people": rows})
    mix = materialize_mix(lake, parse_spec(SPEC))
    return lake, mix


def test_jsonl_in_mix_order_with_manifest(exported_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, mix = exported_lake
    out = tmp_path / "out" / "ex.jsonl"
    manifest = export_mix(lake, "ex", "jsonl", out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == mix.rows().column("id").to_pylist()
    assert set(lines[0]) == {"id", "split", "component", "messages"}
    assert all("@example.com" not in m["content"] for r in lines for m in r["messages"])
    assert "[EMAIL]" in lines[0]["messages"][0]["content"]
    info = json.loads(manifest.read_text())
    assert manifest == tmp_path / "out" / "ex.jsonl.manifest.json"
    assert info["mix"] == "ex" and info["mix_version"] == 1 and info["checksum"] == mix.checksum
    assert info["records_version"] == mix.records_version and info["spec_hash"] == mix.spec_hash
    assert info["seed"] == mix.spec.seed  # a file-trained run shuffles epochs as a lake run does
    assert info["format"] == "jsonl" and info["redactions"] == 40
    assert sum(info["rows"].values()) == 40 and read_manifest(out) == info


def test_split_and_no_redact(exported_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, mix = exported_lake
    out = tmp_path / "val.jsonl"
    export_mix(lake, "ex", "jsonl", out, split="val", redact=False)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == mix.rows("val").column("id").to_pylist()
    assert {r["split"] for r in lines} == {"val"}
    assert "@example.com" in lines[0]["messages"][0]["content"]
    assert read_manifest(out)["rows"] == {"val": mix.count("val")}


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "hf"])
def test_columnar_formats_hold_the_same_rows(exported_lake, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    lake, mix = exported_lake
    out = tmp_path / f"ex.{fmt}"
    manifest = export_mix(lake, "ex", fmt, out)
    if fmt == "parquet":
        table = pq.read_table(out)
    elif fmt == "arrow":
        table = pa.ipc.open_file(str(out)).read_all()
    else:
        import datasets

        table = datasets.load_from_disk(str(out)).data.table
        assert manifest == out / "manifest.json"
    assert table.column("id").to_pylist() == mix.rows().column("id").to_pylist()
    assert table.column("messages").to_pylist()[0][1]["role"] == "assistant"
    assert json.loads(manifest.read_text())["format"] == fmt


def test_bad_format_and_split(exported_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, _ = exported_lake
    with pytest.raises(QueryError, match="unknown export format 'csv'"):
        export_mix(lake, "ex", "csv", tmp_path / "x.csv")
    with pytest.raises(QueryError, match="no split 'dev'"):
        export_mix(lake, "ex", "jsonl", tmp_path / "x.jsonl", split="dev")
    assert not (tmp_path / "x.jsonl").exists()
