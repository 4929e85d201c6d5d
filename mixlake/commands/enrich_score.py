"""Step commands derived from the step registry, and `mixlake label`.

Every registered step (`curation.steps.registry`) is a command: `mixlake <command>` for a
step without a group (`tokens`, `embed`, `pii`, …), `mixlake <group> <command>` for one in
a group (`score quality_heuristic_v1`, `dedup near`). Its options are the step's `Params`
fields (type, default and help from the declaration) plus the common step options, once:
`--where`, `--replace`, `--lake`, `--engine`, `--ray-address`, `--gpus-per-worker`. A
group's commands are read from the registry each time the CLI starts, so a step registered
by an imported module (a plugin, a test) is a command without touching this file.

A command prints the summary registered for its step with `@summarises(name)`, else the
step report's rows, columns and version.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.main import get_command

from curation import CurationError, Lake
from curation.labels import add_labels, ids_from_sql, parse_label, read_label_csv
from curation.steps import StepReport
from curation.steps.quality import reason_counts
from curation.steps.registry import StepEntry, lookup_step, registered_steps
from mixlake.options import LakeOpt, on_engine, open_lake, step_signature, step_values
from mixlake.output import step_items, step_progress, summary

Summary = Callable[[Lake, Any, Any, Any], None]
"""Prints a step command's summary: (lake, params, the step object or None, the report)."""

SUMMARIES: dict[str, Summary] = {}
"""Registry name → summary printer (`summarises`)."""

GROUP_HELP = {
    "score": "Compute a quality score column (heuristic rules, embedding classifier, or LLM judge).",
}
"""Help of the step groups this module attaches (others: see `attach_group`)."""


def summarises(name: str) -> Callable[[Summary], Summary]:
    """Decorator: `fn(lake, params, step, report)` prints the summary of step `name`."""

    def decorate(fn: Summary) -> Summary:
        SUMMARIES[name] = fn
        return fn

    return decorate


def _no_op(report: Any) -> bool:
    step = report if isinstance(report, StepReport) else getattr(report, "step", None)
    return bool(step is not None and step.no_op)


def _default_summary(entry: StepEntry, report: Any) -> None:
    step = report if isinstance(report, StepReport) else getattr(report, "step", None)
    items = step_items(step) if isinstance(step, StepReport) else {}
    summary(entry.name + (" (already there, no new version)" if _no_op(report) else ""), items)


def step_command(entry: StepEntry) -> Callable[..., None]:
    """The CLI function of a registered step: its `Params` options plus the common ones."""
    parameters = entry.parameters()
    custom_run = getattr(entry.cls, "run", None) is not None

    def command(**given: Any) -> None:
        params = entry.make_params(**step_values(parameters, given))
        lake = open_lake(given["lake"])
        label = " ".join(filter(None, (entry.group, entry.command)))
        step = None
        with (
            on_engine(given["engine"], given["ray_address"], given["gpus_per_worker"]),
            step_progress(label) as update,
        ):
            if custom_run:
                report = entry.run(
                    lake, params, where=given["where"], replace=given["replace"], progress=update
                )
            else:
                step = entry.build(params)
                report = entry.apply(
                    step, lake, where=given["where"], replace=given["replace"], progress=update
                )
        shown = SUMMARIES.get(entry.name)
        if shown is None:
            _default_summary(entry, report)
        else:
            shown(lake, params, step, report)

    signature = step_signature(parameters)
    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    command.__name__ = command.__qualname__ = entry.command.replace("-", "_")
    command.__doc__ = entry.help
    return command


def click_command(entry: StepEntry) -> Any:
    """The click command of a registered step (what a group holds)."""
    app = typer.Typer(add_completion=False)
    app.command(entry.command)(step_command(entry))
    return get_command(app)


class StepGroup(TyperGroup):
    """A group whose commands are the registered steps of its name, read when it is built.

    An unknown command is a one-line `CurationError` listing the group's steps.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for entry in registered_steps(self.name):
            if entry.command not in self.commands:
                self.add_command(click_command(entry), entry.command)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The step's command; an unknown name raises the registry's one-line error."""
        found = super().get_command(ctx, cmd_name)
        if found is None:
            lookup_step(cmd_name, self.name)  # raises, naming the known steps
        return found

    def list_commands(self, ctx: Any) -> list[str]:
        """The group's steps in registry order (shipped ones first)."""
        return list(self.commands)


def attach_group(app: typer.Typer, group: str, help: str) -> None:
    """Add `mixlake <group> <step>` for every registered step of `group`."""
    app.add_typer(
        typer.Typer(cls=StepGroup, no_args_is_help=True, add_completion=False),
        name=group,
        help=help,
    )


def attach_top_commands(app: typer.Typer) -> None:
    """Add `mixlake <command>` for every registered step without a group."""
    for entry in registered_steps(None, any_group=False):
        app.command(entry.command, help=entry.help)(step_command(entry))


# ------------------------------------------------------------------ step summaries
@summarises("tokens_v2")
def _tokens_summary(lake: Lake, params: Any, step: Any, report: StepReport) -> None:
    totals = lake.sql(
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


@summarises("quality_heuristic_v1")
def _heuristic_summary(lake: Lake, params: Any, step: Any, report: StepReport) -> None:
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


@summarises("quality_classifier_v1")
def _classifier_summary(lake: Lake, params: Any, step: Any, report: Any) -> None:
    info = report.info
    summary(
        "quality_classifier_v1" + (" (already there, no new version)" if _no_op(report) else ""),
        {
            **step_items(report.step),
            "labels": f"{info['labels']} ({info['good']} good, {info['bad']} bad)",
            "held-out accuracy": f"{info['held_out_accuracy']:.3f} on {info['held_out']} rows",
        },
    )


@summarises("quality_judge_v1")
def _judge_summary(lake: Lake, params: Any, step: Any, report: StepReport) -> None:
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


# ------------------------------------------------------------------ labels
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
    """Attach every top step command (tokens, embed, pii, …), the `score` group and label."""
    attach_top_commands(app)
    for group, text in GROUP_HELP.items():
        attach_group(app, group, text)
    app.command("label")(label)
