"""A run trained from an exported file with no lake, imported later, is the run the lake mix gives.

The run from the file (the GPU-box path) imported into the lake ends up with the same
exposures, the same per-row loss and the same `runs` row as the run trained from the lake mix
(tiny random Llama, tokenizer trained on the fly, CPU).

The comparison is over one epoch: later epochs are shuffled from the mix seed, which an exported
file carries only when its manifest has one (else a seed derived from the checksum is used).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from curation import Lake
from curation.testing import make_lake
from queries import export_mix, materialize_mix, open_mix, parse_spec
from training import TrainConfig, TrainingError, get_run, import_run, list_runs, train
from training.data import epoch_order
from training.run_folder import (
    EXPOSURES_FILE,
    LOSSES_FILE,
    load_exposures,
    read_run_file,
    save_exposures,
)
from training.runs import exposures
from training.sources import FileSource
from training.testing import make_tiny_llama, texts_of, toy_chat_rows

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ROWS = toy_chat_rows(12)
SPEC = """
name: halves
records: latest
seed: 5
total_rows: 12
components:
  - name: all
    sql: source = 'toy'
    weight: 1.0
splits: {train: 0.6, val: 0.4}
format: {template: chat}
"""
LEDGER = ["record_id", "position", "step", "epoch"]


def ledger(lake: Lake, run_id: str) -> list[dict[str, Any]]:
    return exposures(lake, run_id).select(LEDGER).to_pylist()


def loss_column(lake: Lake, run_id: str) -> dict[str, float | None]:
    column = f"train_loss_{run_id}"
    table = lake.records().to_table(columns=["id", column])
    return dict(zip(table.column("id").to_pylist(), table.column(column).to_pylist(), strict=True))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("import")
    model = make_tiny_llama(root / "model", texts_of(ROWS))
    lake = make_lake(root, {"toy": ROWS})
    mix = materialize_mix(lake, parse_spec(SPEC))
    # Only the train split travels to the GPU box: file line i is the i-th train row.
    export = root / "box" / "halves-train.jsonl"
    export_mix(lake, "halves", "jsonl", export, split="train")
    config = TrainConfig(
        base_model=str(model),
        mix="halves",
        eval_split=None,
        num_train_epochs=1,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        learning_rate=3e-2,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        max_length=64,
        logging_steps=1,
        save_steps=100,
        output_dir=str(root / "lake-runs"),
        device="cpu",
    )
    from_lake = train(config, lake, progress=False)
    box_config = config.replace(mix=None, data_file=str(export), output_dir=str(root / "box-runs"))
    from_file = train(box_config, None, progress=False)
    return {
        "root": root,
        "lake": lake,
        "mix": mix,
        "export": export,
        "config": box_config,
        "from_lake": from_lake,
        "from_file": from_file,
    }


@pytest.fixture(scope="module")
def imported(world: dict[str, Any]) -> Any:
    return import_run(world["lake"], world["from_file"].run_dir)


def test_the_mix_puts_train_rows_at_scattered_positions(world: dict[str, Any]) -> None:
    """Precondition: file line numbers differ from mix positions, so the mapping is exercised."""
    positions = world["mix"].rows("train").column("position").to_pylist()
    assert 2 <= len(positions) < 12 and positions != list(range(len(positions)))


def test_a_run_from_a_file_keeps_its_ledger_and_losses_in_its_folder(world: dict[str, Any]) -> None:
    run_dir = world["from_file"].run_dir
    assert (run_dir / EXPOSURES_FILE).is_file() and (run_dir / LOSSES_FILE).is_file()
    kept = load_exposures(run_dir)
    assert kept is not None and kept.num_rows == world["from_lake"].exposures
    assert world["from_file"].exposures == 0 and world["from_file"].train_loss_column is None
    source = read_run_file(run_dir).source
    assert source.exported_split == "train" and source.checksum == world["mix"].checksum


def test_import_matches_the_run_trained_from_the_lake_mix(
    world: dict[str, Any], imported: Any
) -> None:
    lake, ref, run_id = world["lake"], world["from_lake"].run_id, world["from_file"].run_id
    assert imported.imported and imported.run_id == run_id and imported.status == "finished"
    assert imported.missing_ids == 0 and imported.notes == ()
    # Exposures: the same rows at the same mix positions, steps and epochs.
    got, want = ledger(lake, run_id), ledger(lake, ref)
    assert imported.exposures == len(got) == len(want) > 0
    assert got == want
    ids = open_mix(lake, "halves").rows("train").column("id").to_pylist()
    assert [r["record_id"] for r in got] == ids
    # The run row carries the same data provenance; its config is the one it trained with.
    run, other = get_run(lake, run_id), get_run(lake, ref)
    for key in ("mix", "mix_version", "mix_checksum", "records_version", "status"):
        assert getattr(run, key) == getattr(other, key), key
    assert run.config == world["config"].to_yaml()
    assert run.metrics["steps"] == other.metrics["steps"] and run.metrics["history"]
    assert run.adapter_path == str((world["from_file"].run_dir / "adapter").resolve())
    assert lake.tags(include_pins=True)[f"pin-run-{run_id}"] == world["mix"].records_version
    # Per-row loss: the same values (same seed, same order) on the same rows; val rows null.
    assert imported.train_loss_column == f"train_loss_{run_id}"
    mine, theirs = loss_column(lake, run_id), loss_column(lake, ref)
    assert {k for k, v in mine.items() if v is not None} == set(ids)
    assert {k for k, v in theirs.items() if v is not None} == set(ids)
    assert {k: mine[k] for k in ids} == pytest.approx({k: theirs[k] for k in ids}, rel=1e-4)


def test_importing_twice_is_a_noop(world: dict[str, Any], imported: Any) -> None:
    lake = world["lake"]
    before = {t: int(lake.dataset(t).version) for t in ("runs", "exposures", "records")}
    again = import_run(lake, world["from_file"].run_dir)
    assert not again.imported and "already in the lake" in again.message
    assert {t: int(lake.dataset(t).version) for t in before} == before


def test_ids_not_in_the_lake_are_counted_and_their_exposures_kept(
    world: dict[str, Any], tmp_path: Path
) -> None:
    train_ids = set(open_mix(world["lake"], "halves").rows("train").column("id").to_pylist())
    partial = make_lake(tmp_path / "partial", {"toy": ROWS[:6]})
    held = set(partial.records().to_table(columns=["id"]).column("id").to_pylist())
    result = import_run(partial, world["from_file"].run_dir)
    assert result.missing_ids == len(train_ids - held) > 0
    assert set(result.missing_sample) <= train_ids - held
    assert result.record_ids == len(train_ids)
    assert result.exposures == world["from_lake"].exposures
    assert {r["record_id"] for r in ledger(partial, result.run_id)} == train_ids
    losses = loss_column(partial, result.run_id)
    assert {k for k, v in losses.items() if v is not None} == train_ids & held
    # No mix here to map file rows to mix positions: said, not guessed.
    assert any("positions" in note for note in result.notes)

    stranger = make_lake(tmp_path / "stranger", {"other": toy_chat_rows(20)[12:]})
    with pytest.raises(TrainingError, match=r"none of the \d+ record ids"):
        import_run(stranger, world["from_file"].run_dir)
    assert "runs" not in stranger.table_names()


def test_bad_run_folders_fail_with_one_line(world: dict[str, Any], tmp_path: Path) -> None:
    lake = world["lake"]
    fails(lake, tmp_path / "missing", "no such run folder")
    fails(lake, tmp_path, r"not a run folder \(no run.json")
    (tmp_path / "run.json").write_text("{not json")
    fails(lake, tmp_path, "cannot read the run record")
    fails(lake, world["from_lake"].run_dir, "where it is registered")

    copy = tmp_path / "copy"
    shutil.copytree(world["from_file"].run_dir, copy)
    record = read_run_file(copy)
    dataclasses.replace(record, run_id="rcafe0001", status="running").write(copy)
    fails(lake, copy, "still running")
    dataclasses.replace(record, run_id="rcafe0002").write(copy)
    (copy / EXPOSURES_FILE).unlink()
    fails(lake, copy, "no exposures.jsonl")
    assert {r.run_id for r in list_runs(lake)} == {
        world["from_lake"].run_id,
        world["from_file"].run_id,
    }


def fails(lake: Lake, folder: Path, match: str) -> None:
    with pytest.raises(TrainingError, match=match) as e:
        import_run(lake, folder)
    assert "\n" not in str(e.value)


def test_the_folder_ledger_drops_rows_past_a_resumed_checkpoint(tmp_path: Path) -> None:
    def rows(steps: range) -> pa.Table:
        n = len(steps)
        return pa.table(
            {
                "run_id": ["r1"] * n,
                "record_id": [f"id{s}" for s in steps],
                "position": list(steps),
                "step": list(steps),
                "epoch": [0] * n,
            }
        )

    save_exposures(tmp_path, rows(range(1, 4)), 0)
    save_exposures(tmp_path, rows(range(4, 9)), 3)  # a run that got to step 8, then failed
    save_exposures(tmp_path, rows(range(7, 11)), 6)  # resumed from its checkpoint at step 6
    kept = load_exposures(tmp_path)
    assert kept is not None and kept.column("step").to_pylist() == list(range(1, 11))


def test_a_resumed_file_run_imports_an_exact_ledger(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from training import callbacks

    config = world["config"].replace(
        max_steps=6, save_steps=3, logging_steps=3, output_dir=str(tmp_path / "runs")
    )
    original = callbacks.ProgressCallback.on_step_end

    def crash(self: Any, args: Any, state: Any, control: Any, **kw: Any) -> None:
        original(self, args, state, control, **kw)
        if state.global_step == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.ProgressCallback, "on_step_end", crash)
    with pytest.raises(KeyboardInterrupt):
        train(config, None, progress=False)
    monkeypatch.undo()
    result = train(config, None, resume=True, progress=False)
    assert result.resumed_from_step == 3
    lake = make_lake(tmp_path, {"toy": ROWS})
    materialize_mix(lake, parse_spec(SPEC))
    assert import_run(lake, result.run_dir).exposures == 12
    mix = open_mix(lake, "halves").rows("train")
    ids, positions = mix.column("id").to_pylist(), mix.column("position").to_pylist()
    seed = FileSource(world["export"]).info.seed  # the file run's epochs shuffle from this
    order = [int(i) for e in range(12) for i in epoch_order(len(ids), e, seed)][:12]
    got = ledger(lake, result.run_id)
    assert [r["record_id"] for r in got] == [ids[i] for i in order]
    assert [r["position"] for r in got] == [positions[i] for i in order]
    assert [r["step"] for r in got] == [s for s in range(1, 7) for _ in range(2)]


def test_cli_runs_import(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixlake.cli import main

    lake = make_lake(tmp_path, {"toy": ROWS})
    materialize_mix(lake, parse_spec(SPEC))
    run_dir, run_id = world["from_file"].run_dir, world["from_file"].run_id
    uri = ["--lake", lake.uri]
    assert main(["runs", "import", str(run_dir), *uri]) == 0
    captured = capsys.readouterr()
    assert f"imported run {run_id}" in captured.out and "exposures: " in captured.err
    assert get_run(lake, run_id).status == "finished"
    assert main(["runs", "import", str(run_dir), *uri]) == 0
    captured = capsys.readouterr()
    assert "already in the lake" in captured.out and "nothing to import" in captured.err
    assert main(["runs", "import", str(tmp_path / "nope"), *uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no such run folder" in err and "\n" not in err
