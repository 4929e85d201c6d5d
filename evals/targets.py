"""What is evaluated: a training run (its adapter on its base model) or a base model.

A target is resolved from the lake without loading anything, so a run that does not exist fails
before any model loads. Its `label` names the columns: the run id, or `base_<model>`.

A run is evaluated as it was trained by default: its nf4 (bitsandbytes 4-bit) base with the
adapter, in the run's compute dtype on the run's device. `precision="full"` evaluates the
adapter on the full-precision base instead and is labelled `<run>_fullprec` in results and
column names; `precision="nf4"` quantizes a base model as a run would be, `base_<model>_nf4`,
so a tuning gain can be read without the quantization's share in it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from curation.lake import Lake
from curation.sqltext import equals
from evals.errors import EvalError

SHIPPED = ("smollm2",)
PRECISIONS = ("trained", "full", "nf4")
FULL_SUFFIX = "_fullprec"
NF4_SUFFIX = "_nf4"
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
        quantization: how the base is loaded: None for full precision, else the run's (or
            nf4's default) `load_in_4bit` settings: quant_type, double_quant, compute_dtype,
            device.
    """

    label: str
    base: str
    adapter: str | None = None
    mix: str | None = None
    mix_version: int | None = None
    mix_checksum: str | None = None
    quantization: dict[str, Any] | None = None

    @property
    def precision(self) -> str:
        """`nf4` (4-bit base) or `full`, as written into the results."""
        return "nf4" if self.quantization else "full"

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
    if not lake.has_table("runs"):
        return None
    rows = lake.dataset("runs").to_table(filter=equals("run_id", run_id)).to_pylist()
    return rows[-1] if rows else None


def resolve_target(lake: Lake, target: str, precision: str | None = None) -> Target:
    """Resolve a run id (from the `runs` table), a shipped model name or a local model folder.

    Args:
        lake: the lake.
        target: a run id, `smollm2` (or `base_smollm2`), or a model folder.
        precision: `trained` (a run's default: its nf4 base as trained), `full` (the default
            for a base model; for a run, labelled `<run>_fullprec`), or `nf4` (a base model
            quantized as training does, labelled `base_<model>_nf4`).

    Raises:
        EvalError: not a known run, shipped model or model folder; the run has no adapter; or
            an unknown precision.
    """
    if precision is not None and precision not in PRECISIONS:
        raise EvalError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    resolved = _resolve(lake, target)
    if resolved.is_run:
        if precision == "full" or resolved.quantization is None:
            label = resolved.label + (FULL_SUFFIX if resolved.quantization else "")
            return dataclasses.replace(resolved, label=label, quantization=None)
        return resolved
    if precision == "nf4":
        return dataclasses.replace(
            resolved, label=resolved.label + NF4_SUFFIX, quantization=dict(NF4_DEFAULT)
        )
    return resolved


NF4_DEFAULT = {
    "quant_type": "nf4",
    "double_quant": True,
    "compute_dtype": "bfloat16",
    "device": "auto",
}


def _resolve(lake: Lake, target: str) -> Target:
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
            quantization=_run_quantization(run),
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


def _run_config(run: dict[str, Any]) -> dict[str, Any]:
    config = run.get("config") or ""
    try:
        parsed = yaml.safe_load(config) if isinstance(config, str) else config
    except yaml.YAMLError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {}


def adapter_target(
    label: str, base: str, adapter: str | None, precision: str | None = None
) -> Target:
    """A target for an adapter folder outside the lake (an offline eval on a GPU box).

    The quantization comes from the `run.json` beside the adapter (the run's config), nf4 by
    default when there is none; `precision="full"` uses the full-precision base and adds
    `_fullprec` to the label.
    """
    if precision is not None and precision not in PRECISIONS:
        raise EvalError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if adapter is None:
        quant = dict(NF4_DEFAULT) if precision == "nf4" else None
        return Target(label + (NF4_SUFFIX if quant else ""), base, quantization=quant)
    from training.models import adapter_run_config

    run: dict[str, Any] = {"config": adapter_run_config(adapter) or {}}
    quant = _run_quantization(run) if precision != "full" else None
    if precision == "full" and _run_quantization(run) is not None:
        label += FULL_SUFFIX
    return Target(label, base, adapter=adapter, quantization=quant)


def _run_quantization(run: dict[str, Any]) -> dict[str, Any] | None:
    """The run's 4-bit settings (None: it trained on a full-precision base)."""
    config = _run_config(run)
    if not config.get("load_in_4bit", True):
        return None
    return {
        "quant_type": str(config.get("bnb_4bit_quant_type", NF4_DEFAULT["quant_type"])),
        "double_quant": bool(config.get("bnb_4bit_use_double_quant", True)),
        "compute_dtype": str(config.get("bnb_4bit_compute_dtype", NF4_DEFAULT["compute_dtype"])),
        "device": str(config.get("device", "auto")),
    }


def _run_base(run: dict[str, Any]) -> str:
    parsed = _run_config(run)
    if parsed:
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
