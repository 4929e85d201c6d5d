"""What the map draws: each point's colour, whether it matches, and the cluster labels.

A point's colour shows its cluster, source or any score; "matches" is the grid's filter; the
clusters are labelled with their top terms from the `clusters` table.

Colours are categorical (cluster, strings, flags: a code per point, the largest categories
named, the rest "other", nulls "null") or continuous (numbers scaled into [0, 1] over their
range; nulls are drawn at the low end and counted in the legend).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation import Lake
from curation.schema import CORE_COLUMNS
from mixlake.web.embedmap import METHOD, Projection, column_values, encode, matching, projection
from mixlake.web.errors import WebError
from mixlake.web.facets import Filter, combined_where, facet_kind
from mixlake.web.sqlbox import check_predicate, locked_connection, run_select

MAX_CATEGORIES = 20


def colour_options(schema: pa.Schema) -> list[str]:
    """Columns the map can be coloured by: cluster, source, kind, then every scalar extra."""
    first = [c for c in ("cluster", "source", "kind") if c in schema.names]
    rest = [
        f.name
        for f in schema
        if f.name not in CORE_COLUMNS and f.name not in first and facet_kind(f) is not None
    ]
    return first + rest


def _colour(ds: Any, proj: Projection, column: str) -> tuple[np.ndarray, dict[str, Any]]:
    values = column_values(ds, proj, column)
    t = values.type
    if column == "cluster" or not (pa.types.is_floating(t) or pa.types.is_integer(t)):
        text = values.cast(pa.string()) if not pa.types.is_string(t) else values
        text = pc.fill_null(text, "null")
        counts = pc.value_counts(text).to_pylist()
        counts.sort(key=lambda c: (-c["counts"], c["values"]))
        names = [c["values"] for c in counts[: MAX_CATEGORIES - 1]]
        if len(counts) >= MAX_CATEGORIES:
            names.append("other")
        other = len(names) - 1  # "other" when there is one; else every value is named
        found = pc.index_in(text, value_set=pa.array(names, pa.string()))
        codes = pc.fill_null(found, other).to_numpy(zero_copy_only=False).astype(np.float32)
        sizes = np.bincount(codes.astype(np.int64), minlength=len(names)).tolist()
        cats = [{"name": n, "points": s} for n, s in zip(names, sizes, strict=True)]
        return codes, {"column": column, "kind": "categorical", "categories": cats}
    num = np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    finite = np.isfinite(num)
    lo = float(num[finite].min()) if finite.any() else 0.0
    hi = float(num[finite].max()) if finite.any() else 1.0
    scaled = np.where(finite, (num - lo) / ((hi - lo) or 1.0), 0.0).astype(np.float32)
    meta = {"column": column, "kind": "continuous", "lo": lo, "hi": hi}
    return scaled, {**meta, "nulls": int((~finite).sum())}


def cluster_labels(lake: Lake, ds: Any, proj: Projection) -> list[dict[str, Any]]:
    """Each cluster's size, top terms and centre on the map (mean of its points)."""
    if "cluster" not in ds.schema.names:
        return []
    codes = column_values(ds, proj, "cluster").to_numpy(zero_copy_only=False)
    codes = np.asarray(np.nan_to_num(codes.astype(np.float64), nan=-1), np.int64)
    terms: dict[int, list[str]] = {}
    if lake.has_table("clusters"):
        for r in lake.dataset("clusters").to_table(columns=["cluster", "top_terms"]).to_pylist():
            terms[int(r["cluster"])] = list(r["top_terms"] or [])
    out = []
    for c in sorted({int(x) for x in codes if x >= 0}):
        members = codes == c
        x, y = proj.xy[members].mean(axis=0)
        out.append(
            {
                "cluster": c,
                "points": int(members.sum()),
                "top_terms": terms.get(c, []),
                "x": round(float(x), 4),
                "y": round(float(y), 4),
            }
        )
    return out


def map_body(
    lake: Lake, version: int, colour: str, where: str, filters: list[Filter], parts: str = "all"
) -> bytes:
    """The map of `version` coloured by `colour`, as `encode`d bytes.

    Each point carries whether it matches the filter (the WHERE box and the filters, the
    map's own selection included).

    `parts="match"` sends only the "matches" array (what changes when the filter does).

    Raises:
        WebError: an unknown colour column, a rejected predicate (400), no embeddings (404/409).
    """
    if parts not in ("all", "match"):
        raise WebError(f"parts: {parts!r} is not all or match")
    proj = projection(lake, version)
    ds = lake.records(version)
    options = colour_options(ds.schema)
    colour = colour or ("cluster" if "cluster" in options else "source")
    if colour not in options:
        raise WebError(f"color: {colour!r} is not one of {', '.join(options)}")
    clause = combined_where(check_predicate(where), filters)
    ids = None
    if clause:
        con = locked_connection(lake, version, filters)
        ids = run_select(con, f"SELECT id FROM records {clause}").column("id").combine_chunks()
    match = matching(proj, ids)
    if parts == "match":
        head = {"version": version, "points": len(proj.ids), "rows": proj.rows}
        return encode({**head, "matched": int(match.sum()), "arrays": ["match"]}, [match])
    values, meta = _colour(ds, proj, colour)
    header = {
        "version": version,
        "points": len(proj.ids),
        "rows": proj.rows,
        "method": METHOD,
        "explained": list(proj.explained),
        "matched": int(match.sum()),
        "color": meta,
        "colors": options,
        "clusters": cluster_labels(lake, ds, proj),
        "arrays": ["x", "y", "value", "match"],
    }
    return encode(header, [proj.xy[:, 0], proj.xy[:, 1], values, match])


def point(lake: Lake, version: int, index: int) -> dict[str, Any]:
    """The record behind point `index`: id, source and a text snippet.

    Raises:
        WebError: an index outside the map (404).
    """
    proj = projection(lake, version)
    if not 0 <= index < len(proj.ids):
        raise WebError(f"point: {index} is not a point of the map (0..{len(proj.ids) - 1})", 404)
    record_id = proj.ids[index].as_py()
    from curation.sqltext import equals

    row = lake.records(version).to_table(
        columns=["id", "source", "text"], filter=equals("id", record_id)
    )
    got = row.to_pylist()[0]
    return {
        "index": index,
        "id": got["id"],
        "source": got["source"],
        "text": (got["text"] or "")[:200],
    }
