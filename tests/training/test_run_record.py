"""`RunRecord`: `run.json` written from a run and read back typed; bad files are one line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from training import TrainingError
from training.run_folder import find_resumable, read_run_file, write_run_file
from training.run_record import RUN_FILE, RunRecord, RunSource
from training.runs import Run
from training.sources import SourceInfo

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
RUN = Run(
    run_id="r0a1b2c3d",
    mix="chat",
    mix_version=2,
    mix_checksum="ab" * 16,
    records_version=9,
    config="base_model: smollm2\nmax_steps: 4\ndata_file: chat.train.jsonl\n",
    git_commit="f" * 40,
    status="finished",
    metrics={"steps": 4, "train_loss": 1.25},
    best_metrics={"train_loss": 1.2},
    adapter_path="/box/runs/r0a1b2c3d/adapter",
    started_at=START,
    finished_at=START + dt.timedelta(minutes=3),
)
INFO = SourceInfo("chat", 2, "ab" * 16, 9, 7, "chat.train.jsonl", exported_split="train")


class _Source:
    info = INFO


def test_a_run_written_reads_back_as_the_same_run(tmp_path: Path) -> None:
    written = write_run_file(tmp_path, RUN, _Source(), None, world_size=2)  # type: ignore[arg-type]
    record = read_run_file(tmp_path)
    assert record == written
    assert record.to_run() == RUN  # `runs import` registers exactly what trained
    assert record.source == RunSource("chat", 2, "ab" * 16, 9, "chat.train.jsonl", "train")
    assert record.config == {
        "base_model": "smollm2",
        "max_steps": 4,
        "data_file": "chat.train.jsonl",
    }
    assert record.world_size == 2 and record.lake is None
    data = json.loads((tmp_path / RUN_FILE).read_text())
    assert data["started_at"] == START.isoformat() and data["source"]["exported_split"] == "train"
    assert json.loads(record.to_json()) == data
    assert RunRecord.from_file(tmp_path / RUN_FILE) == record
    moved = record.to_run(adapter_path="/home/runs/adapter")
    assert moved.adapter_path == "/home/runs/adapter" and moved.run_id == RUN.run_id


def test_an_unfinished_run_with_a_checkpoint_is_resumable(tmp_path: Path) -> None:
    folder = tmp_path / RUN.run_id
    (folder / "checkpoint-3").mkdir(parents=True)
    (folder / "checkpoint-3" / "trainer_state.json").write_text("{}")
    RunRecord.of_run(RUN, INFO, None).write(folder)
    with pytest.raises(TrainingError, match="no unfinished run"):
        find_resumable(tmp_path)
    RunRecord.of_run(dataclasses.replace(RUN, status="failed"), INFO, None).write(folder)
    assert find_resumable(tmp_path) == (folder, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"started_at": "yesterday"}, "field 'started_at' must be an ISO 8601 time"),
        ({"run_id": "../etc"}, "bad run_id '../etc'"),
        ({"status": 3}, "field 'status' must be text, got 3"),
        ({"config": ["a"]}, "field 'config' must be an object"),
        ({"world_size": "2"}, "field 'world_size' must be an integer"),
        ({"source": {"mix": "m", "checksum": 5}}, "field 'checksum' must be text"),
    ],
)
def test_a_bad_field_is_one_line_naming_the_file(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    data = {**RunRecord.of_run(RUN, INFO, None).to_dict(), **change}
    (tmp_path / RUN_FILE).write_text(json.dumps(data))
    with pytest.raises(TrainingError) as got:
        read_run_file(tmp_path)
    text = str(got.value)
    assert text.startswith(f"{tmp_path / RUN_FILE}: ") and message in text and "\n" not in text


def test_missing_folders_files_and_fields(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="no such run folder"):
        read_run_file(tmp_path / "gone")
    with pytest.raises(TrainingError, match=r"not a run folder \(no run\.json"):
        read_run_file(tmp_path)
    (tmp_path / RUN_FILE).write_text("{not json")
    with pytest.raises(TrainingError, match="cannot read the run record"):
        read_run_file(tmp_path)
    (tmp_path / RUN_FILE).write_text('{"run_id": "r1", "status": "running"}')
    with pytest.raises(TrainingError, match="missing config, source, started_at"):
        read_run_file(tmp_path)
    (tmp_path / RUN_FILE).write_text("[1]")
    with pytest.raises(TrainingError, match="not a JSON object"):
        read_run_file(tmp_path)
