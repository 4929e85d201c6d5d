"""JSON API: the same data as the pages, plus confirmed mutations (`--allow-writes` only)."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mixlake.web import (
    charts,
    compare,
    export,
    facets,
    grid,
    history,
    labels,
    records,
    row,
    slices,
    training,
)
from mixlake.web.errors import WebError
from mixlake.web.sqlbox import locked_connection
from mixlake.web.state import state

router = APIRouter(prefix="/api")
ACTIONS = ("tag", "rollback", "delete", "label", "slice", "materialize")


def ref_of(version: str) -> str | None:
    """A version box value as a version reference (None for latest)."""
    return version.strip() or None


@router.get("/records")
def api_records(
    request: Request,
    version: str = "",
    where: str = "",
    limit: int = 50,
    offset: int = 0,
    sort: str = "id",
    desc: bool = False,
    filters: str = "",
) -> dict[str, Any]:
    """A page of records at a version, sorted by one column.

    The rows match a read-only WHERE predicate and the point-and-click `filters` (a JSON
    list).
    """
    lake = state(request).lake()
    number = records.resolve(lake, ref_of(version))
    chosen = facets.parse_filters(filters, lake.records(number).schema)
    got = grid.records_page(
        lake, number, where, limit, offset, sort=sort, desc=desc, filters=chosen
    )
    return got.as_json()


@router.get("/export")
def api_export(
    request: Request,
    format: str = "jsonl",
    version: str = "",
    where: str = "",
    filters: str = "",
    ids: str = "",
) -> Response:
    """The rows the WHERE box and filters select, as a JSONL, Parquet or CSV download.

    When `ids` (comma-separated) is given, only those rows.
    """
    lake = state(request).lake()
    number = records.resolve(lake, ref_of(version))
    chosen = facets.parse_filters(filters, lake.records(number).schema)
    picked = [i for i in ids.split(",") if i.strip()]
    body, media = export.export_rows(lake, number, format, where, chosen, picked)
    name = f"records-v{number}.{format}"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/facets")
def api_facets(
    request: Request, version: str = "", where: str = "", filters: str = ""
) -> dict[str, Any]:
    """A histogram or value count of every score, flag, category and eval column.

    Each is counted over the rows the WHERE box and the other facets' filters select.
    """
    lake = state(request).lake()
    number = records.resolve(lake, ref_of(version))
    schema = lake.records(number).schema
    chosen = facets.parse_filters(filters, schema)
    con = locked_connection(lake, number, chosen)
    return {"version": number, "facets": facets.facets(con, schema, where, chosen)}


@router.get("/records/{record_id}")
def api_record(request: Request, record_id: str, version: str = "") -> dict[str, Any]:
    """One record with every column and its provenance, and what is around it.

    Around it: duplicate groups, nearest neighbours, the mixes and runs that used it, eval
    results and its label.
    """
    lake = state(request).lake()
    got = records.record_detail(lake, record_id, ref_of(version))
    got["around"] = row.context(lake, got["version"], row.raw_row(lake, got["version"], got["id"]))
    return got


@router.get("/search")
def api_search(
    request: Request,
    q: str = "",
    k: int = 20,
    where: str = "",
    fts: bool = False,
    version: str = "",
) -> dict[str, Any]:
    """Semantic or full-text search at a version."""
    got = records.search_records(state(request).lake(), q, ref_of(version), k, where, fts)
    return {"query": q, "fts": fts, **got}


@router.get("/charts/{kind}.png")
def api_chart(
    request: Request, kind: str, version: str = "", where: str = "", column: str = ""
) -> Response:
    """A chart (length, score, source) of the filtered rows as PNG."""
    png = charts.chart(state(request).lake(), kind, ref_of(version), where, column)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/log")
def api_log(request: Request) -> dict[str, Any]:
    """Versions of records, newest first."""
    return {"versions": history.versions(state(request).lake())}


@router.get("/tags")
def api_tags(request: Request) -> dict[str, Any]:
    """Tags of records."""
    return {"tags": history.tags(state(request).lake())}


@router.get("/batches")
def api_batches(request: Request) -> dict[str, Any]:
    """Ingest batches at the latest version."""
    return {"batches": history.batches(state(request).lake())}


@router.get("/diff")
def api_diff(request: Request, a: str = "", b: str = "", examples: int = 5) -> dict[str, Any]:
    """Rows added and removed between two versions or tags."""
    return history.version_diff(state(request).lake(), ref_of(a), ref_of(b), examples)


@router.get("/mixes")
def api_mixes(request: Request) -> dict[str, Any]:
    """Every mix version."""
    return {"mixes": training.mixes(state(request).lake())}


@router.get("/mixes/{ref}")
def api_mix(request: Request, ref: str, samples: int = 5) -> dict[str, Any]:
    """One mix with rendered sample rows."""
    return training.mix_detail(state(request).lake(), ref, samples)


@router.get("/mixdiff")
def api_mixdiff(request: Request, a: str = "", b: str = "") -> dict[str, Any]:
    """Diff of two mixes."""
    return training.mix_diff(state(request).lake(), a, b)


@router.get("/runs")
def api_runs(request: Request) -> dict[str, Any]:
    """Every training run."""
    return {"runs": training.runs(state(request).lake())}


@router.get("/runs/{run_id}")
def api_run(request: Request, run_id: str) -> dict[str, Any]:
    """One run with loss history and evals."""
    return training.run_detail(state(request).lake(), run_id)


@router.get("/runs/{run_id}/loss.png")
def api_run_loss(request: Request, run_id: str) -> Response:
    """A run's loss curve as PNG."""
    run = training.run_detail(state(request).lake(), run_id)
    png = charts.loss_curve(run["history"], f"run {run_id} · loss")
    return Response(png, media_type="image/png")


@router.get("/evals")
def api_evals(request: Request) -> dict[str, Any]:
    """Rows of the evals table and the per-row eval columns."""
    lake = state(request).lake()
    cols = [c.as_json() for c in compare.columns(lake)]
    return {"evals": training.evals(lake), "columns": cols}


@router.get("/compare")
def api_compare(request: Request, base: str = "", tuned: str = "", k: int = 5) -> dict[str, Any]:
    """Base-vs-tuned per-row comparison of two eval columns."""
    return compare.compare(state(request).lake(), base, tuned, k)


def _arg(action: str, params: dict[str, Any]) -> str:
    key = {"tag": "name", "rollback": "to", "delete": "batch"}.get(action, "name")
    value = str(params.get(key) or "").strip()
    if not value:
        raise WebError(f"{action}: give {key}")
    if action == "tag":
        return f"{value}@{str(params.get('version') or '').strip()}"
    if action == "materialize":
        # the token confirms this exact spec text, not only the mix name
        digest = hashlib.sha256(str(params.get("spec") or "").encode()).hexdigest()[:16]
        return f"{slices.check_name(value)}#{digest}"
    if action == "slice":
        return slices.check_name(value)
    return value


def preview(request: Request, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a mutation would do, and the token that confirms it (shared with the pages)."""
    if action not in ACTIONS:
        raise WebError(f"action: {action!r} is not one of {', '.join(ACTIONS)}", 404)
    web = state(request)
    lake = web.lake()
    arg = _arg(action, params)
    if action == "rollback":
        what = history.rollback_impact(lake, arg)
    elif action == "delete":
        what = history.delete_impact(lake, arg)
    elif action == "label":
        what = {
            "labeller": labels.labeller_of(arg),
            "table": "labels",
            "labelled": labels.count(lake),
        }
    elif action == "slice":
        known = {s["name"] for s in slices.all_slices(lake)}
        what = {"slice": arg, "replaces": arg in known, "table": slices.TABLE}
    elif action == "materialize":
        what = slices.check(lake, str(params.get("spec") or ""))
    else:
        name, _, version = arg.partition("@")
        what = {"tag": name, "version": lake.resolve(version or None)}
    token = web.confirmer.token(action, arg, lake.latest_version())
    return {"action": action, "arg": arg, "preview": what, "confirm": token}


def perform(request: Request, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run a confirmed mutation; refused (403) unless the server allows writes."""
    if action not in ACTIONS:
        raise WebError(f"action: {action!r} is not one of {', '.join(ACTIONS)}", 404)
    web = state(request)
    web.require_writes(action)
    lake = web.lake()
    arg = _arg(action, params)
    web.confirmer.check(params.get("confirm"), action, arg, lake.latest_version())
    if action == "rollback":
        return history.do_rollback(lake, arg)
    if action == "delete":
        return history.do_delete(lake, arg)
    if action == "label":
        ids = params.get("ids")
        if not isinstance(ids, list):
            raise WebError("label: give ids as a JSON list")
        return labels.save(lake, ids, str(params.get("label", "")), arg)
    if action in ("slice", "materialize"):
        return slices.perform(lake, action, arg, params)
    name, _, version = arg.partition("@")
    return history.do_tag(lake, name, version)


@router.get("/confirm/{action}")
def api_confirm(
    request: Request,
    action: str,
    to: str = "",
    batch: str = "",
    name: str = "",
    version: str = "",
    spec: str = "",
) -> dict[str, Any]:
    """Step 1 of a mutation: its impact and the confirmation token.

    `spec` is the mix spec text a `materialize` will write.
    """
    params = {"to": to, "batch": batch, "name": name, "version": version, "spec": spec}
    return preview(request, action, params)


@router.post("/{action}")
async def api_mutate(request: Request, action: str) -> dict[str, Any]:
    """Step 2 of a mutation: JSON body with the arguments and `confirm` from step 1."""
    try:
        body = await request.json()
    except ValueError:
        raise WebError(f"{action}: the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise WebError(f"{action}: the body must be a JSON object")
    return perform(request, action, body)
