"""Compare two eval targets.

Metrics side by side with a paired interval, the rows with the biggest wins and losses, and a
breakdown by source, cluster and quality.

A metric with per-row values is compared on the rows both targets were evaluated on: A, B and
the delta are per-row means over those n rows, and the interval (a paired t-interval by
default, BCa bootstrap on request) is of that same per-row mean difference. The run-level
value (for heldout loss the token-weighted mean) is kept beside it as `run_a`/`run_b`, without
an interval: per-row token counts are not stored, so no interval of it can be computed. Fewer
than 30 paired rows is flagged (`Interval.small`, `Comparison.notes`).

Everything is read from the lake: run-level metrics from `evals`, per-row metrics from the
`eval_<target>_<suite>_<metric>` columns of `records`, and the rows each evaluation covered from
`eval_ids` — a mix split is compared on the ids both targets were evaluated on, each once.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curation.lake import Lake
from curation.sqltext import equals, identifier
from evals.data import registered_eval_sets
from evals.errors import EvalError
from evals.evaluated_ids import EvalKey, read_evaluated_ids
from evals.metrics import SMALL_N, Interval, paired_interval
from evals.registry import SUITES, get_suite
from evals.targets import resolve_target
from evals.writeback import column_name, read_evals

__all__ = ["Comparison", "GroupRow", "MetricRow", "RowDiff", "compare"]

QUALITY = "quality_heuristic_v1"
CLUSTER = "cluster"


@dataclass(frozen=True)
class MetricRow:
    """One metric of A and B.

    With per-row values (`ci` set), `a` and `b` are the per-row means over the `ci.n` rows both
    were evaluated on and `ci` is the interval of their difference B − A: the delta and its
    interval are one statistic (`statistic`). `run_a`/`run_b` are the run-level values as the
    evaluations wrote them (token-weighted for heldout loss). Without per-row values `a`, `b`
    are those run-level values and `ci` is None.
    """

    suite: str
    mix: str | None
    split: str | None
    metric: str
    a: float
    b: float
    ci: Interval | None
    run_a: float | None = None
    run_b: float | None = None

    @property
    def delta(self) -> float:
        """B − A."""
        return self.b - self.a

    @property
    def statistic(self) -> str:
        """What `a`, `b`, `delta` (and `ci`) are."""
        return f"per-row mean over {self.ci.n} paired rows" if self.ci else "run-level value"


@dataclass(frozen=True)
class RowDiff:
    """One row evaluated by both targets."""

    id: str
    source: str
    text: str
    a: float
    b: float

    @property
    def delta(self) -> float:
        """B − A."""
        return self.b - self.a


@dataclass(frozen=True)
class GroupRow:
    """Per-row metric means of A and B within one group (a source, cluster or quality bucket)."""

    by: str
    group: str
    rows: int
    a: float
    b: float
    b_wins: int

    @property
    def delta(self) -> float:
        """Mean B − mean A."""
        return self.b - self.a


@dataclass
class Comparison:
    """The result of `compare`: labels, metrics, the per-row metric used for rows and groups."""

    a: str
    b: str
    suite: str
    metric: str
    lower_is_better: bool
    metrics: list[MetricRow] = field(default_factory=list)
    wins: list[RowDiff] = field(default_factory=list)
    losses: list[RowDiff] = field(default_factory=list)
    breakdown: list[GroupRow] = field(default_factory=list)
    deltas: list[float] = field(default_factory=list)
    method: str = "t"
    notes: list[str] = field(default_factory=list)
    """Warnings to print with the table (e.g. intervals over fewer than 30 rows)."""


def compare(
    lake: Lake,
    a: str,
    b: str,
    suite: str | None = None,
    *,
    metric: str | None = None,
    mix: str | None = None,
    split: str = "test",
    top: int = 5,
    resamples: int = 2000,
    seed: int = 0,
    method: str = "t",
) -> Comparison:
    """Compare targets A and B (run ids, `base_<model>` labels, or model names).

    Args:
        lake: the lake.
        a: the reference target.
        b: the target compared with it (deltas are B − A).
        suite: restrict to one suite (default: the first suite both have per-row columns for).
        metric: the per-row metric for wins/losses and the breakdown (default: the suite's first).
        mix: restrict to the rows and results of this mix (its `split`), or `eval-set:NAME`.
        split: the mix split used with `mix`.
        top: rows shown as biggest wins and losses.
        resamples: bootstrap resamples (method `bca`).
        seed: bootstrap seed (method `bca`).
        method: the paired interval: `t` (default; honest at small n) or `bca` (BCa
            bootstrap).

    Raises:
        EvalError: a target with no eval results, the same target twice, no suite evaluated
            for both, or an unknown method.
    """
    if method not in ("t", "bca"):
        raise EvalError(f"unknown interval method {method!r}; give t or bca")
    la, lb = _label(lake, a), _label(lake, b)
    if la == lb:
        raise EvalError(f"{a} and {b} are both {la}: compare two different targets")
    names = set(lake.records().schema.names)
    suites = [s for s in SUITES if _has(names, la, s) and _has(names, lb, s)]
    if suite is not None:
        get_suite(suite)
        if suite not in suites:
            raise EvalError(
                f"suite {suite} has no per-row results for both {la} and {lb}; evaluate them "
                f"with `mixlake eval {la} --suite {suite}` first"
            )
        suites = [suite]
    if not suites:
        raise EvalError(f"no suite was evaluated for both {la} and {lb}; see `mixlake evals`")
    the_suite = get_suite(suites[0])
    metric = metric or the_suite.metrics[0]
    if metric not in the_suite.metrics:
        raise EvalError(
            f"suite {the_suite.name} has no per-row metric {metric!r} "
            f"(it has {', '.join(the_suite.metrics)})"
        )
    scope: Set[str] | None = _scope_ids(lake, mix, split)
    out = Comparison(
        la, lb, the_suite.name, metric, metric in the_suite.lower_is_better, method=method
    )
    mix_split = split if mix and not mix.startswith("eval-set:") else None
    latest = _latest_results(lake, la, lb, suites, mix, mix_split)
    evaluated = _evaluated_ids(latest, read_evaluated_ids(lake, [la, lb]))
    out.metrics = _metric_rows(lake, la, lb, latest, evaluated, scope, resamples, seed, method)
    small = sorted({m.ci.n for m in out.metrics if m.ci is not None and m.ci.small})
    if small:
        out.notes.append(
            f"n = {', '.join(map(str, small))} paired rows (< {SMALL_N}): the intervals are a "
            "rough guide; evaluate more rows (--limit) before trusting a difference"
        )
    where = f" on {mix}/{mix_split}" if mix_split else f" on {mix}" if mix else ""
    ids_a = evaluated.get((la, the_suite.name, mix, mix_split))
    ids_b = evaluated.get((lb, the_suite.name, mix, mix_split))
    if mix is not None and ids_a is not None and ids_b is not None:
        # the rows both were evaluated on, not every row of the split that has values
        scope = ids_a & ids_b
        if not scope:
            raise EvalError(
                f"{la} and {lb} share no evaluated rows{where} ({len(ids_a)} and {len(ids_b)} "
                "rows evaluated); evaluate both on the same rows (the same --mix, --split and "
                "--limit)"
            )
    rows = _paired(lake, la, lb, the_suite.name, metric, names, scope)
    if not rows:
        raise EvalError(
            f"{la} and {lb} share no evaluated rows with {the_suite.name}/{metric}{where}; "
            "evaluate both on the same rows (the same --mix, --split and --limit)"
        )
    sign = -1.0 if out.lower_is_better else 1.0
    ranked = sorted(rows, key=lambda r: sign * (r["b"] - r["a"]))
    out.wins = [_diff(r) for r in reversed(ranked[-top:]) if sign * (r["b"] - r["a"]) > 0]
    out.losses = [_diff(r) for r in ranked[:top] if sign * (r["b"] - r["a"]) < 0]
    out.deltas = [r["b"] - r["a"] for r in rows]
    out.breakdown = _breakdown(rows, sign)
    return out


def _label(lake: Lake, target: str) -> str:
    evaluated = set(read_evals(lake).column("run_id").to_pylist())
    if target in evaluated:
        return target
    names = lake.records().schema.names
    if any(n.startswith(f"eval_{target}_") for n in names):
        return target
    label = resolve_target(lake, target).label
    if label not in evaluated and not any(n.startswith(f"eval_{label}_") for n in names):
        raise EvalError(f"{target} has no eval results yet; run `mixlake eval {target} --suite …`")
    return label


def _has(names: set[str], label: str, suite: str) -> bool:
    return column_name(label, suite, get_suite(suite).metrics[0]) in names


def _scope_ids(lake: Lake, mix: str | None, split: str) -> set[str] | None:
    if mix is None:
        return None
    if mix.startswith("eval-set:"):
        name = mix.removeprefix("eval-set:")
        source = registered_eval_sets(lake).get(name, name)
        table = lake.records().to_table(columns=["id"], filter=equals("source", source))
        return set(table["id"].to_pylist())
    from queries import open_mix
    from queries.errors import QueryError

    try:
        return set(open_mix(lake, mix).rows(split)["id"].to_pylist())
    except QueryError as e:
        raise EvalError(f"--mix {mix}: {e}") from None


Result = tuple[float, dt.datetime]
ResultKey = tuple[str, str, str | None, str | None, str]
"""(run_id, suite, mix, split, metric)."""


def _latest_results(
    lake: Lake, la: str, lb: str, suites: list[str], mix: str | None, split: str | None
) -> dict[ResultKey, Result]:
    """The latest value (and when it was written) of each run-level result of A and B."""
    latest: dict[ResultKey, Result] = {}
    for r in read_evals(lake).to_pylist():
        wanted = r["run_id"] in (la, lb) and r["suite"] in suites
        if wanted and (mix is None or r["mix"] == mix) and (split is None or r["split"] == split):
            key = (r["run_id"], r["suite"], r["mix"], r["split"], r["metric"])
            latest[key] = (r["value"], r["at"])
    return latest


def _evaluated_ids(
    latest: dict[ResultKey, Result], recorded: dict[EvalKey, frozenset[str]]
) -> dict[tuple[str, str, str | None, str | None], frozenset[str]]:
    """(run_id, suite, mix, split) → the ids its latest evaluation covered.

    A key is absent when its evaluation was written before ids were recorded.
    """
    when: dict[tuple[str, str, str | None, str | None], dt.datetime] = {}
    for (run, suite, mix, split, _), (_, at) in latest.items():
        key = (run, suite, mix, split)
        when[key] = max(at, when.get(key, at))
    return {k: recorded[(*k, at)] for k, at in when.items() if (*k, at) in recorded}


def _metric_rows(
    lake: Lake,
    la: str,
    lb: str,
    latest: dict[ResultKey, Result],
    evaluated: dict[tuple[str, str, str | None, str | None], frozenset[str]],
    scope: Set[str] | None,
    resamples: int,
    seed: int,
    method: str,
) -> list[MetricRow]:
    names = set(lake.records().schema.names)
    out = []
    for (run, suite, m, s, metric), (a_value, _) in sorted(
        latest.items(), key=lambda kv: str(kv[0])
    ):
        if run != la or (lb, suite, m, s, metric) not in latest:
            continue
        ci = None
        b_value = latest[(lb, suite, m, s, metric)][0]
        a_mean, b_mean = a_value, b_value
        if metric in get_suite(suite).metrics:
            ids_a, ids_b = evaluated.get((la, suite, m, s)), evaluated.get((lb, suite, m, s))
            if ids_a is not None and ids_b is not None:
                ids: Set[str] | None = ids_a & ids_b
            else:  # results from before ids were recorded: every row of the mix split
                ids = scope if scope is not None else _mix_ids(lake, m, s)
            pairs = _paired(lake, la, lb, suite, metric, names, ids)
            if pairs:
                deltas = [p["b"] - p["a"] for p in pairs]
                ci = paired_interval(deltas, method=method, resamples=resamples, seed=seed)
                a_mean = float(np.mean([p["a"] for p in pairs]))
                b_mean = a_mean + ci.value
        out.append(MetricRow(suite, m, s, metric, a_mean, b_mean, ci, a_value, b_value))
    return out


def _mix_ids(lake: Lake, mix: str | None, split: str | None) -> set[str] | None:
    if mix is None:
        return None
    try:
        return _scope_ids(lake, mix, split or "test")
    except EvalError:
        return None  # the mix was removed since: pair every row instead


def _paired(
    lake: Lake,
    la: str,
    lb: str,
    suite: str,
    metric: str,
    names: set[str],
    scope: Set[str] | None,
) -> list[dict[str, Any]]:
    ca, cb = column_name(la, suite, metric), column_name(lb, suite, metric)
    extra = [c for c in (CLUSTER, QUALITY) if c in names]
    table = lake.records().to_table(
        columns=["id", "source", "text", ca, cb, *extra],
        filter=f"{identifier(ca)} IS NOT NULL AND {identifier(cb)} IS NOT NULL",
    )
    rows = [
        {**r, "a": r[ca], "b": r[cb]}
        for r in table.to_pylist()
        if scope is None or r["id"] in scope
    ]
    return rows


def _diff(r: dict[str, Any]) -> RowDiff:
    return RowDiff(r["id"], r["source"], str(r["text"])[:200], float(r["a"]), float(r["b"]))


def _breakdown(rows: list[dict[str, Any]], sign: float) -> list[GroupRow]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[("source", str(r["source"]))].append(r)
        if r.get(CLUSTER) is not None:
            groups[("cluster", str(r[CLUSTER]))].append(r)
        if r.get(QUALITY) is not None:
            groups[("quality", _bucket(float(r[QUALITY])))].append(r)
    out = []
    for (by, group), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        a = float(np.mean([m["a"] for m in members]))
        b = float(np.mean([m["b"] for m in members]))
        wins = sum(1 for m in members if sign * (m["b"] - m["a"]) > 0)
        out.append(GroupRow(by, group, len(members), a, b, wins))
    return out


def _bucket(q: float) -> str:
    low = min(int(max(q, 0.0) * 4), 3) / 4
    return f"{low:.2f}–{low + 0.25:.2f}"
