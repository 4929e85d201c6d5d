"""Base vs tuned on two per-row eval columns of the same metric, counted in the metric's direction.

For loss-like metrics (lower is better) a row whose tuned value is below its base value is a
win; for accuracy-like metrics (higher is better) one above it is. Columns of different metrics
(or suites) are never paired. A metric whose direction is unknown gets "up/down" counts, not
wins and losses.
"""

from __future__ import annotations

from typing import Any

from curation import Lake
from curation.sqltext import identifier
from mixlake.web.errors import WebError
from mixlake.web.metrics import EvalColumn, eval_columns
from mixlake.web.records import _jsonable


def columns(lake: Lake) -> list[EvalColumn]:
    """The per-row eval columns of `records` at the latest version."""
    return eval_columns(lake.records().schema)


def default_pair(cols: list[EvalColumn]) -> tuple[str, str]:
    """A base and a tuned column of the same suite and metric ("" when there is no such pair).

    The base is a `base…` target when one exists; the tuned column is another target of the
    same suite/metric.
    """
    by_key: dict[str, list[EvalColumn]] = {}
    for c in cols:
        by_key.setdefault(c.key, []).append(c)
    pairs = [group for group in by_key.values() if len(group) >= 2]
    if not pairs:
        return "", ""
    group = next((g for g in pairs if any(c.target.startswith("base") for c in g)), pairs[0])
    base = next((c for c in group if c.target.startswith("base")), group[0])
    tuned = next(c for c in reversed(group) if c is not base)
    return base.column, tuned.column


def compare(lake: Lake, base: str, tuned: str, k: int = 5) -> dict[str, Any]:
    """Per-row comparison of two eval columns of one metric.

    Gives the means, wins/losses/ties in the metric's direction, and the `k` rows that
    improved and regressed most. Each top row has `delta` (tuned minus base) and `gain` (delta signed so that positive is
    better: minus delta for lower-is-better metrics).

    Raises:
        WebError: an unknown column (404), columns of different metrics, or bad k (400).
    """
    if not 1 <= k <= 50:
        raise WebError(f"k: must be between 1 and 50, got {k}")
    known = {c.column: c for c in columns(lake)}
    for label, col in (("base", base), ("tuned", tuned)):
        if col not in known:
            shown = ", ".join(known) or "none yet"
            raise WebError(f"no eval column {col!r} for {label} (eval columns: {shown})", 404)
    b, t = known[base], known[tuned]
    if b.key != t.key:
        raise WebError(
            f"base is {b.key} and tuned is {t.key}: compare two targets on the same suite and "
            "metric"
        )
    sign = {"lower": -1, "higher": 1, "unknown": 1}[b.direction]
    qb, qt = identifier(base), identifier(tuned)
    both = f"{qb} IS NOT NULL AND {qt} IS NOT NULL"
    gain = f"({sign} * ({qt} - {qb}))"
    summary = lake.sql(
        f"""SELECT count(*) AS n, avg({qb}) AS base_mean, avg({qt}) AS tuned_mean,
                  count(*) FILTER ({gain} > 0) AS better,
                  count(*) FILTER ({gain} < 0) AS worse
           FROM records WHERE {both}"""
    ).to_pylist()[0]

    def top(order: str) -> list[dict[str, Any]]:
        got = lake.sql(
            f"""SELECT id, source, left(text, 120) AS text, {qb} AS base, {qt} AS tuned,
                      {qt} - {qb} AS delta, {gain} AS gain
               FROM records WHERE {both} AND {gain} {">" if order == "DESC" else "<"} 0
               ORDER BY gain {order}, id LIMIT {int(k)}"""
        ).to_pylist()
        return [{key: _jsonable(v) for key, v in row.items()} for row in got]

    n = int(summary["n"] or 0)
    better, worse = int(summary["better"] or 0), int(summary["worse"] or 0)
    return {
        "base": base,
        "tuned": tuned,
        "suite": b.suite,
        "metric": b.metric,
        "direction": b.direction,
        "rows": n,
        "base_mean": _jsonable(summary["base_mean"]),
        "tuned_mean": _jsonable(summary["tuned_mean"]),
        "wins": better,
        "losses": worse,
        "ties": n - better - worse,
        "biggest_wins": top("DESC") if n else [],
        "biggest_losses": top("ASC") if n else [],
    }
