"""`is_dup`: whether any dedup method marked a row, computed in the same commit as a method.

`WithDupFlag` wraps one method's step (curation.steps.dedup) so its two columns and the
recomputed `is_dup` are one step, hence one commit; `DupFlagStep` computes `is_dup` alone
from the stored method columns.
"""

from __future__ import annotations

from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc

from curation.steps.dedup_base import DedupStep


class DupFlagStep:
    """`is_dup`: true when any dedup method marked the row (null when none has run on it)."""

    name = "is_dup"

    def __init__(self, methods: tuple[str, ...]) -> None:
        """Combine the `is_dup_<method>` columns of `methods`."""
        self.methods = methods
        self.input_columns = tuple(f"is_dup_{m}" for m in methods)

    def params(self) -> dict[str, Any]:
        """The methods combined."""
        return {"any_of": list(self.methods)}

    def output_schema(self) -> pa.Schema:
        """One bool column."""
        return pa.schema([pa.field("is_dup", pa.bool_())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """OR of the method flags; null only when every method left the row null."""
        out = any_flag([batch.column(c) for c in self.input_columns])
        return pa.RecordBatch.from_arrays([out], schema=self.output_schema())


class WithDupFlag:
    """A dedup method's columns plus `is_dup`, computed together so they commit together.

    `is_dup` ORs this method's fresh marks with the other methods' stored columns. The step
    sees every row (`sees_all_rows`): rows outside the method's `where` keep null marks but
    still get `is_dup` from the other methods.
    """

    sees_all_rows = True

    def __init__(self, step: DedupStep, others: tuple[str, ...]) -> None:
        """Wrap `step`; `others` are the methods whose `is_dup_<method>` columns exist."""
        self.step, self.others = step, others
        self.model_step = bool(getattr(step, "model_step", False))
        self.name = step.name
        self.input_columns = (*step.input_columns, *(f"is_dup_{m}" for m in others))

    def params(self) -> dict[str, Any]:
        """The method's parameters (the flag adds none)."""
        return self.step.params()

    def output_schema(self) -> pa.Schema:
        """The method's two columns, then `is_dup`."""
        return pa.schema([*self.step.output_schema(), pa.field("is_dup", pa.bool_())])

    def prepare(self, records: lance.LanceDataset, where: str | None) -> None:
        """Find the method's groups among the rows `where` selects."""
        self.step.prepare(records, where)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Marks for the selected rows (null elsewhere) and `is_dup` for every row."""
        out = self.step(batch)
        inside = pa.array(self.step.covers(batch.column("id").to_pylist()), pa.bool_())
        marks = [pc.if_else(inside, c, pa.nulls(len(c), c.type)) for c in out.columns]
        flags = [marks[0], *(batch.column(f"is_dup_{m}") for m in self.others)]
        return pa.RecordBatch.from_arrays([*marks, any_flag(flags)], schema=self.output_schema())


def any_flag(flags: list[Any]) -> pa.Array:
    """OR of dedup flags; null only where every flag is null."""
    combined, all_null = flags[0], flags[0].is_null()
    for c in flags[1:]:
        combined = pc.or_kleene(combined, c)
        all_null = pc.and_(all_null, c.is_null())
    filled = pc.fill_null(combined, False)
    return pc.if_else(all_null, pa.nulls(len(filled), pa.bool_()), filled)
