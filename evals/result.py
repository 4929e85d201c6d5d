"""`EvalResult`: one suite run for one target, and where it was written (or its file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson


@dataclass(frozen=True)
class EvalResult:
    """One suite run for one target, and where it was written.

    Attributes:
        target: the target label (run id or `base_<model>`), as in column names.
        suite: the suite name.
        split: the mix split evaluated (None for an eval set).
        mix: the mix name, or `eval-set:<source>`.
        mix_checksum: the mix checksum (None for an eval set).
        records_version: the records version the rows were read at.
        run_level: overall metrics.
        columns: the per-row `records` columns.
        version: the records version the columns were written in (None: nothing new).
        ids: the rows evaluated; `per_row` holds their metrics, `predictions` any answers.
    """

    target: str
    suite: str
    split: str | None
    mix: str | None
    mix_checksum: str | None
    records_version: int
    run_level: dict[str, float]
    columns: tuple[str, ...]
    version: int | None
    ids: list[str] = field(default_factory=list)
    per_row: dict[str, list[float | None]] = field(default_factory=dict)
    predictions: list[str] = field(default_factory=list)
    rows_written: int = 0

    @property
    def rows(self) -> int:
        """Rows evaluated."""
        return len(self.ids)

    def write_jsonl(self, path: str | Path) -> Path:
        """Write these results in the format `mixlake eval import` reads (manifest line first)."""
        path = Path(path)
        manifest = {
            "manifest": {
                "run_id": self.target,
                "suite": self.suite,
                "split": self.split,
                "mix": self.mix,
                "mix_checksum": self.mix_checksum,
                "records_version": self.records_version,
                "metrics": self.run_level,
            }
        }
        lines = [orjson.dumps(manifest)]
        for k, i in enumerate(self.ids):
            lines.append(orjson.dumps({"id": i, **{m: v[k] for m, v in self.per_row.items()}}))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path
