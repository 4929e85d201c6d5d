"""`compare` prints a delta and an interval of the same statistic, and says which.

It is honest at small n: a paired t-interval, n shown, n < 30 flagged.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from curation.testing import make_lake
from evals import EvalResult, write_back
from evals.compare import compare
from evals.metrics import bootstrap_ci, paired_interval
from queries import materialize_mix, parse_spec

SPEC = """
name: m
records: latest
seed: 1
total_rows: 16
components:
  - name: all
    sql: source = 'chat'
    weight: 1.0
splits: {train: 0.5, test: 0.5}
format: {template: chat}
"""
CHATS = [
    {
        "messages": [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
    }
    for i in range(16)
]


def test_delta_and_interval_are_one_statistic(tmp_path: Path) -> None:
    """The interval was a bootstrap of the per-row mean beside the token-weighted delta."""
    lake = make_lake(tmp_path, {"chat": CHATS})
    mix = materialize_mix(lake, parse_spec(SPEC))
    ids = mix.rows("test")["id"].to_pylist()[:8]
    a = [2.0] * 8
    b = [1.0, 1.5, 2.5, 1.0, 2.2, 1.1, 0.9, 1.8]
    tokens = [1, 1, 20, 1, 1, 1, 1, 1]  # one long row dominates the token-weighted loss
    for label, losses in (("base_m", a), ("r1234abcd", b)):
        weighted = sum(x * t for x, t in zip(losses, tokens, strict=True)) / sum(tokens)
        write_back(
            lake,
            EvalResult(
                target=label,
                suite="heldout",
                split="test",
                mix="m",
                mix_checksum=mix.checksum,
                records_version=mix.records_version,
                run_level={"loss": weighted},
                columns=(),
                version=None,
                ids=ids,
                per_row={"loss": losses, "perplexity": [math.exp(v) for v in losses]},
            ),
        )
    c = compare(lake, "base_m", "r1234abcd", mix="m", split="test")
    loss = next(m for m in c.metrics if m.metric == "loss")
    deltas = np.array(b) - np.array(a)
    assert loss.ci is not None and loss.ci.n == 8 and loss.ci.method == "t"
    assert loss.delta == pytest.approx(loss.ci.value) == pytest.approx(deltas.mean())
    assert loss.statistic == "per-row mean over 8 paired rows"
    # the run-level (token-weighted) values are kept, and differ in sign here
    assert loss.run_b - loss.run_a > 0 > loss.delta
    half = 2.36462425 * deltas.std(ddof=1) / math.sqrt(8)  # t(0.975, 7)
    assert (loss.ci.low, loss.ci.high) == pytest.approx(
        (deltas.mean() - half, deltas.mean() + half), abs=1e-7
    )
    assert loss.ci.small and c.notes and "n = 8" in c.notes[0]
    bca = compare(lake, "base_m", "r1234abcd", mix="m", split="test", method="bca")
    assert next(m for m in bca.metrics if m.metric == "loss").ci.method == "BCa bootstrap"


def test_the_t_interval_is_wider_than_the_percentile_bootstrap_at_small_n() -> None:
    deltas = [-1.0, -0.5, 0.5, -1.0, 0.2, -0.9, -1.1, -0.2]
    t = paired_interval(deltas)
    pct = bootstrap_ci(deltas, resamples=4000)
    assert t.high - t.low > pct.high - pct.low
    one = paired_interval([0.3])
    assert one.n == 1 and math.isinf(one.low) and math.isinf(one.high)
    assert not paired_interval(list(np.linspace(-1, 1, 40))).small
