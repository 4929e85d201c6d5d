"""Eval metric columns: which metric a column holds, and which direction is better.

`DIRECTIONS` is the one table of metric directions the UI uses (eval compare, the record
page, facets). A per-row eval column is `eval_<target>_<suite>_<metric>`; the target and the
suite may themselves contain `_`, so the parts come from the column's provenance (`target`,
`suite`, `metrics` params written by `evals.writeback`) when it has them, else from the longest
known metric name the column ends with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from curation.steps import column_provenance

Direction = Literal["lower", "higher", "unknown"]

# metric name → which way is better. Prefix matches (`rouge` covers `rouge_l`, `rougeL`).
DIRECTIONS: dict[str, Direction] = {
    "loss": "lower",
    "perplexity": "lower",
    "ppl": "lower",
    "mae": "lower",
    "mse": "lower",
    "rmse": "lower",
    "abs_error": "lower",
    "error": "lower",
    "wer": "lower",
    "cer": "lower",
    "train_loss": "lower",
    "accuracy": "higher",
    "acc": "higher",
    "exact_match": "higher",
    "em": "higher",
    "bleu": "higher",
    "chrf": "higher",
    "rouge": "higher",
    "f1": "higher",
    "pass": "higher",
    "hit": "higher",
    "judge": "higher",
    "score": "higher",
}


def direction(metric: str) -> Direction:
    """Whether a lower or a higher value of `metric` is better ("unknown" if not in the table).

    Example:
        >>> direction("loss"), direction("rouge_l"), direction("pass@1"), direction("tokens")
        ('lower', 'higher', 'higher', 'unknown')
    """
    name = metric.lower()
    if name in DIRECTIONS:
        return DIRECTIONS[name]
    for key in sorted(DIRECTIONS, key=len, reverse=True):
        if name.startswith(key):
            return DIRECTIONS[key]
    return "unknown"


@dataclass(frozen=True)
class EvalColumn:
    """One per-row eval column split into its parts."""

    column: str
    target: str
    suite: str
    metric: str

    @property
    def direction(self) -> Direction:
        """Which way is better for this column's metric."""
        return direction(self.metric)

    @property
    def key(self) -> str:
        """`suite/metric`: two columns are comparable only when their keys are equal."""
        return f"{self.suite}/{self.metric}"

    def as_json(self) -> dict[str, Any]:
        """The parts and the direction as a JSON-ready dict."""
        return {
            "column": self.column,
            "target": self.target,
            "suite": self.suite,
            "metric": self.metric,
            "direction": self.direction,
        }


def parse_eval_column(field: pa.Field) -> EvalColumn | None:
    """The parts of an `eval_…` column, or None for any other column."""
    name = field.name
    if not name.startswith("eval_"):
        return None
    params = column_provenance(field).get("params") or {}
    target, suite = params.get("target"), params.get("suite")
    if isinstance(target, str) and isinstance(suite, str):
        prefix = f"eval_{target}_{suite}_"
        if name.startswith(prefix) and len(name) > len(prefix):
            return EvalColumn(name, target, suite, name[len(prefix) :])
    rest = name[len("eval_") :]
    metric = _known_suffix(rest) or rest.rsplit("_", 1)[-1]
    head = rest[: -len(metric)].rstrip("_")
    target_part, _, suite_part = head.rpartition("_")
    return EvalColumn(name, target_part or head, suite_part if target_part else "", metric)


def _known_suffix(rest: str) -> str | None:
    """The metric `rest` ends with.

    The longest known name it ends with exactly (`abs_error`, `loss`), else a known name
    plus one token (`rouge_l`, `pass_1`).
    """
    lowered = rest.lower()
    exact = [k for k in DIRECTIONS if lowered.endswith("_" + k)]
    if exact:
        key = max(exact, key=len)
        return rest[len(rest) - len(key) :]
    best: tuple[int, str] = (-1, "")
    for key in DIRECTIONS:
        i = lowered.rfind("_" + key)
        if i >= 0 and _TAIL.match(rest[i + 1 + len(key) :]) and i > best[0]:
            best = (i, rest[i + 1 :])
    return best[1] or None


_TAIL = re.compile(r"^(_?[A-Za-z0-9@.]+)?$")


def eval_columns(schema: pa.Schema) -> list[EvalColumn]:
    """Every numeric per-row eval column of a `records` schema, in schema order."""
    out = []
    for f in schema:
        if pa.types.is_integer(f.type) or pa.types.is_floating(f.type):
            got = parse_eval_column(f)
            if got is not None:
                out.append(got)
    return out
