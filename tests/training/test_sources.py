"""An exported mix read by the trainer: the whole file or one per-split file, through the export
manifest (`STEM.manifest.yaml`), with or without the legacy `NAME.manifest.json` sidecar."""

from __future__ import annotations

from pathlib import Path

import pytest

import queries.export as export_module
from curation.testing import make_lake
from queries import export_mix, materialize_mix, open_mix, parse_spec
from training import TrainConfig, TrainingError
from training.sources import FileSource, open_source
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


@pytest.fixture(params=[True, False], ids=["legacy-sidecar", "manifest-only"])
def exported(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    lake = make_lake(tmp_path, {"toy": toy_chat_rows(12)})
    materialize_mix(lake, parse_spec(SPEC))
    out = tmp_path / "out" / "halves.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export_module, "LEGACY_MANIFEST", request.param)
        export_mix(lake, "halves", "jsonl", out)
    assert (out.with_name("halves.jsonl.manifest.json").is_file()) == request.param
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
    exported.with_name("halves.jsonl.manifest.json").unlink(missing_ok=True)
    with pytest.raises(TrainingError, match="not a mapping"):
        FileSource(exported)
