"""HTML pages: records, row detail, charts, history (+ confirmations), mixes, runs, evals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from mixlake.web import compare, history, records, training
from mixlake.web.api import perform, preview, ref_of
from mixlake.web.errors import WebError
from mixlake.web.row import context as row_context
from mixlake.web.row import raw_row
from mixlake.web.state import state

router = APIRouter()
_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return ""
    return str(value)


def _highlight(value: Any, query: str) -> Markup:
    """`value` HTML-escaped, with each word of `query` (2+ characters) wrapped in <mark>."""
    text = str(escape(_fmt(value)))
    words = sorted({w for w in re.split(r"\W+", query or "") if len(w) >= 2}, key=len, reverse=True)
    if words:
        pattern = re.compile("|".join(re.escape(str(escape(w))) for w in words), re.IGNORECASE)
        text = pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", text)
    return Markup(text)


_ENV.filters["fmt"] = _fmt
_ENV.filters["highlight"] = _highlight
_ENV.globals["urlencode"] = urlencode


def render(request: Request, template: str, **context: Any) -> str:
    """Render a template with the layout's context (lake, latest version, write mode)."""
    web = state(request)
    try:
        latest: int | str = web.lake().latest_version()
    except Exception:
        latest = "?"
    return _ENV.get_template(template).render(
        lake_uri=web.lake_uri,
        latest=latest,
        allow_writes=web.allow_writes,
        path=request.url.path,
        **context,
    )


def page(request: Request, template: str, **context: Any) -> HTMLResponse:
    """An HTML response from a template."""
    return HTMLResponse(render(request, template, **context))


@router.get("/")
def home() -> RedirectResponse:
    """The records page is home."""
    return RedirectResponse("/records")


@router.get("/records/{record_id}")
def record_page(request: Request, record_id: str, version: str = "") -> HTMLResponse:
    """One record: the conversation, and every column with provenance."""
    lake = state(request).lake()
    row = records.record_detail(lake, record_id, ref_of(version))
    around = row_context(lake, row["version"], raw_row(lake, row["version"], row["id"]))
    return page(request, "record.html", title=f"record {record_id[:12]}", row=row, around=around)


@router.get("/charts")
def charts_page(
    request: Request, version: str = "", where: str = "", column: str = ""
) -> HTMLResponse:
    """Length, score and source distributions of the filtered rows."""
    lake = state(request).lake()
    number = records.resolve(lake, ref_of(version))
    records.where_clause(where)
    numeric = [c for c in records.numeric_columns(lake.records(number).schema) if c != "n_tokens"]
    qs = urlencode({"version": version, "where": where, "column": column})
    return page(
        request,
        "charts.html",
        title="charts",
        version=version,
        where=where,
        column=column,
        numeric=numeric,
        qs=qs,
        number=number,
    )


@router.get("/history")
def history_page(request: Request, a: str = "", b: str = "") -> HTMLResponse:
    """Versions, tags, batches, and the diff between two versions when both are given."""
    lake = state(request).lake()
    diff = history.version_diff(lake, ref_of(a), ref_of(b)) if a.strip() and b.strip() else None
    return page(
        request,
        "history.html",
        title="history",
        versions=history.versions(lake),
        tags=history.tags(lake),
        batches=history.batches(lake),
        diff=diff,
        a=a,
        b=b,
    )


@router.get("/confirm/{action}")
def confirm_page(
    request: Request, action: str, to: str = "", batch: str = "", name: str = "", version: str = ""
) -> HTMLResponse:
    """Step 1 of a mutation: what it will do (impact on mixes and runs), and a confirm form."""
    got = preview(request, action, {"to": to, "batch": batch, "name": name, "version": version})
    fields = {"to": to, "batch": batch, "name": name, "version": version}
    return page(request, "confirm.html", title=f"confirm {action}", got=got, fields=fields)


@router.post("/do/{action}")
async def do_action(request: Request, action: str) -> HTMLResponse:
    """Step 2 of a mutation: a form POST carrying the confirmation token."""
    body = (await request.body()).decode("utf-8", "replace")
    params = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    if params.get("cancel"):
        raise WebError(f"{action}: cancelled; nothing changed", 409)
    result = perform(request, action, params)
    return page(request, "done.html", title=f"{action} done", action=action, result=result)


@router.get("/mixes")
def mixes_page(request: Request, a: str = "", b: str = "") -> HTMLResponse:
    """Every mix version, and the diff between two mixes when both are given."""
    lake = state(request).lake()
    diff = training.mix_diff(lake, a, b) if a.strip() and b.strip() else None
    return page(
        request, "mixes.html", title="mixes", mixes=training.mixes(lake), diff=diff, a=a, b=b
    )


@router.get("/mixes/{ref}")
def mix_page(request: Request, ref: str, samples: int = 5) -> HTMLResponse:
    """One mix: composition, splits, spec, rendered sample rows."""
    mix = training.mix_detail(state(request).lake(), ref, samples)
    return page(request, "mix.html", title=f"mix {mix['ref']}", mix=mix)


@router.get("/runs")
def runs_page(request: Request) -> HTMLResponse:
    """Every training run with its headline metrics."""
    return page(request, "runs.html", title="runs", runs=training.runs(state(request).lake()))


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, offset: int = 0, limit: int = 50) -> HTMLResponse:
    """One run: loss curve, metrics, config, evals, and a page of the rows it trained on."""
    lake = state(request).lake()
    run = training.run_detail(lake, run_id)
    seen = training.exposures(lake, run_id, offset, limit)
    return page(request, "run.html", title=f"run {run_id}", run=run, seen=seen)


@router.get("/evals")
def evals_page(request: Request, base: str = "", tuned: str = "", k: int = 8) -> HTMLResponse:
    """Eval metrics per run, and a base-vs-tuned per-row comparison of one metric."""
    lake = state(request).lake()
    cols = compare.columns(lake)
    if not base.strip() and not tuned.strip():
        base, tuned = compare.default_pair(cols)
    cmp, notice = None, ""
    if base.strip() and tuned.strip():
        try:
            cmp = compare.compare(lake, base, tuned, k)
        except WebError as e:
            if e.status != 400:
                raise
            notice = e.message
    groups: dict[str, list[Any]] = {}
    for c in cols:
        groups.setdefault(c.key, []).append(c)
    return page(
        request,
        "evals.html",
        title="evals",
        evals=training.evals(lake),
        columns=[c.column for c in cols],
        groups=groups,
        cmp=cmp,
        notice=notice,
        base=base,
        tuned=tuned,
    )


@router.get("/api/docs", include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    """The JSON API's endpoints from the OpenAPI schema, as a plain page that works offline."""
    spec = request.app.openapi()
    endpoints = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = [
                {"name": p["name"], "in": p["in"], "required": p.get("required", False)}
                for p in op.get("parameters", [])
            ]
            endpoints.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "doc": op.get("description", ""),
                    "params": params,
                }
            )
    return page(request, "apidocs.html", title="API", endpoints=endpoints)
