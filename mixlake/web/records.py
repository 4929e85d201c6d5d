"""Records data for the UI: a filtered page at any version, one row in full, search, chart data."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pyarrow as pa

from curation import CurationError, Lake
from curation.lake import VersionRef
from curation.schema import CORE_COLUMNS
from curation.steps import column_provenance
from mixlake.web.errors import WebError
from mixlake.web.sqlbox import locked_connection, run_select, where_clause

SNIPPET = 160
_ID = re.compile(r"^[0-9a-f]{8,64}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def resolve(lake: Lake, ref: VersionRef) -> int:
    """A version reference (number, tag, "latest", None) as a number; unknown ones are 404."""
    if isinstance(ref, str) and not ref.strip():
        ref = None
    return lake.resolve(ref)


def extra_columns(schema: pa.Schema) -> list[str]:
    """Non-core columns holding scalars (scores, flags, counts, labels), in schema order."""
    out = []
    for f in schema:
        if f.name in CORE_COLUMNS:
            continue
        t = f.type
        if (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_boolean(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
        ):
            out.append(f.name)
    return out


def numeric_columns(schema: pa.Schema) -> list[str]:
    """Non-core numeric columns (candidates for the score chart)."""
    return [
        f.name
        for f in schema
        if f.name not in CORE_COLUMNS
        and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
    ]


def record_detail(lake: Lake, record_id: str, ref: VersionRef = None) -> dict[str, Any]:
    """One record in full: core fields, chat turns, and every extra column with its provenance.

    Raises:
        WebError: a malformed id (400) or no such record at that version (404).
    """
    if not _ID.match(record_id):
        raise WebError(f"id: {record_id!r} is not a record id (hex, as in the `id` column)")
    version = resolve(lake, ref)
    ds = lake.records(version)
    table = ds.to_table(filter=f"id = '{record_id}'")
    if table.num_rows == 0:
        raise WebError(f"no record {record_id} at records version {version}", 404)
    row = table.to_pylist()[0]
    extras = []
    for f in ds.schema:
        if f.name in CORE_COLUMNS:
            continue
        value = row.get(f.name)
        if isinstance(value, list) and len(value) > 16:
            value = f"[{len(value)} values]"
        prov = column_provenance(f)
        if prov:
            prov["made_at_version"] = made_at_version(lake, f.name, prov["records_version"])
        extras.append({"column": f.name, "value": _jsonable(value), "provenance": prov})
    meta = row.get("meta")
    return {
        "version": version,
        "id": row["id"],
        "source": row["source"],
        "kind": row["kind"],
        "batch": row["batch"],
        "ingested_at": str(row["ingested_at"]),
        "text": row["text"],
        "messages": row.get("messages") or [],
        "rejected": row.get("rejected"),
        "meta": _parse_json(meta),
        "columns": extras,
    }


def made_at_version(lake: Lake, column: str, read_version: int) -> int | None:
    """The first version whose table has `column`.

    A step reads version N and writes its columns in a later one (N + 1 unless another write
    came between).
    """
    latest = lake.latest_version()
    for v in range(read_version + 1, min(latest, read_version + 50) + 1):
        try:
            if column in lake.records(v).schema.names:
                return v
        except CurationError:  # a version removed by gc
            continue
    return None


def column_values(lake: Lake, ref: VersionRef, where: str, expr: str) -> pa.Table:
    """`source` and one expression's values for the rows a predicate selects (for charts)."""
    version = resolve(lake, ref)
    con = locked_connection(lake, version)
    return run_select(con, f"SELECT source, {expr} AS v FROM records {where_clause(where)}")


def check_column(lake: Lake, ref: VersionRef, column: str) -> str:
    """A column name that exists in `records` at the version, quoted for SQL.

    Raises:
        WebError: 400 for a malformed name, 404 for a missing column.
    """
    if not _COLUMN.match(column):
        raise WebError(f"column: {column!r} is not a column name")
    names = lake.records(resolve(lake, ref)).schema.names
    if column not in names:
        raise WebError(f"no column {column!r} in records (columns: {', '.join(names)})", 404)
    return f'"{column}"'


def search_records(
    lake: Lake, query: str, ref: VersionRef = None, k: int = 20, where: str = "", fts: bool = False
) -> dict[str, Any]:
    """Semantic or full-text search through `curation.search`, never writing to the lake.

    Semantic search embeds the query with the model named in the `embedding` column's
    provenance (cached across requests). Full-text search uses the BM25 index when the version
    has one; without it (the UI never builds one) it falls back to a case-insensitive substring
    match, and says so in `mode`.

    Returns:
        `{"mode", "hits"}`; each hit has id, source, score and a snippet.

    Raises:
        WebError: 400 for an empty query, bad k or predicate; 409 when semantic search has no
            embedding column (or `curation.search` is missing).
    """
    if not query.strip():
        raise WebError("q: give a search query")
    if not 1 <= k <= 200:
        raise WebError(f"k: must be between 1 and 200, got {k}")
    clause = where_clause(where)
    version = resolve(lake, ref)
    ds = lake.records(version)
    if fts and not _has_fts_index(ds):
        con = locked_connection(lake, version)
        match = f"{clause} AND" if clause else "WHERE"
        table = run_select(
            con,
            f"SELECT id, source, CAST(1 AS DOUBLE) AS score, left(text, {SNIPPET}) AS snippet FROM records "
            f"{match} text ILIKE ? ORDER BY id LIMIT ?",
            [f"%{query.strip()}%", k],
        )
        return {
            "mode": "substring (no BM25 index)",
            "hits": [_jsonable_row(r) for r in table.to_pylist()],
        }
    try:
        from curation.search import search
    except ImportError:
        raise WebError(
            "search is not available in this build (curation.search missing)", 409
        ) from None
    embedder = None
    if not fts:
        if "embedding" not in ds.schema.names:
            raise WebError("semantic search needs an `embedding` column: run `mixlake embed`", 409)
        embedder = _embedder(lake)
    hits = search(
        lake, query, k=k, where=where.strip() or None, fts=fts, embedder=embedder, ref=version
    )
    return {"mode": "bm25" if fts else "semantic", "hits": [_hit_row(h) for h in _rows_of(hits)]}


_EMBEDDERS: dict[str, Any] = {}


def _embedder(lake: Lake) -> Any:
    from curation.steps.embed import embedding_model, load_embedder

    name = embedding_model(lake)
    if name not in _EMBEDDERS:
        _EMBEDDERS[name] = load_embedder(name)
    return _EMBEDDERS[name]


def _has_fts_index(ds: Any) -> bool:
    try:
        indices = ds.list_indices()
    except (ValueError, OSError):
        return False
    return any(i.get("type") == "Inverted" or "text" in i.get("fields", []) for i in indices)


def _rows_of(hits: Any) -> list[dict[str, Any]]:
    if isinstance(hits, pa.Table):
        return list(hits.to_pylist())
    out = []
    for h in hits:
        if isinstance(h, dict):
            out.append(h)
        elif hasattr(h, "__dataclass_fields__"):
            out.append({k: getattr(h, k) for k in h.__dataclass_fields__})
        else:
            out.append(dict(h))
    return out


def _hit_row(hit: dict[str, Any]) -> dict[str, Any]:
    keep = {k: v for k, v in hit.items() if k not in ("embedding", "vector", "messages", "meta")}
    if isinstance(keep.get("text"), str):
        keep["text"] = keep["text"][:SNIPPET]
    return {k: _jsonable(v) for k, v in keep.items()}


def _parse_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in row.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
