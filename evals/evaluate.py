"""`evaluate`: run one suite for one target on a mix split or an eval set, and write it back.

Everything that can be checked without a model is checked first (suite name, target, mix or
eval set, references), so a bad request fails before any model loads. The rows are computed
by `evals.steps.SuiteStep` through `curation.steps.base.apply`; results computed elsewhere
(`mixlake eval import`) are written by `write_back` through the sparse write by id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace as replace_fields
from typing import Any

import orjson

from curation.commit import Entry
from curation.engine import Engine
from curation.errors import CurationError
from curation.lake import Lake
from curation.steps.base import apply
from curation.steps.provenance import column_provenance
from evals.data import EvalExample, eval_set_examples, mix_examples
from evals.errors import EvalError
from evals.registry import get_suite
from evals.result import EvalResult
from evals.steps import Loader, SuiteStep
from evals.suites import EvalOptions, Suite, SuiteOutput
from evals.targets import Target, resolve_target
from evals.writeback import append_run_metrics, stored_values, write_back

__all__ = ["EvalResult", "Loader", "RowsDone", "evaluate", "write_back"]

RowsDone = Callable[[int, int], None]
"""Called with (rows done, rows total) while the model runs."""


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
    engine: Engine | None = None,
) -> EvalResult:
    """Evaluate a run or a base model with one suite and write the results back.

    The per-row metrics are a column step (`evals.steps.SuiteStep`) run through
    `curation.steps.base.apply` on the evaluated rows: batched, resumable after a crash
    without recomputing finished batches, one commit with one journal entry; rows already
    evaluated are not computed again. The run-level metrics are aggregated from the values
    read back, so a resumed eval reports what an uninterrupted one would.

    Args:
        lake: the lake.
        target: a run id (its adapter from the `runs` table), `smollm2`, or a model folder.
        suite: heldout, generation, numeric, choice or judge.
        split: the mix split to evaluate (default test).
        mix: the mix (default: the run's mix); ignored when `eval_set` is given.
        limit: evaluate only the first N rows.
        eval_set: a lake source used as an eval set instead of a mix split.
        options: batch size, max length, generation length, tolerances.
        precision: None (a run as trained: nf4 base + adapter; a base model in full
            precision), `full` (a run's adapter on the full-precision base, labelled
            `<run>_fullprec`) or `nf4` (a base model quantized as training does, labelled
            `base_<model>_nf4`). The run-level results record it as `nf4_base` (1 or 0).
        replace: recompute the rows evaluated now even where values are stored (other
            rows keep theirs).
        write: write per-row columns and run-level rows (False: only compute, in memory).
        progress: callback (rows done, rows total).
        loader: loads `(model, tokenizer)` for a target (default `evals.models.load_model`).
        engine: where the rows are computed (`curation.ray_engine.RayEngine` runs them on
            Ray actors that load the model once); default local.

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
    split_name = None if eval_set else split
    result = EvalResult(
        target=resolved.label,
        suite=the_suite.name,
        split=split_name,
        mix=info["mix"],
        mix_checksum=info.get("mix_checksum"),
        records_version=int(info["records_version"]),
        run_level={},
        columns=(),
        version=None,
    )
    step = SuiteStep(the_suite, resolved, [], options, loader)
    if not write:
        model, tokenizer = step.model()
        out = _run(the_suite, model, tokenizer, selected, options, progress)
        return replace_fields(
            result,
            run_level={**out.run_level, "nf4_base": _nf4(resolved)},
            ids=out.ids,
            per_row=out.per_row,
            predictions=out.predictions,
        )
    return _evaluate_into(lake, step, selected, result, replace, progress, engine)


def _evaluate_into(
    lake: Lake,
    step: SuiteStep,
    selected: list[EvalExample],
    result: EvalResult,
    replace: bool,
    progress: RowsDone | None,
    engine: Engine | None,
) -> EvalResult:
    suite, options = step.suite, step.options
    # the tokenizer alone (no model) decides heldout's rows and counts its tokens, so an eval
    # with nothing left to compute never loads the model
    tokenizer = step.tokenizer() if suite.needs_tokenizer else None
    kept, excluded = suite.scorable(selected, tokenizer, options)
    step.examples = {ex.id: ex for ex in kept}
    ids = list(step.examples)
    names = tuple(step.output_schema().names)
    _check_alike(lake, step, replace)
    if replace and _made_alike(lake, step):
        # other rows keep their values; under other options they would be mislabelled, and
        # go (they stay in history)
        step.kept = stored_values(lake, names, exclude=ids)
    where = f"{result.mix}/{result.split}" if result.split else str(result.mix)
    entry = Entry(
        "eval",
        f"eval {result.target} {suite.name} on {where}: {len(ids)} rows → "
        f"eval_{result.target}_{suite.name}_*",
        {"target": result.target, "suite": suite.name, "columns": list(names), "rows": len(ids)},
    )
    wanted = ids + ([] if step.kept is None else step.kept.column("id").to_pylist())
    rows_progress = progress
    if progress is not None and not _on_ray(engine):
        # count the eval's rows as the model finishes them, not the table's rows scanned
        finished = [0]

        def tick(n: int) -> None:
            finished[0] += n
            progress(min(finished[0], len(ids)), len(ids))

        step.progress, rows_progress = tick, None
    try:
        report = apply(
            step,
            lake,
            ids=wanted,
            replace=replace,
            entry=entry,
            batch_size=options.rows_per_batch,
            progress=rows_progress,
            engine=engine,
        )
    except CurationError as e:
        raise EvalError(f"writing {step.name}: {e}") from None
    per_row, answers, done = _read_back(lake, suite, names, kept)
    run_level = suite.aggregate(done, {**per_row, "answer": answers}, options, tokenizer)
    run_level = {**run_level, **excluded, "nf4_base": _nf4(step.target)}
    evaluated = [ex.id for ex in done]
    append_run_metrics(
        lake,
        result.target,
        suite.name,
        run_level,
        mix=result.mix,
        mix_checksum=result.mix_checksum,
        records_version=result.records_version,
        split=result.split,
        ids=evaluated,
    )
    return replace_fields(
        result,
        run_level=run_level,
        columns=names,
        version=report.version,
        ids=evaluated,
        per_row=per_row,
        predictions=[a or "" for a in answers] if suite.answers else [],
        rows_written=report.rows_computed if report.version is not None else 0,
    )


def _read_back(
    lake: Lake, suite: Suite, names: tuple[str, ...], examples: list[EvalExample]
) -> tuple[dict[str, list[float | None]], list[str | None], list[EvalExample]]:
    """The stored values of `examples` (those whose first metric is set), in their order."""
    table = stored_values(lake, names, only=[ex.id for ex in examples])
    rows = {r["id"]: r for r in (table.to_pylist() if table is not None else [])}
    done = [ex for ex in examples if ex.id in rows]
    per_row = {
        m: [rows[ex.id][n] for ex in done] for m, n in zip(suite.metrics, names, strict=False)
    }
    answers = [rows[ex.id][names[-1]] for ex in done] if suite.answers else [None] * len(done)
    return per_row, answers, done


def _check_alike(lake: Lake, step: SuiteStep, replace: bool) -> None:
    """Refuse, in the eval's own words, to add rows made under other options."""
    schema = lake.records().schema
    first = step.output_schema().names[0]
    if replace or first not in schema.names or _made_alike(lake, step):
        return
    stored = column_provenance(schema.field(first)).get("params") or {}
    if stored.get("target") != step.target.label or stored.get("suite") != step.suite.name:
        return  # not an eval's columns: apply says what made them
    was_version, now_version = stored.get("suite_version", 1), step.suite.version
    if was_version != now_version:
        raise EvalError(
            f"{step.name}: the stored columns were made by version {was_version} of suite "
            f"{step.suite.name}, this is version {now_version}; pass --replace to recompute "
            "these rows (the others go null; the old values stay in history)"
        )
    was = stored.get("options", "not recorded")
    now = step.params().get("options")
    raise EvalError(
        f"{step.name}: the stored columns were made with options {was}, this eval uses {now}; "
        "evaluate with the same options, or pass --replace to recompute these rows (the "
        "others go null; the old values stay in history)"
    )


def _made_alike(lake: Lake, step: SuiteStep) -> bool:
    """Whether the stored columns (if any) were made with this step's parameters."""
    schema = lake.records().schema
    first = step.output_schema().names[0]
    if first not in schema.names:
        return False
    made_by = column_provenance(schema.field(first))
    return bool(made_by.get("params") == orjson.loads(orjson.dumps(step.params())))


def _on_ray(engine: Engine | None) -> bool:
    from curation.engine import current_engine

    return (engine or current_engine()).name != "local"


def _nf4(target: Target) -> float:
    return float(target.quantization is not None)


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
