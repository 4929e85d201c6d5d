"""Search `records`: semantic (vector) search over `embedding`, or BM25 full-text over `text`.

Semantic search embeds the query with the model named in the embedding column's provenance, so
query and rows share one space, and runs a Lance nearest-neighbour query (using the vector
index when `embed` built one) with the `where` predicate applied before ranking. Full-text
search uses a Lance inverted (BM25) index on `text`, created on first use as its own journaled
version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lance
import pyarrow as pa

from curation.errors import CurationError
from curation.lake import Lake, VersionRef
from curation.steps.embed import Embedder, embedding_model, load_embedder

SNIPPET_CHARS = 160


@dataclass(frozen=True)
class SearchHit:
    """One result: higher `score` is better (cosine similarity, or BM25)."""

    id: str
    source: str
    score: float
    snippet: str


def _snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """A window of `text` around the first query word it contains, on one line."""
    flat = " ".join(text.split())
    lower = flat.lower()
    starts = [lower.find(w.lower()) for w in query.split() if len(w) > 2]
    found = [s for s in starts if s >= 0]
    start = max(0, min(found) - width // 4) if found else 0
    piece = flat[start : start + width]
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(flat) else "")


def _check_where(ds: lance.LanceDataset, where: str | None) -> None:
    if where is None:
        return
    try:
        ds.count_rows(filter=where)
    except (ValueError, OSError) as e:
        raise CurationError(f"bad --where predicate {where!r}: {str(e).splitlines()[0]}") from None


def search(
    lake: Lake,
    query: str,
    k: int = 10,
    where: str | None = None,
    fts: bool = False,
    *,
    embedder: Embedder | None = None,
    column: str = "embedding",
    ref: VersionRef = None,
) -> list[SearchHit]:
    """Find the `k` rows most similar to `query`.

    Args:
        lake: the lake.
        query: free text.
        k: number of results.
        where: SQL predicate applied before ranking (e.g. `source = 'chitchat'`).
        fts: BM25 full-text search instead of semantic search.
        embedder: embed the query with this (default: the model that made `column`).
        column: the embedding column.
        ref: records version or tag (default latest). Full-text search creates its index on
            the latest version only.

    Raises:
        CurationError: empty query, no embeddings (semantic), or a bad predicate.
    """
    if not query.strip():
        raise CurationError("empty search query")
    if k < 1:
        raise CurationError(f"--k must be ≥ 1, got {k}")
    if fts:
        return _full_text(lake, query, k, where, ref)
    ds = lake.records(ref)
    _check_where(ds, where)
    the_embedder = embedder or load_embedder(embedding_model(lake, column, ref))
    vector = the_embedder.encode([query])[0]
    filters = f"{column} IS NOT NULL" + (f" AND ({where})" if where else "")
    table = ds.to_table(
        columns=["id", "source", "text", "_distance"],
        nearest={
            "column": column,
            "q": vector,
            "k": k,
            "metric": "cosine",
            "refine_factor": 10,
            "nprobes": 32,
        },
        filter=filters,
        prefilter=True,
        disable_scoring_autoprojection=True,
    )
    return _hits(table, query, lambda r: 1.0 - float(r["_distance"]))


def ensure_fts_index(lake: Lake) -> bool:
    """Create the BM25 index on `text` if the latest version lacks one; True when created."""
    with lake.writing("full-text index"):
        ds = lake.dataset("records")
        if any(
            idx.get("type") == "Inverted" or "text" in idx.get("fields", [])
            for idx in ds.list_indices()
        ):
            return False
        # The index commit describes itself (`mixlake log` reads its index names).
        ds.create_scalar_index("text", "INVERTED")
    return True


def _full_text(
    lake: Lake, query: str, k: int, where: str | None, ref: VersionRef
) -> list[SearchHit]:
    if ref is None or ref == "latest":
        ensure_fts_index(lake)
    ds = lake.records(ref)
    _check_where(ds, where)
    try:
        table = ds.to_table(
            columns=["id", "source", "text", "_score"],
            full_text_query=query,
            filter=where,
            prefilter=where is not None,
            limit=k,
            disable_scoring_autoprojection=True,
        )
    except (ValueError, OSError) as e:
        raise CurationError(f"full-text search failed: {str(e).splitlines()[0]}") from None
    return _hits(table, query, lambda r: float(r["_score"]))


def _hits(table: pa.Table, query: str, score: Any) -> list[SearchHit]:
    rows = table.to_pylist()
    hits = [SearchHit(r["id"], r["source"], score(r), _snippet(r["text"], query)) for r in rows]
    return sorted(hits, key=lambda h: -h.score)
