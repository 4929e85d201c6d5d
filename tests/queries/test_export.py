"""Export: rendered rows in mix order in every format, a manifest, PII redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

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
    info = yaml.safe_load(manifest.read_text())
    assert manifest == tmp_path / "out" / "ex.manifest.yaml"  # no *.json* glob picks it up
    assert info["mix"] == "ex" and info["mix_version"] == 1 and info["checksum"] == mix.checksum
    assert info["records_version"] == mix.records_version and info["spec_hash"] == mix.spec_hash
    assert info["seed"] == mix.spec.seed  # a file-trained run shuffles epochs as a lake run does
    assert info["format"] == "jsonl" and info["redactions"] == 40
    assert sum(info["rows"].values()) == 40 and read_manifest(out) == info
    assert info["files"] == {"train": "ex.train.jsonl", "val": "ex.val.jsonl"}
    assert read_manifest(tmp_path / "out" / "ex.val.jsonl") == info  # from a split file too


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

        loaded = datasets.load_from_disk(str(out))
        assert isinstance(loaded, datasets.DatasetDict) and set(loaded) == {"train", "val"}
        for split in loaded:
            ids = loaded[split].data.table.column("id").to_pylist()
            assert ids == mix.rows(split).column("id").to_pylist()
        table = loaded["train"].data.table
        assert manifest == out / "manifest.yaml"
    if fmt != "hf":
        assert table.column("id").to_pylist() == mix.rows().column("id").to_pylist()
    assert table.column("messages").to_pylist()[0][1]["role"] == "assistant"
    assert yaml.safe_load(manifest.read_text())["format"] == fmt


def test_bad_format_and_split(exported_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, _ = exported_lake
    with pytest.raises(QueryError, match="unknown export format 'csv'; use one of jsonl, "):
        export_mix(lake, "ex", "csv", tmp_path / "x.csv")  # a download format, not a mix's
    with pytest.raises(QueryError, match="no split 'dev'"):
        export_mix(lake, "ex", "jsonl", tmp_path / "x.jsonl", split="dev")
    assert not (tmp_path / "x.jsonl").exists()


# ------------------------------------------------ exports that fit the trainers they name

MIXED = """
name: tr
seed: 3
total_rows: 68
components:
  - name: all
    sql: "true"
splits: {train: 0.6, val: 0.2, test: 0.2}
format: {template: chat}
"""


def _mixed_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i in range(20):
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": f"sys {i}"},
                    {"role": "user", "content": f"q {i}"},
                    {"role": "assistant", "content": f"a {i}", "tool_calls": [{"id": f"c{i}"}]},
                ],
                "topic": "t",
            }
        )
        rows.append({"messages": [{"role": "user", "content": f"lonely user {i}"}]})
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"u {i}"},
                    {"role": "assistant", "content": f"b {i}"},
                    {"role": "user", "content": f"more {i}"},
                ]
            }
        )
    return rows


@pytest.fixture(scope="module")
def mixed_lake(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("trainers")
    prefs = [{"prompt": f"pick {i}", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(8)]
    lake = make_lake(tmp, {"chat": _mixed_rows(), "pref": prefs})
    mix = materialize_mix(lake, parse_spec(MIXED))
    return lake, mix


def test_jsonl_splits_load_as_a_datasetdict(mixed_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import datasets

    lake, mix = mixed_lake
    out = tmp_path / "tr.jsonl"
    export_mix(lake, "tr", "jsonl", out, redact=False)
    info = read_manifest(out)
    files = {s: str(tmp_path / f) for s, f in info["files"].items()}
    loaded = datasets.load_dataset("json", data_files=files)
    assert set(loaded) == set(mix.splits)
    for split in mix.splits:
        assert loaded[split]["id"] == mix.rows(split).column("id").to_pylist()
        assert set(loaded[split]["split"]) == {split}
    # The folder as a whole: the split is read from each file's name (val → validation), and
    # neither the whole-mix file nor the manifest lands in a split.
    by_folder = datasets.load_dataset(str(tmp_path))
    assert sorted(by_folder) == ["test", "train", "validation"]
    assert by_folder["validation"]["id"] == mix.rows("val").column("id").to_pylist()
    assert sorted(p.name for p in tmp_path.glob("*.json*")) == [
        "tr.jsonl",
        "tr.test.jsonl",
        "tr.train.jsonl",
        "tr.val.jsonl",
    ]
    chat = [r for r in loaded["train"] if r["messages"] and r["messages"][-1].get("tool_calls")]
    assert chat and chat[0]["meta"] == '{"topic":"t"}'  # message fields restored, meta kept


def _lf_keeps(row: dict[str, object]) -> bool:
    """LLaMA-Factory's sharegpt alignment rule (SharegptDatasetConverter), restated."""
    turns = list(row["conversations"])  # type: ignore[call-overload]
    if not turns or len(turns) % 2:
        return False
    return all(
        t["from"] in (("human", "observation") if i % 2 == 0 else ("gpt", "function_call"))
        for i, t in enumerate(turns)
    )


@pytest.mark.parametrize("trim", [False, True])
def test_sharegpt_with_dataset_info_and_the_rows_llamafactory_drops(
    mixed_lake, tmp_path: Path, trim: bool
) -> None:  # type: ignore[no-untyped-def]
    import datasets

    lake, mix = mixed_lake
    out = tmp_path / "tr.jsonl"
    export_mix(lake, "tr", "sharegpt", out, redact=False, trim_trailing_user=trim)
    info = read_manifest(out)
    dataset_info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(dataset_info) == {f"tr_{s}" for s in mix.splits}
    entry = dataset_info["tr_train"]
    assert entry["formatting"] == "sharegpt" and entry["file_name"] == "tr.train.jsonl"
    rows = [
        r
        for s in mix.splits
        for r in datasets.load_dataset("json", data_files=str(tmp_path / f"tr.{s}.jsonl"))["train"]
    ]
    assert len(rows) == 68
    dropped = sum(not _lf_keeps(r) for r in rows)
    assert sum(info["trainer_drops"].values()) == dropped
    if trim:  # only the conversations with no answer at all are left to drop
        assert info["trainer_drops"] == {"no conversation turns": dropped} and dropped > 0
    else:
        assert info["trainer_drops"]["does not end on an assistant turn"] == dropped
    assert any((r.get("system") or "").startswith("sys") for r in rows)


def test_alpaca_rows(mixed_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, _ = mixed_lake
    out = tmp_path / "tr.jsonl"
    export_mix(lake, "tr", "alpaca", out, redact=False, split="train")
    rows = [json.loads(line) for line in (tmp_path / "tr.train.jsonl").read_text().splitlines()]
    assert rows and all({"instruction", "input", "output"} <= r.keys() for r in rows)
    info = read_manifest(out)
    assert sum(info["not_written"].values()) + len(rows) == info["rows"]["train"]
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["tr_train"]
    assert entry["formatting"] == "alpaca" and entry["columns"]["prompt"] == "instruction"


def test_trl_sft_and_dpo_shapes(mixed_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import datasets
    from trl.data_utils import is_conversational

    lake, _ = mixed_lake
    export_mix(lake, "tr", "trl-sft", tmp_path / "sft.jsonl", redact=False)
    sft = datasets.load_dataset("json", data_files=str(tmp_path / "sft.train.jsonl"))["train"]
    assert sft.column_names == ["messages"] and is_conversational(sft[0])
    export_mix(lake, "tr", "trl-dpo", tmp_path / "dpo.jsonl", redact=False)
    files = {
        s: str(tmp_path / f) for s, f in read_manifest(tmp_path / "dpo.jsonl")["files"].items()
    }
    dpo = datasets.load_dataset("json", data_files=files)
    rows = [r for s in dpo for r in dpo[s]]
    assert len(rows) == 8  # the preference pairs; the chats are counted as not written
    assert all(set(r) == {"prompt", "chosen", "rejected"} and is_conversational(r) for r in rows)
    assert rows[0]["rejected"][0]["role"] == "assistant"
    assert read_manifest(tmp_path / "dpo.jsonl")["not_written"] == {"not a preference pair": 60}


def test_axolotl_chat_template(mixed_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, _ = mixed_lake
    export_mix(lake, "tr", "axolotl", tmp_path / "ax.jsonl", redact=False)
    config = yaml.safe_load((tmp_path / "ax.axolotl.yaml").read_text())
    (train,) = config["datasets"]
    assert train["type"] == "chat_template" and train["field_messages"] == "messages"
    assert train["data_files"] == ["ax.train.jsonl"] and train["ds_type"] == "json"
    assert len(config["test_datasets"]) == 2
    line = json.loads((tmp_path / "ax.train.jsonl").read_text().splitlines()[0])
    assert set(line) == {"messages"} and {"role", "content"} <= set(line["messages"][0])


def test_a_format_no_row_fits_is_an_error(exported_lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, _ = exported_lake
    with pytest.raises(QueryError, match="no row of the mix fits the trl-dpo format"):
        export_mix(lake, "ex", "trl-dpo", tmp_path / "d.jsonl")
    assert not list(tmp_path.iterdir())
