"""The `pii` step: how much personal data or secrets each row's text holds, and where.

Columns: `pii_count` (int32), `pii_kinds` (sorted distinct kinds) and `pii_spans`
(start, end, kind of each detection in `text`). `records` is never rewritten; a mix export
redacts with `curation.pii.redact`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from curation.lake import Lake
from curation.pii import KINDS, find_pii
from curation.steps.base import RowProgress, StepReport, apply
from curation.steps.registry import register_step

PII_DETECTOR = "pii_v1"
"""Bump when `curation.pii` changes what it finds, so old columns are not mistaken for new."""

SPAN_TYPE = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("kind", pa.string())])


@register_step(
    "pii_v1",
    command="pii",
    help="Count emails, phones, IPs, card numbers and secrets: `pii_count`, `pii_kinds`, spans.",
)
class PiiStep:
    """`pii_count`, `pii_kinds`, `pii_spans` over `text`."""

    name = "pii_count"
    input_columns: tuple[str, ...] = ("text",)
    model_step = False

    @classmethod
    def run(
        cls,
        lake: Lake,
        params: None = None,
        *,
        where: str | None = None,
        replace: bool = False,
        progress: RowProgress | None = None,
    ) -> PiiReport:
        """`pii` (the registry's run; the step takes no parameters)."""
        return pii(lake, where=where, replace=replace, progress=progress)

    def params(self) -> dict[str, Any]:
        """The detector version and the kinds it reports."""
        return {"detector": PII_DETECTOR, "kinds": list(KINDS)}

    def output_schema(self) -> pa.Schema:
        """Count first (never null for a computed row), then kinds and spans."""
        return pa.schema(
            [
                pa.field("pii_count", pa.int32()),
                pa.field("pii_kinds", pa.list_(pa.string())),
                pa.field("pii_spans", pa.list_(SPAN_TYPE)),
            ]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Detect spans in every text of the batch."""
        counts, kinds, spans = [], [], []
        for text in batch.column("text").to_pylist():
            found = find_pii(text or "")
            counts.append(len(found))
            kinds.append(sorted({s.kind for s in found}))
            spans.append([{"start": s.start, "end": s.end, "kind": s.kind} for s in found])
        schema = self.output_schema()
        return pa.RecordBatch.from_arrays(
            [pa.array(col, f.type) for col, f in zip((counts, kinds, spans), schema, strict=True)],
            schema=schema,
        )


@dataclass(frozen=True)
class PiiReport:
    """What `pii` did, and how many rows (at the latest version) hold each kind."""

    step: StepReport
    rows_with_pii: int
    rows_checked: int
    by_kind: dict[str, int]


def pii(
    lake: Lake,
    *,
    where: str | None = None,
    replace: bool = False,
    progress: RowProgress | None = None,
) -> PiiReport:
    """Count emails, phones, IPs, card numbers and secrets per row.

    Args:
        lake: the lake.
        where: only rows matching this SQL predicate.
        replace: recompute when the columns exist from another detector version.
        progress: callback (rows done, rows total).

    Raises:
        CurationError: bad predicate, or columns from another detector and no `replace`.
    """
    report = apply(PiiStep(), lake, where=where, replace=replace, progress=progress)
    rows = lake.sql(
        "SELECT count(*) FILTER (pii_count IS NOT NULL), count(*) FILTER (pii_count > 0) "
        "FROM records"
    ).to_pylist()[0]
    checked, with_pii = (int(v or 0) for v in rows.values())
    kinds = lake.sql(
        "SELECT k, count(*) AS n FROM (SELECT unnest(pii_kinds) AS k FROM records) GROUP BY k"
    ).to_pylist()
    by_kind = {r["k"]: int(r["n"]) for r in sorted(kinds, key=lambda r: KINDS.index(r["k"]))}
    return PiiReport(report, with_pii, checked, by_kind)
