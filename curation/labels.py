"""Quality labels for records: the `labels` table (id, label, labeller, at), append-only.

Each import is one journaled append. A record labelled twice keeps its latest label, so a
curator can correct a label by labelling again. Labels are 1 (good) or 0 (bad).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import lance
import pyarrow as pa
import pyarrow.compute as pc

from curation.commit import Entry
from curation.errors import CurationError
from curation.lake import Lake
from curation.query import sql

LABELS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("labeller", pa.string()),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
_VALUES = {"good": 1, "1": 1, "true": 1, "bad": 0, "0": 0, "false": 0}


@dataclass(frozen=True)
class LabelReport:
    """What one label import did."""

    rows: int
    good: int
    bad: int
    version: int
    total_labelled: int


def parse_label(value: str, where: str) -> int:
    """Turn `good|bad|1|0|true|false` into 1 or 0.

    Raises:
        CurationError: any other value; the message names `where` it came from.
    """
    label = _VALUES.get(str(value).strip().lower())
    if label is None:
        raise CurationError(f"{where}: label {value!r} is not one of good, bad, 1, 0")
    return label


def read_label_csv(path: str | Path) -> list[tuple[str, int]]:
    """Read `id,label` rows from a CSV file (a header line `id,label` is optional).

    Raises:
        CurationError: missing file, a row without two fields, or a bad label (with its line).
    """
    file = Path(path)
    if not file.is_file():
        raise CurationError(f"label file {file} does not exist")
    pairs: list[tuple[str, int]] = []
    with file.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if line == 1 and [c.strip().lower() for c in row[:2]] == ["id", "label"]:
                continue
            if len(row) < 2 or not row[0].strip():
                raise CurationError(f"{file}:{line}: expected `id,label`, got {','.join(row)!r}")
            pairs.append((row[0].strip(), parse_label(row[1], f"{file}:{line}")))
    if not pairs:
        raise CurationError(f"{file}: no `id,label` rows")
    return pairs


def ids_from_sql(lake: Lake, query: str) -> list[str]:
    """The `id` column of a DuckDB query over the lake.

    Raises:
        CurationError: the query fails or returns no `id` column.
    """
    statements = duckdb.extract_statements(query) if query.strip() else []
    if len(statements) != 1:
        raise CurationError(
            f"label --sql must be one SELECT statement; got {len(statements)} statements"
        )
    result = sql(lake, query)
    if "id" not in result.column_names:
        raise CurationError(
            f"label query must return an `id` column; it returned {result.schema.names}"
        )
    return [i for i in result.column("id").to_pylist() if i is not None]


def add_labels(lake: Lake, pairs: Sequence[tuple[str, int]], labeller: str) -> LabelReport:
    """Append labels as one new version of `labels`, journaled.

    Args:
        lake: the lake.
        pairs: (record id, 0|1) pairs.
        labeller: who or what labelled them (a name, a file, a query).

    Raises:
        CurationError: no pairs, a label not 0/1, an id given two different labels, or ids not
            in `records` (the first few are named); nothing is written then.
    """
    if not pairs:
        raise CurationError("no rows to label (the CSV or query selected nothing)")
    seen: dict[str, int] = {}
    for record_id, label in pairs:
        if label not in (0, 1):
            raise CurationError(f"id {record_id}: label {label!r} is not 0 or 1")
        if seen.get(record_id, label) != label:
            raise CurationError(f"id {record_id} is labelled both good and bad in one import")
        seen[record_id] = label
    ids = pa.array(list(seen), pa.string())
    known = lake.records().to_table(columns=["id"], filter=pc.field("id").isin(ids))
    unknown = sorted(set(seen) - set(known.column("id").to_pylist()))
    if unknown:
        raise CurationError(
            f"{len(unknown)} id(s) are not in records, e.g. {', '.join(unknown[:3])}; nothing "
            "was labelled"
        )
    now = dt.datetime.now(dt.UTC)
    table = pa.table(
        {
            "id": ids,
            "label": pa.array(list(seen.values()), pa.int8()),
            "labeller": [labeller] * len(seen),
            "at": pa.array([now] * len(seen), pa.timestamp("us", tz="UTC")),
        },
        schema=LABELS_SCHEMA,
    )
    uri = lake.table_uri("labels")
    good = sum(seen.values())
    entry = Entry(
        "label",
        f"labelled {len(seen)} rows ({good} good, {len(seen) - good} bad) by {labeller}",
        {"labeller": labeller, "rows": len(seen)},
        len(seen),
    )
    with lake.writing("label"):  # the append carries its journal entry
        ds = lance.write_dataset(
            table,
            uri,
            mode="append" if lake.has_table("labels") else "create",
            transaction_properties=entry.properties(),
        )
    return LabelReport(
        len(seen), good, len(seen) - good, int(ds.version), len(current_labels(lake))
    )


def current_labels(lake: Lake) -> dict[str, int]:
    """Record id → its latest label (empty when nothing is labelled)."""
    if not lake.has_table("labels"):
        return {}
    rows = lake.dataset("labels").to_table(columns=["id", "label", "at"]).to_pylist()
    rows.sort(key=lambda r: r["at"])
    return {r["id"]: int(r["label"]) for r in rows}
