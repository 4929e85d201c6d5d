"""Mix commands: check, materialize, ls, show, diff, export (`mixlake mix …`)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from mixlake.options import LakeOpt, open_lake
from mixlake.output import console, err_console, row_progress, show_table, summary
from queries import (
    MaterializedMix,
    MixManifest,
    MixPlan,
    QueryError,
    diff_mixes,
    export_mix,
    format_names,
    list_mixes,
    load_spec,
    materialize_mix,
    open_mix,
)
from queries.coverage import no_reply_warnings, rows_without_reply
from queries.plan import select_mix

SpecArg = Annotated[Path, typer.Argument(help="A mix spec YAML, e.g. queries/mixes/NAME.yaml.")]


def check(spec: SpecArg, lake: LakeOpt = None) -> None:
    """Validate a spec against the lake without writing; print the plan and every problem."""
    parsed = load_spec(spec)
    the_lake = open_lake(lake)
    with err_console.status(f"checking {parsed.name}…"):
        plan, selection = select_mix(the_lake, parsed)
    _show_plan(plan)
    if plan.problems:
        raise QueryError(f"{len(plan.problems)} problem(s) in {spec}; nothing written")
    if selection is not None and plan.records_version is not None:
        counts = rows_without_reply(the_lake, plan.records_version, selection)
        for warning in no_reply_warnings(counts):
            err_console.print(f"[yellow]![/] {warning}", markup=True, highlight=False)
    summary(
        "spec ok",
        {
            "mix": plan.spec.name,
            "records version": plan.records_version,
            "rows": plan.rows,
            "tokens": plan.tokens if plan.tokens is not None else "-",
            "splits": plan.splits,
        },
    )


def materialize(spec: SpecArg, lake: LakeOpt = None) -> None:
    """Select the rows of a spec and write them as a new mix version (pinned records version)."""
    the_lake = open_lake(lake)
    parsed = load_spec(spec)

    def shown(plan: MixPlan) -> None:
        status.stop()
        _show_plan(plan)
        if plan.problems:
            raise QueryError(f"{len(plan.problems)} problem(s) in {spec}; nothing written")

    with err_console.status(f"selecting rows for {parsed.name}…") as status:
        mix = materialize_mix(the_lake, parsed, on_plan=shown)
    summary(
        "materialized" if mix.is_new else "unchanged (same spec and records version)",
        {
            "mix": mix.ref,
            "rows": mix.row_count,
            "tokens": mix.tokens if mix.tokens is not None else "-",
            "records version": mix.records_version,
            "checksum": mix.checksum[:16],
        },
    )


def ls(lake: LakeOpt = None) -> None:
    """List every version of every mix."""
    infos = list_mixes(open_lake(lake))
    show_table(
        "mixes",
        ["mix", "version", "records v", "rows", "tokens", "checksum", "created (UTC)"],
        [
            (
                m.name,
                m.mix_version,
                m.records_version,
                m.rows,
                m.tokens if m.tokens is not None else "-",
                m.checksum[:12],
                m.created_at,
            )
            for m in infos
        ],
    )
    summary("mixes", {"names": len({m.name for m in infos}), "versions": len(infos)})


def show(
    name: Annotated[str, typer.Argument(help="NAME (its latest version) or NAME@VERSION.")],
    sample: Annotated[int, typer.Option("--sample", "-n", help="Rendered examples to show.")] = 3,
    split: Annotated[str | None, typer.Option(help="Samples from this split.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not shorten long samples.")] = False,
    lake: LakeOpt = None,
) -> None:
    """Composition, token histogram and rendered samples exactly as the trainer sees them."""
    the_lake = open_lake(lake)
    mix = open_mix(the_lake, name)
    show_table(
        f"mix {mix.ref} · records v{mix.records_version} · template {mix.spec.format.template}",
        ["component", "available", "target", "rows", "unique", "tokens", "note"],
        [
            (
                c,
                v["available"],
                v["target"],
                v["rows"],
                v["unique"],
                v["tokens"] if v["tokens"] is not None else "-",
                v["note"] or "",
            )
            for c, v in mix.components.items()
        ],
    )
    show_table(
        "splits",
        ["split", "rows", "tokens"],
        [(s, v["rows"], v.get("tokens", "-")) for s, v in mix.splits.items()],
    )
    _token_histogram(mix)
    _show_samples(mix, sample, split, None if full else 1200)
    summary(
        "mix",
        {
            "name": mix.ref,
            "rows": mix.row_count,
            "tokens": mix.tokens if mix.tokens is not None else "-",
            "checksum": mix.checksum[:16],
            "spec hash": mix.spec_hash[:12],
        },
    )


def diff(
    a: Annotated[str, typer.Argument(help="Mix A: NAME or NAME@VERSION.")],
    b: Annotated[str, typer.Argument(help="Mix B: NAME or NAME@VERSION.")],
    lake: LakeOpt = None,
) -> None:
    """Rows added and removed per component, and the change in composition, from A to B."""
    d = diff_mixes(open_lake(lake), a, b)
    show_table(
        f"{d.a} → {d.b} (records v{d.records_versions[0]} → v{d.records_versions[1]})",
        ["component", "rows A", "rows B", "Δ rows", "added", "removed"],
        [
            (c.component, c.rows_a, c.rows_b, f"{c.rows_b - c.rows_a:+,}", c.added, c.removed)
            for c in d.components
        ],
    )
    summary(
        "identical" if d.same else "mix diff",
        {
            "added": d.added,
            "removed": d.removed,
            "in both": d.common,
            "split changes": d.split_changes,
        },
    )


def export(
    name: Annotated[str, typer.Argument(help="NAME (its latest version) or NAME@VERSION.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (a folder for hf).")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="|".join(format_names("mix")))
    ] = "jsonl",
    split: Annotated[str | None, typer.Option(help="Only this split.")] = None,
    redact: Annotated[
        bool, typer.Option("--redact/--no-redact", help="Redact PII (default on).")
    ] = True,
    trim_trailing_user: Annotated[
        bool,
        typer.Option(
            "--trim-trailing-user",
            help="Drop user turns after the last answer (LLaMA-Factory drops such rows).",
        ),
    ] = False,
    lake: LakeOpt = None,
) -> None:
    """Write the rendered rows in mix order for other trainers, one file per split.

    A manifest, STEM.manifest.yaml, goes beside them.
    """
    the_lake = open_lake(lake)
    mix = open_mix(the_lake, name)
    with row_progress() as bar:
        task = bar.add_task(f"export {mix.ref}", total=mix.count(split))

        def on_rows(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        manifest = export_mix(
            the_lake,
            mix.ref,
            fmt,
            out,
            split=split,
            redact=redact,
            progress=on_rows,
            trim_trailing_user=trim_trailing_user,
        )
    info = MixManifest.from_file(manifest)
    summary(
        "exported",
        {
            "mix": mix.ref,
            "rows": sum(info.rows.values()),
            "format": fmt,
            "redactions": info.redactions if redact else "off",
            "files": ", ".join(info.files.values()) or str(out),
            "trainer would drop": _reasons(info.trainer_drops),
            "not written": _reasons(info.not_written),
            "manifest": str(manifest),
        },
    )


def _reasons(counts: dict[str, int]) -> str:
    """`3 (reason a), 1 (reason b)` or `0`."""
    flat = {k: v for k, v in counts.items() if isinstance(v, int) and v}
    if not flat:
        return "0"
    return f"{sum(flat.values())} (" + ", ".join(f"{k}: {v}" for k, v in flat.items()) + ")"


def _show_plan(plan: MixPlan) -> None:
    if plan.components:
        show_table(
            f"plan for {plan.spec.name} at records v{plan.records_version}",
            [
                "component",
                "available",
                "avail tokens",
                "overlap",
                "target",
                "taken",
                "unique",
                "tokens",
                "note",
            ],
            [
                (
                    c.name,
                    c.available,
                    c.available_tokens if c.available_tokens is not None else "-",
                    c.overlap,
                    c.target,
                    c.taken,
                    c.unique,
                    c.taken_tokens if c.taken_tokens is not None else "-",
                    c.note or "",
                )
                for c in plan.components
            ],
        )
    for w in plan.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", soft_wrap=True)
    for p in plan.problems:
        err_console.print(f"[red]problem:[/] {p}", soft_wrap=True)


def _token_histogram(mix: MaterializedMix) -> None:
    records = mix.lake.records(mix.records_version)
    if "n_tokens" not in records.schema.names:
        console.print("token histogram: no n_tokens column (run `mixlake tokens`)")
        return
    rows = mix.rows()
    tokens = records._take_rows(rows.column("row_addr").combine_chunks(), columns=["n_tokens"])
    values = np.array(
        [t for t in tokens.column("n_tokens").to_pylist() if t is not None], dtype=np.int64
    )
    if not len(values):
        return
    counts, edges = np.histogram(values, bins=min(10, max(1, len(np.unique(values)))))
    peak = max(int(counts.max()), 1)
    lines = [
        f"{int(lo):>7,}–{int(hi):<7,} {'█' * max(1 if c else 0, round(40 * c / peak))} {c:,}"
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    console.print("tokens per row (n_tokens)\n" + "\n".join(lines))
    console.print(
        f"min {values.min():,} · median {int(np.median(values)):,} · max {values.max():,}"
    )


def _show_samples(mix: MaterializedMix, n: int, split: str | None, limit: int | None) -> None:
    if n <= 0:
        return

    def cut(text: str) -> str:
        if limit is None or len(text) <= limit:
            return text
        return text[:limit] + f"\n… ({len(text) - limit:,} more characters; --full shows all)"

    template = _chat_template()
    for i, ex in enumerate(mix.examples(split)):
        if i >= n:
            break
        console.rule(f"{ex['id'][:12]} · {ex['component']} · {ex['split']}")
        if "messages" in ex and template is not None:
            console.print(cut(template(ex["messages"])), markup=False)
        elif "messages" in ex:
            lines = "\n".join(f"{m['role']}: {m['content']}" for m in ex["messages"])
            console.print(cut(lines), markup=False)
        elif "prompt" in ex:
            console.print(f"prompt: {cut(ex['prompt'])}", markup=False)
            console.print(f"completion (loss): {ex['completion']}", markup=False)
        else:
            console.print(cut(ex["text"]), markup=False)


def _chat_template() -> Any:
    """SmolLM2's chat template as a function of messages, when the shipped model is there."""
    try:
        load = importlib.import_module("curation.models").load_tokenizer
        tok = load()
    except (ImportError, AttributeError, OSError, ValueError):
        return None

    def apply(messages: list[dict[str, str]]) -> str:
        return str(tok.apply_chat_template(messages, tokenize=False))

    return apply


def register(app: typer.Typer) -> None:
    """Attach the `mix` command group."""
    sub = typer.Typer(help="Training mixes: YAML + SQL specs, materialize, show, diff, export.")
    for fn in (check, materialize, ls, show, diff, export):
        sub.command(fn.__name__)(fn)
    app.add_typer(sub, name="mix")
