"""Point-and-click filters and facets, computed by DuckDB on the server.

A facet is a histogram or value count for a score, flag, category or eval column.

A filter is structured (`column`, `op`, values), never SQL text: the server checks the column
against the schema and builds the predicate with `curation.sqltext`. Facets cross-filter as in
Mosaic's linked views: each facet is counted over the rows every *other* filter selects (and the
WHERE box), so brushing one narrows the others while it still shows its own whole range.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from curation.sqltext import identifier, in_list, literal
from mixlake.web.errors import WebError
from mixlake.web.sqlbox import check_predicate, run_select

BINS = 20
TOP_VALUES = 12
CATEGORY_CORE = ("source", "kind")
OPS = ("range", "in", "is", "lasso")
MAP_COLUMN = "map"
MAX_POLYGON = 2000


@dataclass(frozen=True)
class Filter:
    """One point-and-click filter.

    `range` [lo, hi) (hi inclusive at the top bin), `in` a list of values (None matches
    null), `is` true/false/null, or `lasso`: the rows whose point on the embedding map lies
    inside a polygon (`values` holds its (x, y) vertices; column `map`).
    """

    column: str
    op: str
    lo: float | None = None
    hi: float | None = None
    values: tuple[Any, ...] = ()
    closed: bool = False

    def predicate(self) -> str:
        """The filter as SQL, values quoted by `curation.sqltext`."""
        col = identifier(self.column)
        if self.op == "range":
            parts = []
            if self.lo is not None:
                parts.append(f"{col} >= {literal(float(self.lo))}")
            if self.hi is not None:
                parts.append(f"{col} {'<=' if self.closed else '<'} {literal(float(self.hi))}")
            return " AND ".join(parts) or "TRUE"
        if self.op == "in":
            given = [str(v) for v in self.values if v is not None]
            nulls = len(given) < len(self.values)
            if not given:
                return f"{col} IS NULL"
            return (
                f"({in_list(self.column, given)} OR {col} IS NULL)"
                if nulls
                else in_list(self.column, given)
            )
        if self.op == "lasso":
            # the ids inside the polygon are registered as this table by `locked_connection`
            return f"id IN (SELECT id FROM {identifier(self.table_name())})"
        value = self.values[0] if self.values else None
        if value is None:
            return f"{col} IS NULL"
        return f"{col} = {literal(bool(value))}"

    def table_name(self) -> str:
        """The name a `lasso` filter's selected ids are registered under in DuckDB."""
        digest = hashlib.sha1(orjson.dumps(self.values)).hexdigest()[:12]
        return f"map_selection_{digest}"


def facet_kind(field: pa.Field) -> str | None:
    """`histogram` for numbers, `flag` for booleans, `category` for strings; None otherwise."""
    t = field.type
    if pa.types.is_boolean(t):
        return "flag"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "histogram"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "category"
    return None


def facet_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    """(column, kind) for `source`, `kind` and every scalar non-core column."""
    from curation.schema import CORE_COLUMNS

    out = [(c, "category") for c in CATEGORY_CORE if c in schema.names]
    for f in schema:
        kind = facet_kind(f)
        if f.name not in CORE_COLUMNS and kind is not None:
            out.append((f.name, kind))
    return out


def parse_filters(text: str, schema: pa.Schema) -> list[Filter]:
    """Filters from the `filters` query parameter (a JSON list), checked against the schema.

    Raises:
        WebError: bad JSON, an unknown column or op, or values of the wrong type (400).
    """
    if not text.strip():
        return []
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise WebError("filters: not a JSON list") from None
    if not isinstance(raw, list) or len(raw) > 50:
        raise WebError("filters: give a JSON list of at most 50 filters")
    kinds = dict(facet_columns(schema))
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise WebError("filters: each filter is an object with column and op")
        column, op = str(item.get("column", "")), str(item.get("op", ""))
        if op == "lasso" or column == MAP_COLUMN:
            out.append(_lasso(item))
            continue
        if column not in kinds:
            raise WebError(f"filters: {column!r} is not a facet column")
        if op not in OPS:
            raise WebError(f"filters: op {op!r} is not one of {', '.join(OPS)}")
        try:
            lo = None if item.get("lo") is None else float(item["lo"])
            hi = None if item.get("hi") is None else float(item["hi"])
        except (TypeError, ValueError):
            raise WebError(f"filters: {column}: lo and hi must be numbers") from None
        values = item.get("values") or []
        if not isinstance(values, list) or len(values) > 1000:
            raise WebError(f"filters: {column}: values must be a list (at most 1000)")
        out.append(Filter(column, op, lo, hi, tuple(values), bool(item.get("closed"))))
    return out


def _lasso(item: dict[str, Any]) -> Filter:
    if item.get("column") != MAP_COLUMN or item.get("op") != "lasso":
        raise WebError(
            "filters: the map filter is {'column': 'map', 'op': 'lasso', 'polygon': [...]}"
        )
    poly = item.get("polygon")
    if not isinstance(poly, list) or not 3 <= len(poly) <= MAX_POLYGON:
        raise WebError(f"filters: map: polygon must be a list of 3 to {MAX_POLYGON} [x, y] points")
    points = []
    for p in poly:
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError, IndexError, KeyError):
            raise WebError("filters: map: each polygon point is [x, y] (numbers)") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise WebError("filters: map: polygon points must be finite numbers")
        points.append((round(x, 6), round(y, 6)))
    return Filter(MAP_COLUMN, "lasso", values=tuple(points))


def combined_where(checked_where: str, filters: list[Filter], skip: str | None = None) -> str:
    """`WHERE …` joining the checked WHERE box predicate and the filters, or "".

    Filters on column `skip` are left out.
    """
    parts = [f"({checked_where})"] if checked_where else []
    parts += [f"({f.predicate()})" for f in filters if f.column != skip]
    return f"WHERE {' AND '.join(parts)}" if parts else ""


def facets(
    con: duckdb.DuckDBPyConnection, schema: pa.Schema, where: str, filters: list[Filter]
) -> list[dict[str, Any]]:
    """Every facet of the rows `where` and `filters` select.

    Each facet is counted without its own filter (cross-filtering).
    """
    checked = check_predicate(where)
    out = []
    for column, kind in facet_columns(schema):
        clause = combined_where(checked, filters, skip=column)
        col = identifier(column)
        if kind == "histogram":
            out.append(_histogram(con, column, col, clause))
        else:
            expr = col if kind == "category" else f"CAST({col} AS VARCHAR)"
            got = run_select(
                con,
                f"SELECT {expr} AS value, count(*) AS n FROM records {clause} "
                f"GROUP BY 1 ORDER BY n DESC, value NULLS LAST LIMIT {TOP_VALUES}",
            ).to_pylist()
            out.append({"column": column, "kind": kind, "values": got})
        out[-1]["active"] = [filter_json(f) for f in filters if f.column == column]
    return out


def _histogram(
    con: duckdb.DuckDBPyConnection, column: str, col: str, clause: str
) -> dict[str, Any]:
    stats = run_select(
        con,
        f"SELECT min({col})::DOUBLE AS lo, max({col})::DOUBLE AS hi, count({col}) AS n, "
        f"count(*) - count({col}) AS nulls FROM records {clause}",
    ).to_pylist()[0]
    lo, hi = stats["lo"], stats["hi"]
    bins: list[dict[str, Any]] = []
    if lo is not None and hi is not None and lo == lo and hi == hi:
        width = (hi - lo) / BINS if hi > lo else 1.0
        bucket = f"least({BINS - 1}, floor(({col} - {literal(lo)}) / {literal(width)}))::INT"
        extra = f"{clause} AND" if clause else "WHERE"
        rows = run_select(
            con,
            f"SELECT {bucket} AS b, count(*) AS n FROM records {extra} {col} IS NOT NULL "
            f"AND NOT isnan({col}::DOUBLE) GROUP BY 1",
        ).to_pylist()
        counts = {r["b"]: r["n"] for r in rows}
        n_bins = BINS if hi > lo else 1
        bins = [
            {"lo": lo + i * width, "hi": lo + (i + 1) * width, "n": int(counts.get(i, 0))}
            for i in range(n_bins)
        ]
        bins[-1]["hi"] = hi
    return {
        "column": column,
        "kind": "histogram",
        "lo": lo,
        "hi": hi,
        "rows": int(stats["n"] or 0),
        "nulls": int(stats["nulls"] or 0),
        "bins": bins,
    }


def filter_json(f: Filter) -> dict[str, Any]:
    """A filter as the JSON the grid sends back."""
    if f.op == "lasso":
        return {"column": f.column, "op": f.op, "polygon": [list(p) for p in f.values]}
    got = {"column": f.column, "op": f.op, "lo": f.lo, "hi": f.hi, "values": list(f.values)}
    return {**got, "closed": True} if f.closed else got
