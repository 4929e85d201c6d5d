"""An exported mix read by the trainer: the whole file or one per-split file.

Both read through the export manifest (`STEM.manifest.yaml`), or the legacy
`NAME.manifest.json` of older exports.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from curation.testing import make_lake
from queries import MixManifest, export_mix, materialize_mix, open_mix, parse_spec
from queries.manifest import manifest_path
from training import TrainConfig, TrainingError
from training.sources import FileSource, open_source, seed_from_checksum
from training.testing import toy_chat_rows

SPEC = """
name: halves
records: latest
seed: 5
total_rows: 12
components:
  - name: all
    sql: source = 'toy'
    weight: 1.0
splits: {train: 0.5, val: 0.5}
format: {template: chat}
"""


@pytest.fixture(params=[False, True], ids=["manifest", "legacy-sidecar"])
def exported(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    lake = make_lake(tmp_path, {"toy": toy_chat_rows(12)})
    materialize_mix(lake, parse_spec(SPEC))
    out = tmp_path / "out" / "halves.jsonl"
    manifest = export_mix(lake, "halves", "jsonl", out)
    if request.param:  # what exports wrote before the YAML manifest: JSON beside the file
        data = yaml.safe_load(manifest.read_text())
        manifest.unlink()
        out.with_name("halves.jsonl.manifest.json").write_bytes(orjson.dumps(data))
    assert MixManifest.find(out).mix == "halves"
    return out


def _mix(out: Path) -> tuple[dict[str, list[str]], dict[str, list[int]], str, int]:
    from curation import Lake

    mix = open_mix(Lake(str(out.parents[1] / "lake")), "halves")
    ids = {s: [str(i) for i in mix.rows(s).column("id").to_pylist()] for s in ("train", "val")}
    pos = {s: [int(p) for p in mix.rows(s).column("position").to_pylist()] for s in ids}
    return ids, pos, str(mix.checksum), int(mix.spec.seed)


def test_the_whole_file_reads_through_the_manifest(exported: Path) -> None:
    ids, positions, checksum, seed = _mix(exported)
    src = FileSource(exported)
    assert src.info.checksum == checksum and src.info.seed == seed
    assert src.info.mix == "halves" and src.info.exported_split is None
    assert src.ids("train") == ids["train"] and src.ids("val") == ids["val"]
    assert src.positions("train") == positions["train"]
    assert src.fetch("val", [1])[0]["id"] == ids["val"][1]


def test_a_split_file_reads_its_split_and_its_siblings(exported: Path) -> None:
    ids, _, checksum, seed = _mix(exported)
    split_file = exported.with_name("halves.train.jsonl")
    src = FileSource(split_file)
    assert src.info.checksum == checksum and src.info.seed == seed
    assert src.info.exported_split == "train"
    assert src.ids("train") == ids["train"] and src.ids("val") == ids["val"]
    assert src.positions("train") == list(range(len(ids["train"])))  # within the split
    assert [r["id"] for r in src.fetch("val", [0, 2])] == [ids["val"][0], ids["val"][2]]
    config = TrainConfig(data_file=str(split_file), device="cpu")
    assert open_source(config).ids("train") == ids["train"]
    with pytest.raises(TrainingError, match="export of split 'train'"):
        open_source(config.replace(split="val"))


def test_a_broken_manifest_is_one_line(exported: Path) -> None:
    exported.with_name("halves.manifest.yaml").write_text("- not\n- a mapping\n")
    with pytest.raises(
        TrainingError, match=r"halves\.manifest\.yaml: the export manifest is not a"
    ):
        FileSource(exported)
    exported.with_name("halves.manifest.yaml").write_text("mix: halves\nformat: jsonl\n")
    with pytest.raises(TrainingError, match="manifest has no 'checksum'"):
        FileSource(exported)


def test_an_older_manifest_without_seed_or_files(exported: Path) -> None:
    """A manifest from before `seed` and `files`: the seed comes from the checksum."""
    path = manifest_path(exported)
    assert path is not None
    data = yaml.safe_load(path.read_text())
    for key in ("seed", "files", "mix_order_file"):
        data.pop(key)
    path.write_text(yaml.safe_dump(data))
    src = FileSource(exported)
    assert src.info.checksum == data["checksum"] and src.info.mix == "halves"
    assert src.info.seed == seed_from_checksum(data["checksum"])


def test_a_file_without_a_manifest_names_its_mix(tmp_path: Path) -> None:
    path = tmp_path / "hand.jsonl"
    path.write_bytes(b'{"id": "a1", "text": "x"}\n{"id": "b2", "text": "y", "split": "val"}\n')
    src = FileSource(path)
    assert src.info.mix == "hand" and src.info.mix_version is None
    assert src.ids("train") == ["a1"] and src.ids("val") == ["b2"]
