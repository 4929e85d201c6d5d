"""Routes for seeing the shape of the data and acting on a selection.

The embedding map, slices, `mix check` on a spec, and the rows a run trained on.

Included before `mixlake.web.api`, whose `POST /api/{action}` would otherwise take
`POST /api/mixcheck`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mixlake.web import facets, mapview, records, slices, training
from mixlake.web.api import preview, ref_of
from mixlake.web.errors import WebError
from mixlake.web.pages import page
from mixlake.web.state import state

router = APIRouter()


async def _body(request: Request, what: str) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise WebError(f"{what}: the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise WebError(f"{what}: the body must be a JSON object")
    return body


@router.get("/api/map")
def api_map(
    request: Request,
    version: str = "",
    color: str = "",
    where: str = "",
    filters: str = "",
    parts: str = "all",
) -> Response:
    """The embedding map as one binary body (`mixlake.web.embedmap.encode`).

    A uint32 header length, a JSON header (points, method, colour legend, cluster labels with
    top terms), then Float32 x, y, colour value and matches-the-filter arrays;
    `parts=match` sends only the last.
    """
    lake = state(request).lake()
    number = records.resolve(lake, ref_of(version))
    chosen = facets.parse_filters(filters, lake.records(number).schema)
    body = mapview.map_body(lake, number, color, where, chosen, parts)
    return Response(body, media_type="application/octet-stream")


@router.get("/api/map/point")
def api_map_point(request: Request, index: int, version: str = "") -> dict[str, Any]:
    """The record behind one point of the map."""
    lake = state(request).lake()
    return mapview.point(lake, records.resolve(lake, ref_of(version)), index)


@router.get("/api/slices")
def api_slices(request: Request) -> dict[str, Any]:
    """Every saved slice (latest per name)."""
    return {"slices": slices.all_slices(state(request).lake())}


@router.get("/api/slices/{name}")
def api_slice(request: Request, name: str, mix: str = "") -> dict[str, Any]:
    """One slice and the mix spec YAML it becomes.

    `mix` names the mix (by default the slice's name).
    """
    lake = state(request).lake()
    got = slices.get(lake, name)
    return {**got, "spec": slices.spec_yaml(lake, got, slices.check_name(mix) if mix else None)}


@router.post("/api/mixcheck")
async def api_mixcheck(request: Request) -> dict[str, Any]:
    """`mix check` on a spec (JSON `{"spec": yaml}`), read-only.

    Answers rows, tokens, per-component counts, problems and warnings.
    """
    body = await _body(request, "mixcheck")
    return slices.check(state(request).lake(), str(body.get("spec") or ""))


@router.post("/api/confirm/{action}")
async def api_confirm_post(request: Request, action: str) -> dict[str, Any]:
    """Step 1 of a mutation with its arguments in a JSON body (for a long mix spec)."""
    return preview(request, action, await _body(request, f"confirm {action}"))


@router.get("/api/runs/{run_id}/exposures")
def api_exposures(
    request: Request, run_id: str, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    """The rows a run trained on, in training order, a page at a time."""
    return training.exposures(state(request).lake(), run_id, offset, limit)


@router.get("/slices")
def slices_page(request: Request) -> HTMLResponse:
    """Every saved slice."""
    got = slices.all_slices(state(request).lake())
    return page(request, "slices.html", title="slices", slices=got)


@router.get("/slices/{name}")
def slice_page(request: Request, name: str, mix: str = "") -> HTMLResponse:
    """One slice: its filter and SQL, the mix spec it becomes, `mix check` live, materialize."""
    lake = state(request).lake()
    got = slices.get(lake, name)
    spec = slices.spec_yaml(lake, got, slices.check_name(mix) if mix else None)
    return page(request, "slice.html", title=f"slice {name}", s=got, spec=spec)
