"""Data enrichment commands: step summaries, the `dedup` group, and `search`.

The summaries are those of embed, dedup, pii, decontaminate and cluster.

The step commands themselves are derived from the step registry (`enrich_score`); this
module says what each prints.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from curation.lake import Lake, VersionRef
from curation.search import search
from curation.stats import enrichment_stats
from mixlake.commands.enrich_score import attach_group, summarises
from mixlake.options import (
    LakeOpt,
    TagOpt,
    VersionOpt,
    checked_where,
    open_lake,
    version_ref,
)
from mixlake.output import console, show_table, step_items, summary

DEDUP_HELP = "Mark duplicates (`is_dup_<method>`, `dup_group_<method>`) and recompute `is_dup`."


@summarises("embed_v1")
def _embed_summary(lake: Lake, params: Any, step: Any, report: Any) -> None:
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


def _dedup_summary(lake: Lake, params: Any, step: Any, report: Any) -> None:
    summary(
        f"dedup {report.method}" + (" (no new version)" if report.step.no_op else ""),
        {
            **step_items(report.step, with_columns=False),
            "groups": report.groups,
            "rows in groups": report.rows_in_groups,
            "rows marked": report.rows_marked,
            "is_dup (all methods)": report.is_dup_rows,
        },
    )


for _method in ("exact", "near", "semantic"):
    summarises(f"dedup_{_method}_v1")(_dedup_summary)


@summarises("pii_v1")
def _pii_summary(lake: Lake, params: Any, step: Any, report: Any) -> None:
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


@summarises("decontam_v1")
def _decontam_summary(lake: Lake, params: Any, step: Any, report: Any) -> None:
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
            "n": params.n,
        },
    )


@summarises("cluster_v1")
def _cluster_summary(lake: Lake, params: Any, step: Any, report: Any) -> None:
    show_table(
        "clusters (largest first)",
        ["cluster", "size", "top terms", "representative"],
        [(c.cluster, c.size, ", ".join(c.top_terms), c.snippet) for c in report.clusters],
    )
    summary(
        "cluster" + (" (no new version)" if report.step.no_op else ""),
        {
            **step_items(report.step, with_columns=False),
            "k": params.k,
            "rows clustered": report.rows,
        },
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
    """Attach the `dedup` group and `search` (the other step commands come from the registry)."""
    attach_group(app, "dedup", DEDUP_HELP)
    app.command("search")(search_cmd)
