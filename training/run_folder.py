"""What a run keeps in its own folder, `output_dir/<run_id>/`, lake or no lake.

`run.json` records the run (config, data source, status, metrics) and is rewritten when the
run starts, fails or finishes; the trainer's `checkpoint-N/` folders are what `--resume`
continues from. The commit of the training code is part of the record.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from training.errors import TrainingError

if TYPE_CHECKING:
    from curation import Lake
    from training.runs import Run
    from training.sources import ExampleSource

RUN_FILE = "run.json"
ADAPTER = "adapter"


def git_commit() -> str | None:
    """The commit of the code that trains (with `+dirty` for local changes), if in a repo."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def write_run_file(run_dir: Path, run: Run, source: ExampleSource, lake: Lake | None) -> None:
    """Write (or rewrite) `run.json`: the run as `runs` holds it, plus where its data came from."""
    data = {
        "run_id": run.run_id,
        "status": run.status,
        "config": yaml.safe_load(run.config),
        "source": {
            "mix": source.info.mix,
            "mix_version": source.info.mix_version,
            "checksum": source.info.checksum,
            "records_version": source.info.records_version,
            "origin": source.info.origin,
        },
        "lake": lake.uri if lake is not None else None,
        "git_commit": run.git_commit,
        "metrics": run.metrics,
        "best_metrics": run.best_metrics,
        "adapter_path": run.adapter_path,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    (run_dir / RUN_FILE).write_text(json.dumps(data, indent=2, default=str))


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
        info = json.loads(run_file.read_text())
        ckpts = checkpoints(run_file.parent)
        if info.get("status") != "finished" and ckpts:
            candidates.append((run_file.stat().st_mtime, run_file.parent, ckpts[-1][0]))
    if not candidates:
        raise TrainingError(
            f"--resume: no unfinished run with a checkpoint under {output_dir} (checkpoints are "
            "written every save_steps)"
        )
    _, folder, step = max(candidates)
    return folder, step
