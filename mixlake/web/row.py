"""Everything around one record.

Its duplicate groups, nearest neighbours by embedding, the mixes and runs that used it, its
per-row eval results base vs tuned, and its label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation import Lake
from curation.sqltext import equals, literal
from mixlake.web.labels import label_map
from mixlake.web.metrics import eval_columns
from mixlake.web.records import SNIPPET, _jsonable

NEIGHBOURS = 6
MIX_PREFIX = "mix__"


def dup_groups(lake: Lake, version: int, row: dict[str, Any]) -> list[dict[str, Any]]:
    """For each `dup_group_<method>` the row belongs to, the group's other members."""
    ds = lake.records(version)
    out = []
    for name in ds.schema.names:
        if not name.startswith("dup_group_") or row.get(name) is None:
            continue
        method = name[len("dup_group_") :]
        members = ds.to_table(
            columns=["id", "source", "text"],
            filter=f"{equals(name, int(row[name]))} AND id <> {literal(row['id'])}",
            limit=20,
        ).to_pylist()
        out.append(
            {
                "method": method,
                "group": row[name],
                "members": [{**m, "text": (m["text"] or "")[:SNIPPET]} for m in members],
            }
        )
    return out


def neighbours(lake: Lake, version: int, record_id: str, k: int = NEIGHBOURS) -> dict[str, Any]:
    """The `k` nearest rows by cosine distance on `embedding` (exact search by Lance)."""
    ds = lake.records(version)
    if "embedding" not in ds.schema.names:
        return {"available": False, "rows": []}
    own = ds.to_table(columns=["embedding"], filter=equals("id", record_id)).column(0)
    if own.null_count or len(own) == 0:
        return {"available": False, "rows": [], "note": "this row has no embedding"}
    vector = np.asarray(own[0].as_py(), dtype=np.float32)
    got = ds.to_table(
        columns=["id", "source", "text"],
        nearest={"column": "embedding", "q": vector, "k": k + 1, "metric": "cosine"},
    )
    rows = [r for r in got.to_pylist() if r["id"] != record_id][:k]
    return {
        "available": True,
        "rows": [
            {
                "id": r["id"],
                "source": r["source"],
                "text": (r["text"] or "")[:SNIPPET],
                "distance": _jsonable(r.get("_distance")),
            }
            for r in rows
        ],
    }


def used_by(lake: Lake, record_id: str) -> dict[str, list[dict[str, Any]]]:
    """The mixes that hold the record and the runs that trained on it.

    A mix with its name, version, component and split; a run with how many exposures it had
    and its first step.
    """
    mixes = []
    pins = _mix_versions(lake)
    for table in lake.table_names():
        if not table.startswith(MIX_PREFIX):
            continue
        name = table[len(MIX_PREFIX) :]
        for version, table_version in pins.get(name, []):
            ds = lake.dataset(table, table_version) if table_version else lake.dataset(table)
            got = ds.to_table(columns=["component", "split"], filter=equals("id", record_id))
            for r in got.to_pylist()[:1]:
                mixes.append({"mix": name, "mix_version": version, **r})
    runs = []
    if lake.has_table("exposures"):
        exp = lake.dataset("exposures").to_table(
            columns=["run_id", "step"], filter=equals("record_id", record_id)
        )
        for run_id in sorted(set(exp.column("run_id").to_pylist())):
            steps = exp.filter(pc.equal(exp.column("run_id"), run_id)).column("step")
            runs.append(
                {"run_id": run_id, "exposures": len(steps), "first_step": pc.min(steps).as_py()}
            )
    return {"mixes": mixes, "runs": runs}


def _mix_versions(lake: Lake) -> dict[str, list[tuple[int, int | None]]]:
    if not lake.has_table("mixes"):
        return {}
    table = lake.dataset("mixes").to_table()
    has_tv = "table_version" in table.column_names
    out: dict[str, list[tuple[int, int | None]]] = {}
    for r in table.to_pylist():
        out.setdefault(r["name"], []).append(
            (r["mix_version"], r.get("table_version") if has_tv else None)
        )
    return {k: sorted(v) for k, v in out.items()}


def evals_of(lake: Lake, version: int, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Per suite/metric, each target's value on this row, the metric's direction, and the best."""
    groups: dict[str, dict[str, Any]] = {}
    for col in eval_columns(lake.records(version).schema):
        value = row.get(col.column)
        if value is None or value != value:
            continue
        g = groups.setdefault(
            col.key,
            {"suite": col.suite, "metric": col.metric, "direction": col.direction, "values": []},
        )
        g["values"].append({"target": col.target, "column": col.column, "value": value})
    for g in groups.values():
        if g["direction"] != "unknown" and len(g["values"]) > 1:
            pick = min if g["direction"] == "lower" else max
            g["best"] = pick(g["values"], key=lambda v: v["value"])["target"]
    return list(groups.values())


def context(lake: Lake, version: int, row: dict[str, Any]) -> dict[str, Any]:
    """Everything around the row for its page."""
    return {
        "dups": dup_groups(lake, version, row),
        "neighbours": neighbours(lake, version, row["id"]),
        "used_by": used_by(lake, row["id"]),
        "evals": evals_of(lake, version, row),
        "label": label_map(lake, [row["id"]]).get(row["id"]),
    }


def raw_row(lake: Lake, version: int, record_id: str) -> dict[str, Any]:
    """The row's scalar columns (no vectors) as a dict."""
    ds = lake.records(version)
    keep = [f.name for f in ds.schema if not pa.types.is_fixed_size_list(f.type)]
    got = ds.to_table(columns=keep, filter=equals("id", record_id)).to_pylist()
    return got[0] if got else {}
