"""Evals computed away from the lake: evaluate an exported mix file, and import the results.

On a machine without the lake (e.g. a GPU box), `evaluate_export` runs a suite over the JSONL
written by `mixlake mix export` and `EvalResult.write_jsonl` saves per-row results keyed by
record id, with a manifest line naming the run, suite and mix checksum. Back home,
`import_results` writes them into the lake exactly as a local eval would, and refuses results
whose mix checksum does not match the lake's mix (or the run's).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from curation.lake import Lake
from evals.data import from_rendered
from evals.errors import EvalError
from evals.evaluate import EvalResult, Loader, RowsDone, write_back
from evals.registry import get_suite
from evals.suites import EvalOptions
from evals.targets import adapter_target, base_label, column_label, find_run

if TYPE_CHECKING:
    from queries import MixManifest

_ALLOWED_KEYS = {"id"}


def evaluate_export(
    path: str | Path,
    base: str,
    suite: str,
    *,
    split: str = "test",
    adapter: str | None = None,
    run_id: str | None = None,
    limit: int | None = None,
    options: EvalOptions | None = None,
    precision: str | None = None,
    progress: RowsDone | None = None,
    loader: Loader | None = None,
) -> EvalResult:
    """Evaluate an exported mix (JSONL + its manifest) without a lake; nothing is written.

    Args:
        path: the JSONL written by `mixlake mix export NAME --format jsonl`.
        base: the base model (`smollm2` or a local folder).
        suite: heldout, generation, numeric or choice.
        split: the split to evaluate.
        adapter: a LoRA adapter folder (a run's `adapter/`).
        run_id: the run id the results belong to (default: `base_<model>`).
        limit: only the first N rows of the split.
        options: suite options.
        precision: None (an adapter on its nf4 base as trained, per the `run.json` beside
            it; a bare base in full precision), `full` or `nf4` (see `evals.targets`).
        progress: callback (rows done, rows total).
        loader: model loader (default `evals.models.load_model`).

    Raises:
        EvalError: bad suite, unreadable file or manifest, empty split, no references.
    """
    the_suite = get_suite(suite)
    manifest = _export_manifest(Path(path))
    rows = [r for r in _jsonl(Path(path)) if r.get("split") == split]
    if not rows:
        raise EvalError(f"{path}: no rows in split {split!r}")
    selected = the_suite.select(from_rendered(rows[:limit] if limit else rows))
    options = options or EvalOptions()
    the_suite.check(options)
    label = column_label(run_id) if run_id else base_label(base)
    target = adapter_target(label, base, adapter, precision)
    if loader is None:
        from evals.models import load_model

        loader = load_model
    model, tokenizer = loader(target)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], len(selected))

    out = the_suite.run(model, tokenizer, selected, options, tick)
    return EvalResult(
        target=target.label,
        suite=the_suite.name,
        split=split,
        mix=manifest.mix,
        mix_checksum=manifest.checksum,
        records_version=int(manifest.records_version or 0),
        run_level={**out.run_level, "nf4_base": float(target.quantization is not None)},
        columns=(),
        version=None,
        ids=out.ids,
        per_row=out.per_row,
        predictions=out.predictions,
    )


def read_results(path: str | Path) -> EvalResult:
    """Read a results file (manifest line, then one `{"id": …, metric: value}` per line).

    Raises:
        EvalError: a missing manifest, an unknown suite or metric, or a bad line (with its
            line number).
    """
    p = Path(path)
    lines = _jsonl(p)
    if not lines or "manifest" not in lines[0]:
        raise EvalError(f'{p}:1: the first line must be {{"manifest": {{run_id, suite, …}}}}')
    manifest = lines[0]["manifest"]
    for key in ("run_id", "suite"):
        if not manifest.get(key):
            raise EvalError(f"{p}:1: the manifest has no {key!r}")
    suite = get_suite(str(manifest["suite"]))
    per_row: dict[str, list[float | None]] = {m: [] for m in suite.metrics}
    ids = []
    for number, row in enumerate(lines[1:], start=2):
        unknown = set(row) - _ALLOWED_KEYS - set(suite.metrics)
        if unknown:
            raise EvalError(
                f"{p}:{number}: unknown key(s) {sorted(unknown)} for suite {suite.name} "
                f"(its metrics: {', '.join(suite.metrics)})"
            )
        rid = row.get("id")
        if not isinstance(rid, str) or not rid or any(c not in "0123456789abcdef" for c in rid):
            raise EvalError(f"{p}:{number}: bad or missing record id {rid!r}")
        for m in suite.metrics:
            value = row.get(m)
            if value is not None and not isinstance(value, int | float):
                raise EvalError(f"{p}:{number}: {m} must be a number, got {value!r}")
            per_row[m].append(None if value is None else float(value))
        if per_row[suite.metrics[0]][-1] is None:
            raise EvalError(f"{p}:{number}: {suite.metrics[0]} is required")
        ids.append(rid)
    if not ids:
        raise EvalError(f"{p}: no result rows after the manifest")
    metrics = manifest.get("metrics") or {
        m: sum(v for v in vals if v is not None) / max(1, sum(v is not None for v in vals))
        for m, vals in per_row.items()
    }
    return EvalResult(
        target=column_label(str(manifest["run_id"])),
        suite=suite.name,
        split=manifest.get("split"),
        mix=manifest.get("mix"),
        mix_checksum=manifest.get("mix_checksum") or manifest.get("checksum"),
        records_version=int(manifest.get("records_version") or 0),
        run_level={k: float(v) for k, v in metrics.items()},
        columns=(),
        version=None,
        ids=ids,
        per_row=per_row,
    )


def import_results(lake: Lake, path: str | Path, *, replace: bool = False) -> EvalResult:
    """Write a results file into the lake like a local eval (columns + `evals` rows).

    Raises:
        EvalError: the file is malformed, its mix checksum does not match the lake's mix or the
            run's, or it names records the lake does not have. Nothing is written then.
    """
    result = read_results(path)
    _check_checksum(lake, result, Path(path))
    _check_ids(lake, result, Path(path))
    return write_back(lake, result, replace=replace)


def _check_checksum(lake: Lake, result: EvalResult, path: Path) -> None:
    if result.mix and result.mix.startswith("eval-set:"):
        return
    if not result.mix or not result.mix_checksum:
        raise EvalError(f"{path}:1: the manifest needs the mix and its mix_checksum")
    run = find_run(lake, result.target)
    if (
        run is not None
        and run.get("mix") == result.mix
        and run.get("mix_checksum")
        not in (
            None,
            result.mix_checksum,
        )
    ):
        raise EvalError(
            f"{path}: mix checksum {result.mix_checksum[:12]} does not match run "
            f"{result.target}'s mix checksum {str(run['mix_checksum'])[:12]}; refusing to import"
        )
    from queries import list_mixes

    versions = [m for m in list_mixes(lake) if m.name == result.mix]
    if not versions:
        raise EvalError(f"{path}: mix {result.mix!r} is not in this lake; refusing to import")
    if result.mix_checksum not in {m.checksum for m in versions}:
        have = ", ".join(f"v{m.mix_version}={m.checksum[:12]}" for m in versions)
        raise EvalError(
            f"{path}: mix checksum {result.mix_checksum[:12]} matches no version of mix "
            f"{result.mix} ({have}); the results were computed on other rows — refusing to import"
        )


def _check_ids(lake: Lake, result: EvalResult, path: Path) -> None:
    have = set(lake.records().to_table(columns=["id"])["id"].to_pylist())
    for number, rid in enumerate(result.ids, start=2):
        if rid not in have:
            raise EvalError(f"{path}:{number}: record {rid} is not in records (latest version)")


def _export_manifest(path: Path) -> MixManifest:
    """The export's manifest (`STEM.manifest.yaml`, or the legacy `NAME.manifest.json`).

    Raises:
        EvalError: no manifest beside the file, or one that cannot be read.
    """
    from queries import MixManifest, QueryError

    try:
        return MixManifest.find(path)
    except QueryError as e:
        raise EvalError(str(e)) from None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        raw = path.read_bytes().splitlines()
    except OSError as e:
        raise EvalError(f"{path}: {e.strerror or e}") from None
    rows = []
    for number, line in enumerate(raw, start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise EvalError(f"{path}:{number}: not JSON ({e})") from None
        if not isinstance(row, dict):
            raise EvalError(f"{path}:{number}: expected a JSON object")
        rows.append(row)
    return rows
