"""The export-format registry: names by use, refusals, and a format added as one small class."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from curation import Lake
from curation.testing import make_lake
from mixlake.cli import main
from queries import (
    ExportFormat,
    MaterializedMix,
    MixManifest,
    QueryError,
    export_mix,
    format_names,
    get_format,
    materialize_mix,
    parse_spec,
    register_format,
)
from queries.export_formats import Converted, Row, unregister_format

SPEC = """
name: ex
seed: 5
total_rows: 8
components:
  - name: all
    sql: "true"
splits: {train: 0.75, val: 0.25}
format: {template: chat}
"""


@pytest.fixture(scope="module")
def exported_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, MaterializedMix]:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Hi, I am user{i}"},
                {"role": "assistant", "content": f"Hello user{i}!"},
            ]
        }
        for i in range(10)
    ]
    lake = make_lake(tmp_path_factory.mktemp("formats"), {"people": rows})
    return lake, materialize_mix(lake, parse_spec(SPEC))


def test_the_registry_names_every_format_by_use() -> None:
    assert format_names("mix") == (
        "jsonl",
        "records",
        "parquet",
        "arrow",
        "hf",
        "sharegpt",
        "alpaca",
        "trl-sft",
        "trl-dpo",
        "axolotl",
    )
    assert format_names("download") == ("jsonl", "parquet", "csv")
    assert get_format("csv", "download").media_type == "text/csv"
    with pytest.raises(QueryError, match=r"^unknown download format 'hf'; use one of jsonl, "):
        get_format("hf", "download")


def test_a_taken_or_empty_name_is_refused() -> None:
    class Again(ExportFormat):
        name = "jsonl"

    class Nameless(ExportFormat):
        pass

    with pytest.raises(QueryError, match="'jsonl' is already registered by JsonlFormat"):
        register_format(Again)
    with pytest.raises(QueryError, match="Nameless needs a name"):
        register_format(Nameless)
    assert type(get_format("jsonl")).__name__ == "JsonlFormat"


@pytest.fixture
def upper_format() -> Iterator[type[ExportFormat]]:
    """A format added the way a contributor adds one: one small class."""

    @register_format
    class Upper(ExportFormat):
        name = "upper-test"
        version = 3

        def convert(self, row: Row, trim: bool) -> Converted:
            if "messages" not in row:
                return None, "no messages", None
            return {"id": row["id"], "said": row["messages"][0]["content"].upper()}, None, None

        def write_sidecars(self, out: Path, files: dict[str, str]) -> None:
            out.with_name("upper.txt").write_text(",".join(sorted(files)))

    yield Upper
    unregister_format("upper-test")


def test_a_registered_format_exports_from_python_and_the_cli(
    exported_lake: tuple[Lake, MaterializedMix],
    upper_format: type[ExportFormat],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lake, mix = exported_lake
    assert "upper-test" in format_names("mix")
    manifest = MixManifest.from_file(export_mix(lake, "ex", "upper-test", tmp_path / "u.jsonl"))
    assert manifest.format == "upper-test" and manifest.format_version == 3
    assert (tmp_path / "upper.txt").read_text() == "train,val"
    rows = [json.loads(line) for line in (tmp_path / "u.val.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == mix.rows("val").column("id").to_pylist()
    assert rows[0]["said"].startswith("HI, I AM USER")
    assert manifest.mix_order_file is None and not (tmp_path / "u.jsonl").exists()

    args = ["mix", "export", "ex", "--lake", lake.uri, "--out"]
    assert main([*args, str(tmp_path / "c" / "u.jsonl"), "--format", "upper-test"]) == 0
    assert (tmp_path / "c" / "u.train.jsonl").is_file()
    capsys.readouterr()
    assert main([*args, str(tmp_path / "x.jsonl"), "--format", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown export format 'nope'" in err
    assert "upper-test" in err and "sharegpt" in err
