"""What a run keeps in its own folder, `output_dir/<run_id>/`, lake or no lake.

`run.json` (`training.run_record.RunRecord`) records the run (config, data source, status,
metrics) and is rewritten when the run starts, fails or finishes; the trainer's
`checkpoint-N/` folders are what `--resume` continues from. The commit of the training code is part of the record. `row_losses.json`
holds every per-row loss seen so far (by epoch), and a run from an exported file also keeps
its exposure ledger in `exposures.jsonl`, so `training.run_import` can bring it into a lake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from training.errors import TrainingError
from training.run_record import RUN_FILE, RunRecord

if TYPE_CHECKING:
    from curation import Lake
    from training.runs import Run
    from training.sources import ExampleSource

ADAPTER = "adapter"
LOSSES_FILE = "row_losses.json"
EXPOSURES_FILE = "exposures.jsonl"
EXPOSURE_COLUMNS = ("record_id", "position", "step", "epoch", "rank")
"""Fields of an `exposures.jsonl` row (files written before `rank` read it as 0)."""

RowLosses = dict[tuple[int, str], list[float]]
"""Per-row losses of a run: (epoch, record id) → the loss of each occurrence."""


def write_run_file(
    run_dir: Path, run: Run, source: ExampleSource, lake: Lake | None, world_size: int = 1
) -> RunRecord:
    """Write (or rewrite) `run.json` (`training.run_record.RunRecord`).

    It holds the run as `runs` does, plus where its data came from and the processes it
    trained with (`world_size`; `--resume` keeps the global batch).
    """
    record = RunRecord.of_run(run, source.info, lake.uri if lake is not None else None, world_size)
    record.write(run_dir)
    return record


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """The trainer checkpoints in a run folder as (step, folder), oldest first."""
    found = []
    for p in folder.glob("checkpoint-*"):
        suffix = p.name.removeprefix("checkpoint-")
        if suffix.isdigit() and (p / "trainer_state.json").is_file():
            found.append((int(suffix), p))
    return sorted(found)


def find_resumable(output_dir: Path) -> tuple[Path, int]:
    """The latest unfinished run folder under `output_dir` with a checkpoint, and its step.

    Raises:
        TrainingError: no such run.
    """
    candidates = []
    for run_file in output_dir.glob(f"*/{RUN_FILE}"):
        record = RunRecord.from_file(run_file)
        ckpts = checkpoints(run_file.parent)
        if record.status != "finished" and ckpts:
            candidates.append((run_file.stat().st_mtime, run_file.parent, ckpts[-1][0]))
    if not candidates:
        raise TrainingError(
            f"--resume: no unfinished run with a checkpoint under {output_dir} (checkpoints are "
            "written every save_steps)"
        )
    _, folder, step = max(candidates)
    return folder, step


def read_run_file(run_dir: Path) -> RunRecord:
    """The `run.json` of a run folder.

    Raises:
        TrainingError: no such folder, no `run.json`, or one that is not a run record.
    """
    return RunRecord.from_file(run_dir)


def save_row_losses(folder: Path, losses: RowLosses) -> None:
    """Persist the per-row losses (a resumed run keeps them; an import reads them)."""
    data = [[e, rid, v] for (e, rid), v in losses.items()]
    (folder / LOSSES_FILE).write_text(json.dumps(data))


def load_row_losses(folder: Path) -> RowLosses:
    """The losses saved by `save_row_losses` (empty when there are none)."""
    path = folder / LOSSES_FILE
    if not path.is_file():
        return {}
    return {(int(e), str(rid)): list(v) for e, rid, v in json.loads(path.read_text())}


def final_epoch_losses(losses: RowLosses, config: dict[str, Any] | None = None) -> dict[str, float]:
    """Mean loss per record id over its occurrences in the final epoch.

    The final epoch is the last one trained; for a run of `num_train_epochs` (no
    `max_steps`) it is epoch `num_train_epochs - 1`, not the next epoch's first rows that fill
    the run's last global batch.
    """
    if not losses:
        return {}
    last = max(epoch for epoch, _ in losses)
    if config is not None and int(config.get("max_steps", -1)) <= 0:
        last = min(last, int(config.get("num_train_epochs", 1)) - 1)
    return {rid: sum(v) / len(v) for (epoch, rid), v in losses.items() if epoch == last}


def save_exposures(run_dir: Path, rows: pa.Table, after_step: int) -> int:
    """Append exposure rows to `exposures.jsonl`, first dropping its rows past `after_step`.

    A resumed run continues from a checkpoint at `after_step`; the rows it wrote past that
    step before it stopped are consumed again, so they go. Returns rows appended.
    """
    path = run_dir / EXPOSURES_FILE
    if path.is_file() and _last_step(path) > after_step:
        kept = [line for line in path.read_bytes().splitlines() if _step(line) <= after_step]
        path.write_bytes(b"".join(line + b"\n" for line in kept))
    with path.open("ab") as f:
        if "rank" not in rows.schema.names:
            rows = rows.append_column("rank", pa.array([0] * rows.num_rows, pa.int32()))
        for row in rows.select(list(EXPOSURE_COLUMNS)).to_pylist():
            f.write(orjson.dumps(row) + b"\n")
    return rows.num_rows


def load_exposures(run_dir: Path) -> pa.Table | None:
    """The exposures kept in a run folder (record_id, position, step, epoch, rank); None without."""
    path = run_dir / EXPOSURES_FILE
    if not path.is_file():
        return None
    cols: dict[str, list[Any]] = {k: [] for k in EXPOSURE_COLUMNS}
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                for k in EXPOSURE_COLUMNS:
                    cols[k].append(row.get(k, 0) if k == "rank" else row[k])
            except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                raise TrainingError(f"{path}:{number}: not an exposure row ({e})") from None
    types = {"record_id": pa.string(), "position": pa.int64(), "step": pa.int64()}
    return pa.table({k: pa.array(v, types.get(k, pa.int32())) for k, v in cols.items()})


def _step(line: bytes) -> int:
    return int(orjson.loads(line)["step"]) if line.strip() else 0


def _last_step(path: Path) -> int:
    # Steps only grow along the file, so its last line tells; read just the tail.
    with path.open("rb") as f:
        f.seek(max(0, f.seek(0, 2) - 4096))
        lines = [line for line in f.read().splitlines() if line.strip()]
    return _step(lines[-1]) if lines else 0
