"""The curator's workspace pages: the records grid with facets, labels, and search.

The grid itself is AG Grid (built from `frontend/`, shipped as `static/grid.js`); this page
gives it its configuration and keeps a plain HTML table in `<noscript>` for browsers without
JavaScript.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mixlake.web import export, facets, grid, labels, records
from mixlake.web.api import ref_of
from mixlake.web.errors import WebError
from mixlake.web.mapview import colour_options
from mixlake.web.pages import page
from mixlake.web.state import state

router = APIRouter()


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_boolean(t):
        return "bool"
    return "string"


@router.get("/records")
def records_page(
    request: Request,
    version: str = "",
    where: str = "",
    q: str = "",
    fts: bool = False,
    limit: int = 50,
    offset: int = 0,
    sort: str = "id",
    desc: bool = False,
    filters: str = "",
) -> HTMLResponse:
    """The records grid at a version, or search hits when `q` is given.

    The grid has the WHERE box, facets, sortable columns and labels.
    """
    web = state(request)
    lake = web.lake()
    number = records.resolve(lake, ref_of(version))
    schema = lake.records(number).schema
    chosen = facets.parse_filters(filters, schema)
    hits, mode, notice = None, "", ""
    if q.strip():
        try:
            got = records.search_records(lake, q, number, 20, where, fts)
            hits, mode = got["hits"], got["mode"]
        except WebError as e:
            if e.status != 409:
                raise
            notice = e.message
    data = grid.records_page(
        lake, number, where, limit, offset, sort=sort, desc=desc, filters=chosen
    )
    types = {f.name: _kind(f.type) for f in schema}
    config = {
        "version": number,
        "where": where.strip(),
        "filters": [facets.filter_json(f) for f in chosen],
        "sort": data.sort,
        "desc": data.desc,
        "columns": [{"name": c, "kind": types.get(c, "string")} for c in data.columns],
        "labels": web.allow_writes,
    }
    embedded = (
        lake.records(number).count_rows(filter="embedding IS NOT NULL")
        if ("embedding" in schema.names)
        else 0
    )
    return page(
        request,
        "records.html",
        title="records",
        data=data,
        hits=hits,
        notice=notice,
        mode=mode,
        q=q,
        fts=fts,
        base={"version": version, "where": where, "limit": limit},
        config=orjson.dumps(config).decode(),
        search_ready="embedding" in schema.names,
        embedded=embedded,
        export_formats=list(export.formats()),
        labelled=labels.count(lake),
        map_colors=colour_options(schema) if _has_vectors(schema) else [],
    )


def _has_vectors(schema: pa.Schema) -> bool:
    return "embedding" in schema.names and pa.types.is_fixed_size_list(
        schema.field("embedding").type
    )


@router.get("/labels")
def labels_page(request: Request) -> HTMLResponse:
    """Every current label (the latest per record) with who set it and when."""
    lake = state(request).lake()
    return page(request, "labels.html", title="labels", rows=labels.current(lake, 500))
