"""Mixes, runs and evals for the UI, read through the tables of docs/architecture.md.

Each function works whether or not the producing package has written anything yet: a lake with
no `mixes`, `runs` or `evals` table gives empty lists, never an error.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pyarrow as pa

from curation import Lake
from mixlake.web.errors import WebError
from mixlake.web.records import _jsonable

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}(@[0-9]{1,9})?$")
_RUN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _table(lake: Lake, name: str) -> pa.Table | None:
    return lake.dataset(name).to_table() if lake.has_table(name) else None


def mixes(lake: Lake) -> list[dict[str, Any]]:
    """Every version of every mix (from the `mixes` table), by name then version."""
    table = _table(lake, "mixes")
    if table is None:
        return []
    keep = ["name", "mix_version", "records_version", "rows", "tokens", "checksum", "created_at"]
    rows = table.select([c for c in keep if c in table.column_names]).to_pylist()
    out = [{k: _jsonable(v) for k, v in r.items()} for r in rows]
    return sorted(out, key=lambda r: (r["name"], r["mix_version"]))


def mix_detail(lake: Lake, ref: str, samples: int = 5) -> dict[str, Any]:
    """One mix: components, splits, spec and the first rendered examples as the trainer sees them.

    Raises:
        WebError: a malformed reference or bad `samples` (400).
        QueryError: no such mix (mapped to 404).
    """
    if not _NAME.match(ref or ""):
        raise WebError(f"mix: {ref!r} is not NAME or NAME@VERSION")
    if not 0 <= samples <= 50:
        raise WebError(f"samples: must be between 0 and 50, got {samples}")
    from queries import open_mix

    mix = open_mix(lake, ref)
    examples = []
    for i, example in enumerate(mix.examples()):
        if i >= samples:
            break
        examples.append(_jsonable(example))
    return {
        "name": mix.name,
        "version": mix.version,
        "ref": mix.ref,
        "checksum": mix.checksum,
        "records_version": mix.records_version,
        "rows": mix.row_count,
        "tokens": mix.tokens,
        "components": _jsonable(mix.components),
        "splits": _jsonable(mix.splits),
        "spec": getattr(mix.spec, "text", None) or mix.spec.to_yaml(),
        "created_at": str(mix.created_at)[:19],
        "examples": examples,
    }


def mix_diff(lake: Lake, a: str, b: str) -> dict[str, Any]:
    """Rows added and removed per component between two mixes (`name` or `name@version`)."""
    for label, ref in (("a", a), ("b", b)):
        if not _NAME.match(ref or ""):
            raise WebError(f"{label}: {ref!r} is not NAME or NAME@VERSION")
    from queries import diff_mixes

    d = diff_mixes(lake, a, b)
    return {
        "a": d.a,
        "b": d.b,
        "same": d.same,
        "records_versions": list(d.records_versions),
        "added": d.added,
        "removed": d.removed,
        "common": d.common,
        "split_changes": d.split_changes,
        "components": [
            {
                "component": c.component,
                "rows_a": c.rows_a,
                "rows_b": c.rows_b,
                "added": c.added,
                "removed": c.removed,
            }
            for c in d.components
        ],
    }


def runs(lake: Lake) -> list[dict[str, Any]]:
    """Every training run, newest first, with its headline metrics."""
    table = _table(lake, "runs")
    if table is None:
        return []
    out = []
    for r in table.to_pylist():
        metrics = _loads(r.get("metrics"))
        out.append(
            {
                "run_id": r["run_id"],
                "mix": r.get("mix"),
                "mix_version": r.get("mix_version"),
                "records_version": r.get("records_version"),
                "status": r.get("status"),
                "steps": metrics.get("steps"),
                "train_loss": metrics.get("train_loss"),
                "eval_loss": metrics.get("eval_loss"),
                "started_at": str(r.get("started_at"))[:19],
            }
        )
    return sorted(out, key=lambda r: r["started_at"], reverse=True)


def run_detail(lake: Lake, run_id: str) -> dict[str, Any]:
    """One run: config, metrics, best metrics, loss history and its eval metrics.

    Raises:
        WebError: a malformed id (400) or no such run (404).
    """
    if not _RUN.match(run_id or ""):
        raise WebError(f"run: {run_id!r} is not a run id")
    table = _table(lake, "runs")
    rows = [] if table is None else [r for r in table.to_pylist() if r["run_id"] == run_id]
    if not rows:
        raise WebError(f"no run {run_id!r} in this lake", 404)
    r = rows[0]
    metrics = _loads(r.get("metrics"))
    history = metrics.pop("history", []) if isinstance(metrics.get("history"), list) else []
    return {
        "run_id": run_id,
        "mix": r.get("mix"),
        "mix_version": r.get("mix_version"),
        "mix_checksum": r.get("mix_checksum"),
        "records_version": r.get("records_version"),
        "status": r.get("status"),
        "git_commit": r.get("git_commit"),
        "config": r.get("config"),
        "adapter_path": r.get("adapter_path"),
        "started_at": str(r.get("started_at"))[:19],
        "finished_at": str(r.get("finished_at"))[:19] if r.get("finished_at") else None,
        "metrics": _jsonable(metrics),
        "best_metrics": _jsonable(_loads(r.get("best_metrics"))),
        "history": _jsonable(history),
        "evals": [e for e in evals(lake) if e["run_id"] == run_id],
    }


def evals(lake: Lake) -> list[dict[str, Any]]:
    """Rows of the `evals` table (run, suite, metric, value, mix, split, when)."""
    table = _table(lake, "evals")
    if table is None:
        return []
    keep = ["run_id", "suite", "metric", "value", "mix", "split", "records_version", "at"]
    rows = table.select([c for c in keep if c in table.column_names]).to_pylist()
    out = [{k: _jsonable(v) for k, v in r.items()} for r in rows]
    return sorted(out, key=lambda r: (str(r.get("suite")), str(r.get("metric")), r["run_id"]))


def eval_columns(lake: Lake) -> list[str]:
    """Per-row eval metric columns (`eval_<target>_<suite>_<metric>`) in `records`."""
    from mixlake.web.metrics import eval_columns as parse

    return [c.column for c in parse(lake.records().schema)]


def _loads(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        got = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return got if isinstance(got, dict) else {}


MAX_EXPOSURES_PAGE = 500


def exposures(lake: Lake, run_id: str, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """A page of the rows a run trained on (the `exposures` table), in training order.

    Rows are ordered by step and position; each has the rank that took it (0 in a table
    written before the ledger had `rank`), its source and a snippet read at the run's records
    version.

    Raises:
        WebError: a malformed run id or bad paging (400); no such run (404).
    """
    from curation.sqltext import equals, in_list

    run = run_detail(lake, run_id)
    if not 1 <= limit <= MAX_EXPOSURES_PAGE or offset < 0:
        raise WebError(f"limit: 1..{MAX_EXPOSURES_PAGE} and offset ≥ 0, got {limit}, {offset}")
    if not lake.has_table("exposures"):
        return {"run_id": run_id, "total": 0, "offset": offset, "limit": limit, "rows": []}
    ds = lake.dataset("exposures")
    has_rank = "rank" in ds.schema.names
    columns = ["record_id", "position", "step", "epoch"] + (["rank"] if has_rank else [])
    table = ds.to_table(columns=columns, filter=equals("run_id", run_id))
    if not has_rank:  # one process wrote it (the ledger gained `rank` with DDP)
        table = table.append_column("rank", pa.array([0] * table.num_rows, pa.int32()))
    table = table.sort_by([("step", "ascending"), ("position", "ascending")])
    page = table.slice(offset, limit).to_pylist()
    version = run["records_version"]
    ids = sorted({r["record_id"] for r in page})
    found: dict[str, dict[str, Any]] = {}
    if ids:
        ds = lake.records(version if version is not None else None)
        for r in ds.to_table(
            columns=["id", "source", "text"], filter=in_list("id", ids)
        ).to_pylist():
            found[r["id"]] = r
    rows = []
    for r in page:
        got = found.get(r["record_id"], {})
        text = " ".join(str(got.get("text") or "").split())[:160]
        rows.append({**r, "source": got.get("source"), "text": text, "in_records": bool(got)})
    return {
        "run_id": run_id,
        "records_version": version,
        "total": table.num_rows,
        "offset": offset,
        "limit": limit,
        "rows": rows,
    }
