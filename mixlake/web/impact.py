"""What a rollback or a batch delete loses beyond rows: columns, indexes, eval columns, pins.

A rollback to version T makes T's table the latest again, so every column added after T (scores,
embeddings, eval columns, classifier outputs, flags) and every index built after T (the
full-text index) is gone from the latest version; mixes and runs pinned to versions after T
keep their pins but no longer describe the latest table. A batch delete keeps every column and
index, but the values those rows had in them go.
"""

from __future__ import annotations

from typing import Any

import lance
import pyarrow as pa

from curation import Lake
from curation.schema import CORE_COLUMNS
from curation.sqltext import equals, identifier
from curation.steps import column_provenance
from mixlake.web.metrics import parse_eval_column


def _column(field: pa.Field) -> dict[str, Any]:
    prov = column_provenance(field)
    ev = parse_eval_column(field)
    return {
        "column": field.name,
        "type": str(field.type),
        "step": prov.get("step"),
        "eval": ev is not None,
        "made_from_version": prov.get("records_version"),
    }


def indexes(ds: lance.LanceDataset) -> list[dict[str, Any]]:
    """The indexes of one version of a dataset: name, type and columns."""
    try:
        found = ds.list_indices()
    except (ValueError, OSError):
        return []
    return [
        {"name": i.get("name"), "type": i.get("type"), "columns": list(i.get("fields", []))}
        for i in found
    ]


def schema_changes(lake: Lake, target: int, latest: int) -> dict[str, Any]:
    """Columns and indexes a rollback to `target` loses and restores.

    Lost: those the latest version has and `target` lacks; restored: those `target` has that
    the latest lacks.
    """
    now, then = lake.records(latest), lake.records(target)
    now_names, then_names = set(now.schema.names), set(then.schema.names)
    now_idx, then_idx = indexes(now), indexes(then)
    then_keys = {(i["name"], tuple(i["columns"])) for i in then_idx}
    now_keys = {(i["name"], tuple(i["columns"])) for i in now_idx}
    return {
        "columns_lost": [_column(f) for f in now.schema if f.name not in then_names],
        "columns_restored": [_column(f) for f in then.schema if f.name not in now_names],
        "indexes_lost": [i for i in now_idx if (i["name"], tuple(i["columns"])) not in then_keys],
        "indexes_restored": [
            i for i in then_idx if (i["name"], tuple(i["columns"])) not in now_keys
        ],
    }


def pinned_after(lake: Lake, target: int) -> dict[str, list[dict[str, Any]]]:
    """Mixes and runs built on a records version after `target`."""
    out: dict[str, list[dict[str, Any]]] = {"mixes": [], "runs": []}
    keep = {
        "mixes": ["name", "mix_version", "records_version"],
        "runs": ["run_id", "mix", "status", "records_version"],
    }
    for table, cols in keep.items():
        if not lake.has_table(table):
            continue
        data = lake.dataset(table).to_table()
        present = [c for c in cols if c in data.column_names]
        if "records_version" not in present:
            continue
        rows = data.select(present).to_pylist()
        out[table] = sorted(
            (r for r in rows if (r.get("records_version") or 0) > target),
            key=lambda r: (r["records_version"], str(r.get("name") or r.get("run_id"))),
        )
    return out


def values_in_batch(lake: Lake, batch: str) -> list[dict[str, Any]]:
    """For each non-core column, how many of a batch's rows hold a value in it.

    Those values go when the batch is deleted; columns with no values there are left out.
    """
    ds = lake.records()
    extra = [f for f in ds.schema if f.name not in CORE_COLUMNS]
    if not extra:
        return []
    counts = ", ".join(f"count({identifier(f.name)}) AS {identifier('n_' + f.name)}" for f in extra)
    got = lake.sql(f"SELECT {counts} FROM records WHERE {equals('batch', batch)}").to_pylist()[0]
    out = []
    for f in extra:
        n = int(got.get("n_" + f.name) or 0)
        if n:
            out.append({**_column(f), "values": n})
    return out
