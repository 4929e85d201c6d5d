"""Eval commands: `mixlake eval RUN|BASE_MODEL --suite …` and the `eval` subcommands.

`eval compare`, `eval import`, `eval offline` (an exported mix, no lake), and `mixlake evals`
(run-level results).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from typer.core import TyperGroup

from evals import EvalOptions, EvalResult, evaluate, read_evals
from evals.compare import Comparison, compare
from evals.compare_plot import plot_comparison
from evals.remote import evaluate_export, import_results
from mixlake.options import EngineOpt, GpusOpt, LakeOpt, RayAddressOpt, on_engine, open_lake
from mixlake.output import console, err_console, show_table, summary

SuiteOpt = Annotated[str, typer.Option("--suite", help="heldout | generation | numeric | choice.")]
SplitOpt = Annotated[str, typer.Option("--split", help="Mix split to evaluate.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N rows.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Rows per forward pass.")]
MaxLenOpt = Annotated[int, typer.Option("--max-length", help="Tokens kept per row.")]
NewTokOpt = Annotated[int, typer.Option("--max-new-tokens", help="Tokens generated per answer.")]


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} rows/s" if speed else "… rows/s", style="cyan")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="trained (default: the run's own nf4 base + adapter), full (full-precision "
        "base, labelled <run>_fullprec) or nf4 (a base model quantized as runs train it).",
    ),
]


def run(
    target: Annotated[str, typer.Argument(help="A run id, `smollm2`, or a local model folder.")],
    suite: SuiteOpt = "heldout",
    split: SplitOpt = "test",
    mix: Annotated[str | None, typer.Option("--mix", help="Mix (default: the run's).")] = None,
    eval_set: Annotated[
        str | None, typer.Option("--eval-set", help="Evaluate a lake source instead of a mix.")
    ] = None,
    limit: LimitOpt = None,
    batch_size: BatchOpt = 4,
    max_length: MaxLenOpt = 512,
    max_new_tokens: NewTokOpt = 64,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Recompute these rows even where values are stored."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also write per-row results (import format)."),
    ] = None,
    precision: PrecisionOpt = None,
    lake: LakeOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0,
) -> None:
    """Evaluate a run or base model; per-row metrics become `eval_<target>_<suite>_*` columns.

    The rows are computed as a step (batched, resumable after a crash, one commit); with
    `--engine ray` on Ray actors that each load the model once.
    """
    the_lake = open_lake(lake)
    options = EvalOptions(
        batch_size=batch_size, max_length=max_length, max_new_tokens=max_new_tokens
    )
    with (
        on_engine(engine, ray_address, gpus_per_worker),
        _progress(f"eval {target} {suite}") as progress,
    ):
        result = evaluate(
            the_lake,
            target,
            suite,
            split,
            mix,
            limit,
            eval_set=eval_set,
            options=options,
            replace=replace,
            progress=progress,
            precision=_precision(precision),
        )
    _show_result(result)
    if out is not None:
        result.write_jsonl(out)
    summary(
        f"evaluated {result.target} · {result.suite}",
        {
            "on": f"{result.mix}/{result.split}" if result.split else result.mix,
            "rows": result.rows,
            "columns": len(result.columns),
            "version": result.version if result.version is not None else "unchanged",
            **({"results": str(out)} if out else {}),
        },
    )


def compare_cmd(
    a: Annotated[str, typer.Argument(help="Reference: run id or base model (e.g. smollm2).")],
    b: Annotated[str, typer.Argument(help="Compared with A; deltas are B − A.")],
    suite: Annotated[str | None, typer.Option("--suite", help="One suite.")] = None,
    metric: Annotated[
        str | None, typer.Option("--metric", help="Per-row metric for rows and groups.")
    ] = None,
    mix: Annotated[
        str | None, typer.Option("--mix", help="Only this mix's rows (or eval-set:NAME).")
    ] = None,
    split: SplitOpt = "test",
    top: Annotated[int, typer.Option("--top", help="Biggest wins/losses shown.")] = 5,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw it into a PNG.")] = None,
    method: Annotated[
        str, typer.Option("--method", help="Paired interval: t (default) or bca.")
    ] = "t",
    lake: LakeOpt = None,
) -> None:
    """Side-by-side metrics with delta and a paired CI of that delta, biggest wins/losses."""
    c = compare(
        open_lake(lake), a, b, suite, metric=metric, mix=mix, split=split, top=top, method=method
    )
    _show_comparison(c)
    if plot is not None:
        plot_comparison(c, plot)
    better = sum(1 for d in c.deltas if (d < 0 if c.lower_is_better else d > 0))
    summary(
        f"compared {c.a} → {c.b}",
        {
            "suite": c.suite,
            "paired rows": len(c.deltas),
            f"{c.b} better on": f"{better} rows",
            **({"plot": str(plot)} if plot else {}),
        },
    )


def import_cmd(
    file: Annotated[Path, typer.Argument(help="Results JSONL: manifest line, then id + metrics.")],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite differing values.")] = False,
    lake: LakeOpt = None,
) -> None:
    """Write per-row results computed elsewhere into the lake (checks the mix checksum)."""
    result = import_results(open_lake(lake), file, replace=replace)
    _show_result(result)
    summary(
        f"imported {result.target} · {result.suite}",
        {
            "rows": result.rows,
            "mix": result.mix,
            "version": result.version if result.version is not None else "unchanged",
        },
    )


def offline(
    export: Annotated[Path, typer.Argument(help="A mix exported with `mixlake mix export`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results file to write.")],
    base: Annotated[str, typer.Option("--base", help="smollm2 or a model folder.")] = "smollm2",
    adapter: Annotated[
        str | None, typer.Option("--adapter", help="A run's LoRA adapter folder.")
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id of the adapter.")] = None,
    suite: SuiteOpt = "heldout",
    split: SplitOpt = "test",
    limit: LimitOpt = None,
    batch_size: BatchOpt = 4,
    max_length: MaxLenOpt = 512,
    max_new_tokens: NewTokOpt = 64,
    precision: PrecisionOpt = None,
) -> None:
    """Evaluate an exported mix without a lake (e.g. on a GPU box); import the file later."""
    options = EvalOptions(
        batch_size=batch_size, max_length=max_length, max_new_tokens=max_new_tokens
    )
    with _progress(f"eval {run_id or base} {suite}") as progress:
        result = evaluate_export(
            export,
            base,
            suite,
            split=split,
            adapter=adapter,
            run_id=run_id,
            limit=limit,
            options=options,
            progress=progress,
            precision=_precision(precision),
        )
    _show_result(result)
    result.write_jsonl(out)
    summary(
        f"evaluated {result.target} · {result.suite} (not written to a lake)",
        {"rows": result.rows, "results": str(out), "import with": f"mixlake eval import {out}"},
    )


def evals_cmd(
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run id/label.")] = None,
    suite: Annotated[str | None, typer.Option("--suite", help="Only this suite.")] = None,
    lake: LakeOpt = None,
) -> None:
    """List run-level eval results (the `evals` table), newest last."""
    rows = [
        r
        for r in read_evals(open_lake(lake)).to_pylist()
        if (run_id is None or r["run_id"] == run_id) and (suite is None or r["suite"] == suite)
    ]
    show_table(
        "eval results",
        ["run", "suite", "mix", "split", "metric", "value", "records v", "commit", "at"],
        [
            (
                r["run_id"],
                r["suite"],
                r["mix"],
                r["split"] or "",
                r["metric"],
                r["value"],
                r["records_version"],
                r["git_commit"] or "",
                r["at"],
            )
            for r in rows
        ],
    )
    summary("evals", {"results": len(rows), "targets": len({r["run_id"] for r in rows})})


def _show_result(result: EvalResult) -> None:
    where = f"{result.mix}/{result.split}" if result.split else result.mix
    console.print(f"[bold]{result.target} · {result.suite} on {where}[/]")
    show_table(None, ["metric", "value"], sorted(result.run_level.items()))


def _show_comparison(c: Comparison) -> None:
    def ci(m: Any) -> str:
        if m.ci is None:
            return ""
        mark = " *" if m.ci.excludes_zero() else ""
        return f"[{m.ci.low:+.4g}, {m.ci.high:+.4g}] n={m.ci.n}{mark}"

    console.print(f"[bold]A = {c.a} · B = {c.b}[/] · delta = B − A")
    console.print(
        f"95% CI: paired {c.method} interval of the per-row mean difference; A, B and delta "
        "are per-row means over the n paired rows (* excludes 0)"
    )
    for note in c.notes:
        console.print(f"[yellow]note:[/] {note}", markup=True, highlight=False)
    show_table(
        None,
        ["suite", "on", "metric", "A", "B", "delta", "95% CI"],
        [
            (
                m.suite,
                f"{m.mix}/{m.split}" if m.split else m.mix,
                m.metric,
                m.a,
                m.b,
                m.delta,
                ci(m),
            )
            for m in c.metrics
        ],
    )
    better = "lower" if c.lower_is_better else "higher"
    for title, rows in (
        (f"biggest wins for {c.b}", c.wins),
        (f"biggest losses for {c.b}", c.losses),
    ):
        if rows:
            show_table(
                f"{title} ({c.suite}/{c.metric}, {better} is better)",
                ["id", "source", "text", "A", "B", "delta"],
                [
                    (r.id[:12], r.source, r.text[:70].replace("\n", " ⏎ "), r.a, r.b, r.delta)
                    for r in rows
                ],
            )
    show_table(
        f"breakdown of {c.suite}/{c.metric} by source, cluster and quality bucket",
        ["by", "group", "rows", "A", "B", "delta", "B better"],
        [(g.by, g.group, g.rows, g.a, g.b, g.delta, f"{g.b_wins}/{g.rows}") for g in c.breakdown],
    )


class _DefaultsToRun(TyperGroup):
    """`mixlake eval TARGET …` runs `eval run TARGET …`; named subcommands win."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Past the group's own flags (`--debug`, `-h`), a subcommand name or `run`'s arguments.
        at = 0
        while at < len(args) and args[at] in ("--debug", "-h", "--help"):
            at += 1
        if at < len(args) and args[at] not in self.commands:
            args = [*args[:at], "run", *args[at:]]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    """Attach `eval` (run, compare, import, offline) and `evals`."""
    sub = typer.Typer(
        cls=_DefaultsToRun,
        help="Evaluate runs and base models; results become lake columns. "
        "`mixlake eval TARGET --suite NAME` is short for `mixlake eval run TARGET …`.",
        no_args_is_help=True,
    )
    sub.command("run")(run)
    sub.command("compare")(compare_cmd)
    sub.command("import")(import_cmd)
    sub.command("offline")(offline)
    app.add_typer(sub, name="eval")
    app.command("evals")(evals_cmd)


def _precision(value: str | None) -> str | None:
    """`trained` is the default (None); `full` and `nf4` pass through."""
    if value in (None, "trained"):
        return None
    if value not in ("full", "nf4"):
        raise typer.BadParameter(f"--precision {value!r}: give trained, full or nf4")
    return value
