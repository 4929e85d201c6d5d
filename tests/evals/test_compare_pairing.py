"""`compare` pairs exactly the rows both targets were evaluated on, once per record id.

Two mixes over the same source share their test ids (a record's split is a hash of its id), and
the per-row column `eval_<target>_<suite>_<metric>` holds one value per record whichever mix it
was evaluated on. So `--limit 8` on mix A's test split must pair those 8 rows, not every row of
the split that some other evaluation (of mix B) also filled in.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation import Lake
from curation.testing import make_lake
from evals import EvalError, EvalResult, write_back
from evals.compare import compare
from queries import MaterializedMix, materialize_mix, parse_spec

LIMIT = 4
CHATS = [
    {
        "messages": [
            {"role": "user", "content": f"question number {i}"},
            {"role": "assistant", "content": f"answer number {i}"},
        ]
    }
    for i in range(40)
]


def _spec(name: str, seed: int) -> str:
    return f"""
name: {name}
records: latest
seed: {seed}
total_rows: 40
components:
  - name: all
    sql: source = 'chat'
    weight: 1.0
splits: {{train: 0.5, test: 0.5}}
format: {{template: chat}}
"""


def _evaluated(label: str, mix: MaterializedMix, ids: list[str], losses: list[float]) -> None:
    """Write back what `mixlake eval LABEL --mix MIX --limit N` would (without a model)."""
    result = EvalResult(
        target=label,
        suite="heldout",
        split="test",
        mix=mix.name,
        mix_checksum=mix.checksum,
        records_version=mix.records_version,
        run_level={
            "loss": sum(losses) / len(losses),
            "perplexity": 2.0 ** (sum(losses) / len(losses)),
        },
        columns=(),
        version=None,
        ids=ids,
        per_row={"loss": losses, "perplexity": [2.0**v for v in losses]},
    )
    write_back(mix.lake, result)


@pytest.fixture
def two_mixes(tmp_path: Path) -> tuple[Lake, MaterializedMix, MaterializedMix]:
    lake = make_lake(tmp_path, {"chat": CHATS})
    curated = materialize_mix(lake, parse_spec(_spec("curated", 1)))
    shuffled = materialize_mix(lake, parse_spec(_spec("shuffled", 2)))
    return lake, curated, shuffled


def test_a_limited_eval_pairs_its_own_rows_not_every_row_of_the_split(
    two_mixes: tuple[Lake, MaterializedMix, MaterializedMix],
) -> None:
    lake, curated, shuffled = two_mixes
    first = {m.name: m.rows("test")["id"].to_pylist()[:LIMIT] for m in (curated, shuffled)}
    # the demo's situation: a row of curated's test split past the limit was evaluated (for
    # both targets) as part of shuffled's first rows
    assert set(first["shuffled"]) - set(first["curated"])
    assert set(first["shuffled"]) & set(curated.rows("test")["id"].to_pylist()) - set(
        first["curated"]
    )

    def tuned(i: str) -> float:  # B is better on curated's rows, worse on the others
        return 1.0 if i in first["curated"] else 3.0

    for mix in (curated, shuffled):
        ids = first[mix.name]
        _evaluated("base_m", mix, ids, [2.0] * len(ids))
        _evaluated("r1234abcd", mix, ids, [tuned(i) for i in ids])

    c = compare(lake, "base_m", "r1234abcd", mix="curated", resamples=200)
    loss = next(m for m in c.metrics if m.metric == "loss")
    assert loss.ci is not None and (loss.ci.n, loss.ci.value) == (LIMIT, loss.delta) == (LIMIT, -1)
    assert sorted(c.deltas) == [-1.0] * LIMIT
    assert {w.id for w in c.wins} == set(first["curated"]) and not c.losses

    everything = compare(lake, "base_m", "r1234abcd", resamples=200)
    n = {(m.mix, m.metric): m.ci.n for m in everything.metrics if m.ci is not None}
    assert n == {(mix, metric): LIMIT for mix in first for metric in ("loss", "perplexity")}
    # without --mix every row both have is paired, each record id once
    assert len(everything.deltas) == len(set(first["curated"]) | set(first["shuffled"]))

    # results written before ids were recorded: scoped to the mix's split as before
    shutil.rmtree(lake.table_uri("eval_ids"))
    old = compare(lake, "base_m", "r1234abcd", mix="curated", resamples=200)
    assert len(old.deltas) > LIMIT


def test_two_targets_evaluated_on_disjoint_rows_is_a_one_line_error(
    two_mixes: tuple[Lake, MaterializedMix, MaterializedMix],
) -> None:
    lake, curated, _ = two_mixes
    test_ids = curated.rows("test")["id"].to_pylist()
    _evaluated("base_m", curated, test_ids[:LIMIT], [2.0] * LIMIT)
    _evaluated("r1234abcd", curated, test_ids[LIMIT : 2 * LIMIT], [1.0] * LIMIT)
    with pytest.raises(EvalError, match="share no evaluated rows on curated/test") as e:
        compare(lake, "base_m", "r1234abcd", mix="curated")
    assert "\n" not in str(e.value)
    with pytest.raises(EvalError, match="share no evaluated rows"):
        compare(lake, "base_m", "r1234abcd")


def test_the_same_values_on_other_rows_are_recorded_again(
    two_mixes: tuple[Lake, MaterializedMix, MaterializedMix],
) -> None:
    lake, curated, _ = two_mixes
    test_ids = curated.rows("test")["id"].to_pylist()
    _evaluated("base_m", curated, test_ids[:LIMIT], [2.0] * LIMIT)
    _evaluated("r1234abcd", curated, test_ids[:LIMIT], [1.0] * LIMIT)
    # a larger --limit with the same run-level loss: a new evaluation, not a no-op
    _evaluated("base_m", curated, test_ids[: 2 * LIMIT], [2.0] * 2 * LIMIT)
    _evaluated("r1234abcd", curated, test_ids[: 2 * LIMIT], [1.0] * 2 * LIMIT)
    c = compare(lake, "base_m", "r1234abcd", mix="curated", resamples=200)
    assert len(c.deltas) == 2 * LIMIT
    assert {m.ci.n for m in c.metrics if m.ci is not None} == {2 * LIMIT}


def test_a_target_compared_with_itself_is_a_one_line_error(
    two_mixes: tuple[Lake, MaterializedMix, MaterializedMix],
) -> None:
    lake, curated, _ = two_mixes
    test_ids = curated.rows("test")["id"].to_pylist()
    _evaluated("base_m", curated, test_ids[:LIMIT], [2.0] * LIMIT)
    with pytest.raises(EvalError, match="compare two different targets") as e:
        compare(lake, "base_m", "base_m", mix="curated")
    assert "\n" not in str(e.value)
