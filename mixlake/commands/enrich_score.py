"""Token counts, quality scores and labels: `mixlake tokens`, `mixlake score`, `mixlake label`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curation import CurationError, Lake
from curation.labels import add_labels, ids_from_sql, parse_label, read_label_csv
from curation.steps import apply
from curation.steps.classifier import score_with_classifier
from curation.steps.judge import JudgeQualityStep
from curation.steps.quality import HeuristicQualityStep, reason_counts
from curation.steps.tokens import TokenCountStep
from mixlake.options import (
    EngineOpt,
    GpusOpt,
    LakeOpt,
    RayAddressOpt,
    ReplaceOpt,
    WhereOpt,
    on_engine,
    open_lake,
)
from mixlake.output import step_items, step_progress, summary

JUDGE_BATCH = 32
"""Rows per judge `generate` call (and per `apply` batch: small batches make `--where` scans slow)."""
SCORERS = ("quality_heuristic_v1", "quality_classifier_v1", "quality_judge_v1")


def tokens(
    tokenizer: Annotated[
        str, typer.Option("--tokenizer", help="`smollm2` or a local Hugging Face tokenizer folder.")
    ] = "smollm2",
    where: WhereOpt = None,
    replace: ReplaceOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0,
) -> None:
    """Count tokens: n_tokens, plus n_prompt_tokens/n_completion_tokens for chat rows."""
    the_lake = open_lake(lake)
    step = TokenCountStep(tokenizer)
    with (
        on_engine(engine, ray_address, gpus_per_worker),
        step_progress("counting tokens") as update,
    ):
        report = apply(step, the_lake, where=where, replace=replace, progress=update)
    totals = the_lake.sql(
        "SELECT sum(n_tokens) AS t, sum(n_prompt_tokens) AS p, sum(n_completion_tokens) AS c "
        "FROM records"
    ).to_pylist()[0]
    summary(
        "token counts" if not report.no_op else "token counts already there (no new version)",
        {
            **step_items(report),
            "tokenizer": step.tokenizer_name,
            "total tokens": int(totals["t"] or 0),
            "prompt": int(totals["p"] or 0),
            "completion": int(totals["c"] or 0),
        },
    )


def score(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCORERS)}.")],
    where: WhereOpt = None,
    replace: ReplaceOpt = False,
    model: Annotated[
        str, typer.Option("--model", help="Judge model: `smollm2` or a local chat-model folder.")
    ] = "smollm2",
    lake: LakeOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0,
) -> None:
    """Compute a quality score column (heuristic rules, embedding classifier, or LLM judge)."""
    if name not in SCORERS:
        raise CurationError(f"unknown scorer {name!r}; choose one of {', '.join(SCORERS)}")
    the_lake = open_lake(lake)
    with on_engine(engine, ray_address, gpus_per_worker):
        if name == "quality_heuristic_v1":
            _score_heuristic(the_lake, where, replace)
        elif name == "quality_classifier_v1":
            _score_classifier(the_lake, where, replace)
        else:
            _score_judge(the_lake, model, where, replace)


def _score_heuristic(lake: Lake, where: str | None, replace: bool) -> None:
    with step_progress("quality_heuristic_v1") as update:
        report = apply(HeuristicQualityStep(), lake, where=where, replace=replace, progress=update)
    flagged = lake.sql(
        "SELECT count(*) AS n, avg(quality_heuristic_v1) AS mean FROM records "
        "WHERE len(quality_heuristic_v1_reasons) > 0"
    ).to_pylist()[0]
    mean = lake.sql("SELECT avg(quality_heuristic_v1) AS m FROM records").to_pylist()[0]["m"]
    reasons = {f"dropped for {r}": n for r, n in reason_counts(lake).items()}
    summary(
        "quality_heuristic_v1" + (" (already there, no new version)" if report.no_op else ""),
        {
            **step_items(report),
            "mean score": round(mean, 3) if mean is not None else "-",
            "rows failing ≥1 rule": flagged["n"],
            **reasons,
        },
    )


def _score_classifier(lake: Lake, where: str | None, replace: bool) -> None:
    with step_progress("quality_classifier_v1") as update:
        step, report = score_with_classifier(lake, where=where, replace=replace, progress=update)
    info = step.info
    summary(
        "quality_classifier_v1" + (" (already there, no new version)" if report.no_op else ""),
        {
            **step_items(report),
            "labels": f"{info['labels']} ({info['good']} good, {info['bad']} bad)",
            "held-out accuracy": f"{info['held_out_accuracy']:.3f} on {info['held_out']} rows",
        },
    )


def _score_judge(lake: Lake, model: str, where: str | None, replace: bool) -> None:
    step = JudgeQualityStep(model)
    with step_progress(f"quality_judge_v1 ({step.model_name})") as update:
        report = apply(
            step, lake, where=where, replace=replace, batch_size=JUDGE_BATCH, progress=update
        )
    dist = lake.sql(
        "SELECT quality_judge_v1 AS s, count(*) AS n FROM records "
        "WHERE quality_judge_v1_reply IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    summary(
        "quality_judge_v1" + (" (already there, no new version)" if report.no_op else ""),
        {
            **step_items(report),
            "model": step.model_name,
            "parse failures": step.parse_failures,
            "scores": ", ".join(f"{r['s'] if r['s'] is not None else '?'}: {r['n']}" for r in dist)
            or "-",
        },
    )


def label(
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="CSV of id,label (label good|bad|1|0).")
    ] = None,
    query: Annotated[
        str | None, typer.Option("--sql", help="SELECT id FROM records WHERE … to label.")
    ] = None,
    value: Annotated[
        str | None, typer.Option("--value", help="Label for the --sql rows: good|bad|1|0.")
    ] = None,
    labeller: Annotated[
        str | None, typer.Option("--labeller", help="Who labelled (default: the file or query).")
    ] = None,
    lake: LakeOpt = None,
) -> None:
    """Import quality labels into the `labels` table (one journaled append)."""
    the_lake = open_lake(lake)
    if (csv_file is None) == (query is None):
        raise CurationError("give exactly one of --csv FILE or --sql QUERY (with --value)")
    if csv_file is not None:
        if value is not None:
            raise CurationError("--value goes with --sql; a CSV carries its own labels")
        pairs = read_label_csv(csv_file)
        who = labeller or f"csv:{csv_file.name}"
    else:
        if value is None:
            raise CurationError("--sql needs --value good|bad|1|0")
        label_value = parse_label(value, "--value")
        pairs = [(i, label_value) for i in ids_from_sql(the_lake, query or "")]
        who = labeller or f"sql:{query}"
    report = add_labels(the_lake, pairs, who)
    summary(
        "labelled",
        {
            "rows": report.rows,
            "good": report.good,
            "bad": report.bad,
            "labelled in all": report.total_labelled,
            "labels version": report.version,
        },
    )


def register(app: typer.Typer) -> None:
    """Attach tokens, score and label."""
    app.command("tokens")(tokens)
    app.command("score")(score)
    app.command("label")(label)
