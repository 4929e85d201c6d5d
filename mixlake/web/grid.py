"""The grid's data: one sorted, filtered page of `records` at a version, fast at 1M rows.

A page is read in two steps: DuckDB picks the page's ids (`ORDER BY` a whitelisted column,
`LIMIT/OFFSET`), reading only the columns the filter and the sort need; then Lance reads those
rows' display columns by id. So the text column is read for the rows shown, not for every row
the sort passes over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from curation import Lake
from curation.lake import VersionRef
from curation.sqltext import identifier, in_list
from mixlake.web.errors import WebError
from mixlake.web.facets import Filter, combined_where
from mixlake.web.labels import label_map
from mixlake.web.records import SNIPPET, _jsonable_row, extra_columns, resolve
from mixlake.web.sqlbox import check_predicate, locked_connection, run_select

MAX_LIMIT = 500
SORTABLE_CORE = ("id", "source", "kind", "text", "batch", "ingested_at")


@dataclass(frozen=True)
class RecordsPage:
    """One page of `records` rows matching a predicate at a version."""

    version: int
    where: str
    total: int
    offset: int
    limit: int
    sort: str
    desc: bool
    columns: list[str]
    rows: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        """The page as a JSON-ready dict."""
        return {
            "version": self.version,
            "where": self.where,
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "sort": self.sort,
            "desc": self.desc,
            "columns": self.columns,
            "rows": self.rows,
        }


def sortable_columns(schema: pa.Schema) -> list[str]:
    """Columns a page may be ordered by: the scalar core columns and every scalar extra."""
    return [c for c in SORTABLE_CORE if c in schema.names] + extra_columns(schema)


def records_page(
    lake: Lake,
    ref: VersionRef = None,
    where: str = "",
    limit: int = 50,
    offset: int = 0,
    *,
    sort: str = "id",
    desc: bool = False,
    filters: list[Filter] | None = None,
) -> RecordsPage:
    """Rows of `records` at a version matching a WHERE predicate and filters, sorted.

    Args:
        lake: the lake.
        ref: version or tag (None: latest).
        where: the read-only WHERE box predicate.
        limit: rows per page (1..500).
        offset: rows to skip.
        sort: a column name from `sortable_columns` (never SQL); ties break by id.
        desc: descending order (nulls last either way).
        filters: point-and-click filters (`mixlake.web.facets`).

    Raises:
        WebError: bad limit/offset/sort or a rejected predicate (400); CurationError for an
            unknown version or tag.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise WebError(f"limit: must be between 1 and {MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise WebError(f"offset: must be 0 or more, got {offset}")
    version = resolve(lake, ref)
    ds = lake.records(version)
    sort = sort or "id"
    allowed = sortable_columns(ds.schema)
    if sort not in allowed:
        raise WebError(f"sort: {sort!r} is not a column to sort by ({', '.join(allowed)})")
    clause = combined_where(check_predicate(where), filters or [])
    con = locked_connection(lake, version, filters or [])
    if clause:
        got = run_select(con, f"SELECT count(*) AS n FROM records {clause}")
        total = int(got.column("n")[0].as_py() or 0)
    else:
        total = ds.count_rows()
    order = f"{identifier(sort)} {'DESC' if desc else 'ASC'} NULLS LAST"
    tie = "" if sort == "id" else ", id"
    ids = (
        run_select(
            con,
            f"SELECT id FROM records {clause} ORDER BY {order}{tie} LIMIT ? OFFSET ?",
            [limit, offset],
        )
        .column("id")
        .to_pylist()
    )
    extras = extra_columns(ds.schema)
    shown = ["id", "source", "kind", "text", *extras]
    rows = _rows_by_id(ds, ids, shown)
    marks = label_map(lake, ids)
    for row in rows:
        row["label"] = marks.get(row["id"])
    return RecordsPage(
        version=version,
        where=where.strip(),
        total=total,
        offset=offset,
        limit=limit,
        sort=sort,
        desc=desc,
        columns=["id", "label", *shown[1:]],
        rows=rows,
    )


def _rows_by_id(ds: Any, ids: list[str], columns: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    table = ds.to_table(columns=columns, filter=in_list("id", ids))
    by_id = {r["id"]: r for r in table.to_pylist()}
    out = []
    for i in ids:
        row = by_id[i]
        if isinstance(row.get("text"), str):
            row["text"] = row["text"][:SNIPPET]
        out.append(_jsonable_row(row))
    return out
