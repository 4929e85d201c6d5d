"""`MixManifest`: the export manifest written as YAML, read back typed, older JSON ones too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from queries import MixManifest, QueryError
from queries.manifest import manifest_path

MANIFEST = MixManifest(
    mix="chat",
    mix_version=2,
    checksum="ab" * 16,
    records_version=7,
    spec_hash="cd" * 8,
    seed=5,
    rows={"train": 3, "val": 1},
    format="jsonl",
    files={"train": "chat.train.jsonl", "val": "chat.val.jsonl"},
    mix_order_file="chat.jsonl",
    template="chat",
    redactions=2,
    trainer_drops={"does not end on an assistant turn": 1},
)
# What exports wrote before the manifest was YAML (`NAME.manifest.json`).
LEGACY = {
    "mix": "chat",
    "mix_version": 1,
    "checksum": "ef" * 16,
    "records_version": 3,
    "spec_hash": "00" * 8,
    "rows": {"train": 4},
    "split": None,
    "format": "jsonl",
    "template": "chat",
    "redacted": True,
    "redactions": 0,
}


def test_written_yaml_reads_back_equal(tmp_path: Path) -> None:
    path = MANIFEST.write(tmp_path / "chat.manifest.yaml")
    assert path.read_text().startswith("mix: chat\nmix_version: 2\nchecksum: ")
    assert MixManifest.from_file(path) == MANIFEST
    assert MixManifest.find(tmp_path / "chat.jsonl") == MANIFEST
    assert MixManifest.find(tmp_path / "chat.val.jsonl") == MANIFEST  # from a split file
    assert json.loads(MANIFEST.to_json()) == MANIFEST.to_dict()
    assert "\n" not in MANIFEST.to_json()


def test_a_legacy_json_manifest_reads_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "old.jsonl.manifest.json").write_text(json.dumps(LEGACY, indent=2))
    got = MixManifest.find(tmp_path / "old.jsonl")
    assert got.checksum == LEGACY["checksum"] and got.rows == {"train": 4}
    assert got.seed is None and got.files == {} and got.mix_order_file is None
    assert got.format_version == 1 and got.not_written == {}


def test_the_yaml_name_wins_and_a_folder_has_its_own(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl.manifest.json").write_text(json.dumps(LEGACY))
    MANIFEST.write(tmp_path / "x.manifest.yaml")
    assert manifest_path(tmp_path / "x.jsonl") == tmp_path / "x.manifest.yaml"
    folder = tmp_path / "ds.hf"
    folder.mkdir()
    MANIFEST.write(folder / "manifest.yaml")
    assert MixManifest.find(folder) == MANIFEST
    assert manifest_path(tmp_path / "nothing.jsonl") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"checksum": None}, "the export manifest has no 'checksum'"),
        ({"rows": "4"}, "field 'rows' must be a mapping of names to counts, got '4'"),
        ({"seed": "5"}, "field 'seed' must be an integer, got '5'"),
        ({"seed": True}, "field 'seed' must be an integer, got True"),
        ({"redacted": "yes"}, "field 'redacted' must be true or false"),
        ({"files": {"train": 3}}, "field 'files' must be a mapping of splits to file names"),
        ({"mix": ""}, "field 'mix' must be a non-empty string"),
    ],
)
def test_a_bad_field_is_one_line_naming_the_file(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "bad.manifest.yaml"
    path.write_text(json.dumps({**LEGACY, **change}))
    with pytest.raises(QueryError) as got:
        MixManifest.from_file(path)
    text = str(got.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_unreadable_missing_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="no export manifest beside it"):
        MixManifest.find(tmp_path / "none.jsonl")
    with pytest.raises(QueryError, match=r"none\.manifest\.yaml: cannot read the export manifest"):
        MixManifest.from_file(tmp_path / "none.manifest.yaml")
    bad = tmp_path / "y.manifest.yaml"
    bad.write_text("mix: [unclosed\n")
    with pytest.raises(QueryError, match="cannot read the export manifest") as got:
        MixManifest.from_file(bad)
    assert "\n" not in str(got.value)
    bad.write_text("- a\n- list\n")
    with pytest.raises(QueryError, match="is not a mapping"):
        MixManifest.from_file(bad)
