"""`evaluate`: run one suite for one target on a mix split or an eval set, and write it back.

Everything that can be checked without a model is checked first (suite name, target, mix or
eval set, references), so a bad request fails before any model loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from curation.lake import Lake
from evals.data import EvalExample, eval_set_examples, mix_examples
from evals.errors import EvalError
from evals.registry import get_suite
from evals.suites import EvalOptions, Suite, SuiteOutput
from evals.targets import Target, resolve_target
from evals.writeback import append_run_metrics, write_rows

Loader = Callable[[Target], tuple[Any, Any]]
RowsDone = Callable[[int, int], None]
"""Called with (rows done, rows total) while the model runs."""


@dataclass(frozen=True)
class EvalResult:
    """One suite run for one target, and where it was written.

    Attributes:
        target: the target label (run id or `base_<model>`), as in column names.
        suite: the suite name.
        split: the mix split evaluated (None for an eval set).
        mix: the mix name, or `eval-set:<source>`.
        mix_checksum: the mix checksum (None for an eval set).
        records_version: the records version the rows were read at.
        run_level: overall metrics.
        columns: the per-row `records` columns.
        version: the records version the columns were written in (None: nothing new).
        ids: the rows evaluated; `per_row` holds their metrics, `predictions` any answers.
    """

    target: str
    suite: str
    split: str | None
    mix: str | None
    mix_checksum: str | None
    records_version: int
    run_level: dict[str, float]
    columns: tuple[str, ...]
    version: int | None
    ids: list[str] = field(default_factory=list)
    per_row: dict[str, list[float | None]] = field(default_factory=dict)
    predictions: list[str] = field(default_factory=list)
    rows_written: int = 0

    @property
    def rows(self) -> int:
        """Rows evaluated."""
        return len(self.ids)

    def write_jsonl(self, path: str | Path) -> Path:
        """Write these results in the format `mixlake eval import` reads (manifest line first)."""
        path = Path(path)
        manifest = {
            "manifest": {
                "run_id": self.target,
                "suite": self.suite,
                "split": self.split,
                "mix": self.mix,
                "mix_checksum": self.mix_checksum,
                "records_version": self.records_version,
                "metrics": self.run_level,
            }
        }
        lines = [orjson.dumps(manifest)]
        for k, i in enumerate(self.ids):
            lines.append(orjson.dumps({"id": i, **{m: v[k] for m, v in self.per_row.items()}}))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path


def evaluate(
    lake: Lake,
    target: str,
    suite: str,
    split: str = "test",
    mix: str | None = None,
    limit: int | None = None,
    *,
    eval_set: str | None = None,
    options: EvalOptions | None = None,
    precision: str | None = None,
    replace: bool = False,
    write: bool = True,
    progress: RowsDone | None = None,
    loader: Loader | None = None,
) -> EvalResult:
    """Evaluate a run or a base model with one suite and write the results back.

    Args:
        lake: the lake.
        target: a run id (its adapter from the `runs` table), `smollm2`, or a model folder.
        suite: heldout, generation, numeric or choice.
        split: the mix split to evaluate (default test).
        mix: the mix (default: the run's mix); ignored when `eval_set` is given.
        limit: evaluate only the first N rows.
        eval_set: a lake source used as an eval set instead of a mix split.
        options: batch size, max length, generation length, tolerances.
        precision: None (a run as trained: nf4 base + adapter; a base model in full
            precision), `full` (a run's adapter on the full-precision base, labelled
            `<run>_fullprec`) or `nf4` (a base model quantized as training does, labelled
            `base_<model>_nf4`). The run-level results record it as `nf4_base` (1 or 0).
        replace: overwrite stored per-row values that differ.
        write: write per-row columns and run-level rows (False: only compute).
        progress: callback (rows done, rows total).
        loader: loads `(model, tokenizer)` for a target (default `evals.models.load_model`).

    Raises:
        EvalError: bad suite, unknown target, missing mix/eval set, no references, or a write
            conflict. All but the last are raised before any model loads.
    """
    the_suite = get_suite(suite)
    if limit is not None and limit < 1:
        raise EvalError("--limit must be at least 1")
    resolved = resolve_target(lake, target, precision)
    examples, info = _examples(lake, resolved, mix, split, eval_set, limit)
    selected = the_suite.select(examples)
    options = options or EvalOptions()
    the_suite.check(options)
    if loader is None:
        from evals.models import load_model

        loader = load_model
    model, tokenizer = loader(resolved)
    out = _run(the_suite, model, tokenizer, selected, options, progress)
    split_name = None if eval_set else split
    result = EvalResult(
        target=resolved.label,
        suite=the_suite.name,
        split=split_name,
        mix=info["mix"],
        mix_checksum=info.get("mix_checksum"),
        records_version=int(info["records_version"]),
        run_level={**out.run_level, "nf4_base": float(resolved.quantization is not None)},
        columns=(),
        version=None,
        ids=out.ids,
        per_row=out.per_row,
        predictions=out.predictions,
    )
    return write_back(lake, result, replace=replace) if write else result


def write_back(lake: Lake, result: EvalResult, *, replace: bool = False) -> EvalResult:
    """Write an `EvalResult`'s per-row metrics as columns and its run-level metrics to `evals`."""
    suite = get_suite(result.suite)
    where = f"{result.mix}/{result.split}" if result.split else str(result.mix)
    report = write_rows(
        lake,
        result.target,
        suite.name,
        suite.metrics,
        result.ids,
        result.per_row,
        message=f"eval {result.target} {suite.name} on {where}: {result.rows} rows → "
        f"eval_{result.target}_{suite.name}_*",
        replace=replace,
    )
    append_run_metrics(
        lake,
        result.target,
        suite.name,
        result.run_level,
        mix=result.mix,
        mix_checksum=result.mix_checksum,
        records_version=result.records_version,
        split=result.split,
        ids=result.ids,
    )
    return EvalResult(
        **{
            **result.__dict__,
            "columns": report.columns,
            "version": report.version,
            "rows_written": report.rows_written,
        }
    )


def _examples(
    lake: Lake,
    target: Target,
    mix: str | None,
    split: str,
    eval_set: str | None,
    limit: int | None,
) -> tuple[list[EvalExample], dict[str, Any]]:
    if eval_set is not None:
        return eval_set_examples(lake, eval_set, limit)
    if mix is None and target.mix is not None:
        # a run is evaluated on the version of its mix it trained on
        return mix_examples(lake, target.mix, split, target.mix_version, limit)
    if mix is None:
        raise EvalError(
            f"eval target {target.label} is a base model: say what to evaluate on with --mix NAME "
            "or --eval-set SOURCE"
        )
    return mix_examples(lake, mix, split, limit=limit)


def _run(
    suite: Suite,
    model: Any,
    tokenizer: Any,
    examples: list[EvalExample],
    options: EvalOptions,
    progress: RowsDone | None,
) -> SuiteOutput:
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], len(examples))

    return suite.run(model, tokenizer, examples, options, tick)
