"""Training commands: train, runs (list/show/import), impact, generate, model prepare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from curation import Lake
from curation.lake import default_lake_uri, lance_exists
from mixlake.options import LakeOpt, checked_where, open_lake
from mixlake.output import console, err_console, show_table, summary
from training import (
    TrainingError,
    get_run,
    impact,
    import_run,
    list_runs,
    load_config,
    train,
)
from training.distributed import ranks_from_env


def _quiet_libraries() -> None:
    """Keep library deprecation chatter and weight-loading bars out of the command's output."""
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*[Pp]aged optimizers.*")
    warnings.filterwarnings("ignore", message=".*gradient checkpointing.*")
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _lake_for(config_needs_lake: bool, uri: str | None) -> Lake | None:
    """The lake: required for a lake mix; used when present for an exported file."""
    if config_needs_lake:
        return open_lake(uri)
    where = uri or default_lake_uri()
    return Lake(where) if lance_exists(f"{where.rstrip('/')}/records.lance") else None


def train_cmd(
    config: Annotated[Path, typer.Argument(help="A training config YAML (training/configs/).")],
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the latest unfinished run from its checkpoint."),
    ] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: key=value (repeatable)."),
    ] = None,
    lake: LakeOpt = None,
) -> None:
    """QLoRA fine-tune on a mix (or an exported mix file); registers the run and its exposures."""
    cfg = load_config(config, overrides or [])
    the_lake = _lake_for(cfg.mix is not None, lake)
    _quiet_libraries()
    result = train(cfg, the_lake, resume=resume)
    m = result.metrics
    if not ranks_from_env().is_main:
        return  # under torchrun every rank runs this command; rank 0 speaks for the run
    summary(
        "trained",
        {
            "run": result.run_id,
            "steps": result.steps,
            "resumed from": result.resumed_from_step or "-",
            "train loss": m.get("train_loss", "-"),
            "eval loss": m.get("eval_loss", "-"),
            "tokens/s": m.get("tokens_per_s", 0.0),
            "exposures": result.exposures,
            **_row_counts(result.rows),
            "column": result.train_loss_column or "-",
            "adapter": result.adapter_path,
        },
    )


def runs_list(
    ctx: typer.Context,
    lake: LakeOpt = None,
) -> None:
    """List training runs (newest first)."""
    if ctx.invoked_subcommand is not None:
        return
    runs = list_runs(open_lake(lake))
    show_table(
        "runs",
        [
            "run",
            "status",
            "mix",
            "records v",
            "steps",
            "train loss",
            "eval loss",
            "started",
            "commit",
        ],
        [
            (
                r.run_id,
                r.status,
                f"{r.mix}@{r.mix_version}" if r.mix_version is not None else r.mix,
                r.records_version,
                r.metrics.get("steps"),
                r.metrics.get("train_loss"),
                r.metrics.get("eval_loss"),
                r.started_at,
                r.git_commit,
            )
            for r in runs
        ],
    )
    summary("runs", {"count": len(runs)})


def runs_show(
    run_id: Annotated[str, typer.Argument(metavar="ID")],
    plot: Annotated[Path | None, typer.Option(help="Draw the loss curve into a PNG.")] = None,
    lake: LakeOpt = None,
) -> None:
    """One run: config, data, metrics and the loss curve."""
    run = get_run(open_lake(lake), run_id)
    for key in ("run_id", "status", "mix", "mix_version", "mix_checksum", "records_version"):
        console.print(f"[bold]{key}[/]: {getattr(run, key)}")
    for key in ("git_commit", "adapter_path", "started_at", "finished_at"):
        console.print(f"[bold]{key}[/]: {getattr(run, key)}")
    metrics = {k: v for k, v in run.metrics.items() if k != "history"}
    console.print(f"[bold]metrics[/]: {metrics}")
    console.print(f"[bold]best_metrics[/]: {run.best_metrics}")
    console.print("[bold]config[/]:")
    console.print(run.config, markup=False)
    history = run.metrics.get("history", [])
    show_table(
        "loss curve",
        ["step", "train loss", "eval loss", "learning rate"],
        [
            (h.get("step"), h.get("loss"), h.get("eval_loss"), h.get("learning_rate"))
            for h in history
        ],
    )
    if plot is not None:
        plot_history(history, plot, run.run_id)
    summary("run", {"id": run.run_id, "status": run.status, "plot": plot or "-"})


def runs_import(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run folder: output_dir/<run_id>.")
    ],
    lake: LakeOpt = None,
) -> None:
    """Bring a run trained from an exported mix file into the lake (runs, exposures, loss)."""
    result = import_run(open_lake(lake), run_dir)
    if not result.imported:
        console.print(result.message)
        summary("nothing to import", {"run": result.run_id, "status": result.status})
        return
    console.print(result.message)
    if result.missing_ids:
        sample = ", ".join(result.missing_sample[:3])
        err_console.print(
            f"[yellow]![/] {result.missing_ids} of {result.record_ids} record ids are not in "
            f"the lake (e.g. {sample}): their exposures are kept, they have no train loss"
        )
    for note in result.notes:
        err_console.print(f"[yellow]![/] {note}")
    summary(
        "imported",
        {
            "run": result.run_id,
            "status": result.status,
            "exposures": result.exposures,
            "rows": result.record_ids,
            "not in lake": result.missing_ids,
            "column": result.train_loss_column or "-",
            "pinned": result.pinned_version if result.pinned_version is not None else "-",
        },
    )


def plot_history(history: list[dict[str, float]], out: Path, title: str) -> Path:
    """Write the train/eval loss curve to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        raise TrainingError(f"run {title} has no logged losses to plot")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    train_pts = [(h["step"], h["loss"]) for h in history if "loss" in h]
    eval_pts = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    if train_pts:
        ax.plot(*zip(*train_pts, strict=True), label="train loss")
    if eval_pts:
        ax.plot(*zip(*eval_pts, strict=True), "o--", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(f"run {title}")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def impact_cmd(
    where: Annotated[
        str | None,
        typer.Option("--where", help="SQL predicate over records.", callback=checked_where),
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="An ingest batch id.")] = None,
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="Records version to select from.")
    ] = None,
    lake: LakeOpt = None,
) -> None:
    """Which runs and mixes used these rows (from the exposure ledger and the mix tables)."""
    result = impact(open_lake(lake), where=where, batch=batch, version=version)
    show_table(
        "runs that trained on these rows",
        ["run", "rows", "exposures", "steps", "mix", "status", "adapter"],
        [
            (
                r["run_id"],
                r["rows"],
                r["exposures"],
                r["steps"],
                r["mix"],
                r["status"],
                r["adapter"],
            )
            for r in result.runs
        ],
    )
    show_table(
        "mixes holding these rows",
        ["mix", "version", "rows"],
        [(m["mix"], m["mix_version"], m["rows"]) for m in result.mixes],
    )
    summary(
        "impact", {"rows": result.rows, "runs": len(result.runs), "mix versions": len(result.mixes)}
    )


def generate_cmd(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    run: Annotated[str | None, typer.Option("--run", help="Use this run's adapter.")] = None,
    base: Annotated[
        str | None, typer.Option("--base", help="Base model (default: the run's).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 48,
    lake: LakeOpt = None,
) -> None:
    """Chat-complete one message with a run's adapter (or a base model alone)."""
    from training.models import generate, load_for_inference

    adapter = None
    base_model = base
    if run is not None:
        record = get_run(open_lake(lake), run)
        if not record.adapter_path:
            raise TrainingError(f"run {run} has no adapter (status {record.status})")
        adapter = record.adapter_path
        if base_model is None:
            import yaml

            base_model = yaml.safe_load(record.config)["base_model"]
    if base_model is None:
        raise TrainingError("give --run ID or --base MODEL")
    _quiet_libraries()
    model, tokenizer = load_for_inference(base_model, adapter)
    text = generate(model, tokenizer, [{"role": "user", "content": prompt}], max_new_tokens)
    console.print(f"[cyan]user[/]: {prompt}")
    console.print(f"[green]assistant[/]: {text}", markup=True)
    summary("generated", {"model": base_model, "adapter": run or "-", "tokens": max_new_tokens})


def model_prepare(
    name: Annotated[str, typer.Argument(help="The shipped model alias: smollm2.")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if prepared.")] = False,
) -> None:
    """Prepare a shipped model once (SmolLM2: GGUF → cached bf16 Hugging Face folder)."""
    from curation import CurationError
    from curation.models import SMOLLM2, prepare_smollm2

    if name != SMOLLM2:
        raise TrainingError(f"unknown shipped model {name!r}; known: {SMOLLM2}")
    try:
        folder = prepare_smollm2(force=force)
    except CurationError as e:
        raise TrainingError(str(e)) from None
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    summary("model ready", {"model": name, "folder": folder, "MB": round(size / 1e6)})


def register(app: typer.Typer) -> None:
    """Attach the training commands."""
    app.command("train")(train_cmd)
    runs = typer.Typer(help="Training runs: list, show, import.", invoke_without_command=True)
    runs.callback()(runs_list)
    runs.command("show")(runs_show)
    runs.command("import")(runs_import)
    app.add_typer(runs, name="runs")
    app.command("impact")(impact_cmd)
    app.command("generate")(generate_cmd)
    model = typer.Typer(help="Shipped models.", no_args_is_help=True)
    model.command("prepare")(model_prepare)
    app.add_typer(model, name="model")


def _row_counts(rows: dict[str, Any]) -> dict[str, Any]:
    """`rows trained: N of M`, what was left out and why, and how many were truncated."""
    if not rows:
        return {}
    out: dict[str, Any] = {}
    if "rows_trained" in rows:
        out["rows trained"] = f"{rows['rows_trained']:,} of {rows.get('rows_in_split', '?'):,}"
    excluded = {k: v for k, v in (rows.get("rows_excluded") or {}).items() if v}
    out["left out"] = ", ".join(f"{v:,} {k}" for k, v in excluded.items()) or "0"
    if "rows_truncated" in rows:
        out["truncated"] = rows["rows_truncated"]
    return out
