"""What is evaluated: a training run (its adapter on its base model) or a base model.

A target is resolved from the lake without loading anything, so a run that does not exist fails
before any model loads. Its `label` names the columns: the run id, or `base_<model>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from curation.lake import Lake
from evals.errors import EvalError

SHIPPED = ("smollm2",)
RUN_ID = re.compile(r"^r[0-9a-f]{6,}$")
_BASE_KEYS = ("base_model", "base", "model")


@dataclass(frozen=True)
class Target:
    """A resolved eval target.

    Attributes:
        label: the column/`evals.run_id` name: a run id, or `base_<model>`.
        base: the base model: `smollm2` or a local model folder.
        adapter: the LoRA adapter folder of a run, None for a base model.
        mix: the mix the run trained on (None for a base model).
        mix_version: the version of that mix.
        mix_checksum: that mix's checksum, as the run recorded it.
    """

    label: str
    base: str
    adapter: str | None = None
    mix: str | None = None
    mix_version: int | None = None
    mix_checksum: str | None = None

    @property
    def is_run(self) -> bool:
        """Whether this is a training run (not a bare base model)."""
        return self.adapter is not None


def column_label(text: str) -> str:
    """A name safe inside a column name: lower-case letters, digits and `_`."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", text.lower())).strip("_") or "model"


def base_label(model: str) -> str:
    """The label of a base model: `base_smollm2`, or `base_<folder name>` for a local folder."""
    name = model if model in SHIPPED else Path(model).name
    return "base_" + column_label(name)


def find_run(lake: Lake, run_id: str) -> dict[str, Any] | None:
    """The `runs` row of `run_id` (latest one written), or None."""
    if not lake.has_table("runs") or "'" in run_id:
        return None
    rows = lake.dataset("runs").to_table(filter=f"run_id = '{run_id}'").to_pylist()
    return rows[-1] if rows else None


def resolve_target(lake: Lake, target: str) -> Target:
    """Resolve a run id (from the `runs` table), a shipped model name or a local model folder.

    Raises:
        EvalError: not a known run, shipped model or model folder; or the run has no adapter.
    """
    run = find_run(lake, target)
    if run is not None:
        adapter = run.get("adapter_path")
        if not adapter:
            raise EvalError(
                f"run {target} has no adapter (status {run.get('status')!r}); it did not finish "
                "training"
            )
        return Target(
            label=column_label(target),
            base=_run_base(run),
            adapter=str(adapter),
            mix=run.get("mix"),
            mix_version=run.get("mix_version"),
            mix_checksum=run.get("mix_checksum"),
        )
    if target.startswith("base_") and target.removeprefix("base_") in SHIPPED:
        target = target.removeprefix("base_")
    if target in SHIPPED:
        return Target(label=base_label(target), base=target)
    folder = Path(target)
    if folder.is_dir() and (folder / "config.json").is_file():
        return Target(label=base_label(str(folder)), base=str(folder.resolve()))
    if RUN_ID.match(target):
        known = _known_runs(lake)
        raise EvalError(
            f"no run {target!r} in the runs table (runs: {', '.join(known[-5:]) or 'none'}); "
            "see `mixlake runs`"
        )
    raise EvalError(
        f"unknown eval target {target!r}: give a run id from `mixlake runs`, a shipped model "
        f"({', '.join(SHIPPED)}) or a local model folder with a config.json"
    )


def _run_base(run: dict[str, Any]) -> str:
    config = run.get("config") or ""
    try:
        parsed = yaml.safe_load(config) if isinstance(config, str) else config
    except yaml.YAMLError:
        parsed = None
    if isinstance(parsed, dict):
        for key in _BASE_KEYS:
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("name"), str):
                return str(value["name"])
    raise EvalError(
        f"run {run.get('run_id')}: its config names no base model ({' / '.join(_BASE_KEYS)})"
    )


def _known_runs(lake: Lake) -> list[str]:
    if not lake.has_table("runs"):
        return []
    return [str(r) for r in lake.dataset("runs").to_table(columns=["run_id"])["run_id"].to_pylist()]
