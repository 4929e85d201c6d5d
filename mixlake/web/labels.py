"""Labels from the UI: read the `labels` table and save good/bad labels.

Saving goes through `curation.labels.add_labels` (one journaled append per save, labeller and
time recorded).

A record labelled again keeps its latest label, so correcting a label is labelling again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from curation import Lake
from curation.labels import add_labels, current_labels, parse_label
from mixlake.web.errors import WebError

MAX_IDS = 5000
_ID = re.compile(r"^[0-9a-f]{8,64}$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def count(lake: Lake) -> int:
    """How many records have a label."""
    return len(current_labels(lake))


def label_map(lake: Lake, ids: Sequence[str]) -> dict[str, int]:
    """Record id → its current label (1 good, 0 bad), for the ids that have one."""
    got = current_labels(lake)
    return {i: got[i] for i in ids if i in got}


def current_table(lake: Lake) -> pa.Table:
    """The current label of every labelled record as an Arrow table (id, label)."""
    got = current_labels(lake)
    return pa.table(
        {"id": pa.array(list(got), pa.string()), "label": pa.array(list(got.values()), pa.int8())}
    )


def current(lake: Lake, limit: int = 500) -> list[dict[str, Any]]:
    """The latest label of each record, newest first: id, label, labeller, at."""
    if not lake.has_table("labels"):
        return []
    rows = lake.dataset("labels").to_table().to_pylist()
    latest: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["at"]):
        latest[r["id"]] = r
    out = sorted(latest.values(), key=lambda r: r["at"], reverse=True)[:limit]
    return [
        {
            "id": r["id"],
            "label": "good" if r["label"] == 1 else "bad",
            "labeller": r["labeller"],
            "at": str(r["at"])[:19],
        }
        for r in out
    ]


def labeller_of(name: str) -> str:
    """`ui:<name>`: who a UI label is recorded as.

    Raises:
        WebError: a name that is not a short plain word (400).
    """
    if not _NAME.match(name or ""):
        raise WebError(f"name: {name!r} is not a labeller name (letters, digits, . _ -)")
    return f"ui:{name}"


def save(lake: Lake, ids: Sequence[str], label: str, name: str) -> dict[str, Any]:
    """Label records good or bad as one append to `labels` (by `curation.labels.add_labels`).

    Raises:
        WebError: no ids, too many, a malformed id, or a bad labeller name (400).
        CurationError: a label that is not good/bad, or ids not in records.
    """
    if not ids:
        raise WebError("label: select at least one row")
    if len(ids) > MAX_IDS:
        raise WebError(f"label: at most {MAX_IDS} rows per save, got {len(ids)}")
    bad = [i for i in ids if not isinstance(i, str) or not _ID.match(i)]
    if bad:
        raise WebError(f"label: {bad[0]!r} is not a record id")
    value = parse_label(str(label), "label")
    report = add_labels(lake, [(i, value) for i in ids], labeller_of(name))
    return {
        "rows": report.rows,
        "label": "good" if value == 1 else "bad",
        "labels_version": report.version,
        "total_labelled": report.total_labelled,
    }
