"""Hypothesis properties of mix selection (read-only: `select_mix` writes nothing)."""

from __future__ import annotations

from collections import Counter

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from curation import Lake
from queries import parse_spec
from queries.plan import select_mix
from queries.sampling import assign_splits

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

SPLITS = st.sampled_from(
    ["{train: 1.0}", "{train: 0.8, val: 0.2}", "{train: 0.9, val: 0.05, test: 0.05}"]
)


def make_spec(seed: int, total: int, w_web: float, repeats: int, splits: str, strat: bool) -> str:
    return f"""
name: prop
seed: {seed}
total_rows: {total}
exclude: [is_dup]
components:
  - name: chat
    sql: source = 'chat'
    weight: 1.0
    {"stratify_by: cluster" if strat else "order_by: n_tokens DESC"}
  - name: web
    sql: source = 'web'
    weight: {w_web}
    max_repeats: {repeats}
splits: {splits}
format: {{template: text}}
"""


spec_args = st.tuples(
    st.integers(0, 2**31),
    st.integers(1, 450),
    st.floats(0.05, 3.0),
    st.integers(1, 4),
    SPLITS,
    st.booleans(),
)


@SETTINGS
@given(args=spec_args)
def test_same_spec_same_version_same_checksum(shared_lake: Lake, args: tuple) -> None:
    spec = parse_spec(make_spec(*args))
    plan_a, sel_a = select_mix(shared_lake, spec)
    plan_b, sel_b = select_mix(shared_lake, parse_spec(make_spec(*args) + "\n# reformatted\n"))
    assert plan_a.problems == plan_b.problems
    if sel_a is not None and sel_b is not None:
        assert sel_a.checksum() == sel_b.checksum()
        assert sel_a.ids.to_pylist() == sel_b.ids.to_pylist()


@SETTINGS
@given(args=spec_args)
def test_weights_met_or_reason_given(shared_lake: Lake, args: tuple) -> None:
    _seed, total, w_web, *_ = args
    plan, sel = select_mix(shared_lake, parse_spec(make_spec(*args)))
    shares = {"chat": 1.0 / (1.0 + w_web), "web": w_web / (1.0 + w_web)}
    if sel is None:
        assert any("needs" in p and "max_repeats" in p for p in plan.problems), plan.problems
        return
    assert plan.rows == total
    for c in plan.components:
        assert abs(c.taken - shares[c.name] * total) <= 1 or c.note, c


@SETTINGS
@given(args=spec_args)
def test_no_id_in_two_splits_and_repeats_bounded(shared_lake: Lake, args: tuple) -> None:
    _, sel = select_mix(shared_lake, parse_spec(make_spec(*args)))
    if sel is None:
        return
    split_of: dict[str, str] = {}
    for i, s in zip(sel.ids.to_pylist(), sel.split.to_pylist(), strict=True):
        assert split_of.setdefault(i, s) == s
    counts = Counter(sel.ids.to_pylist())
    repeats = {"chat": 1, "web": args[3]}
    for i, comp in zip(sel.ids.to_pylist(), sel.component.to_pylist(), strict=True):
        assert counts[i] <= repeats[comp]
    assert int(sel.repeat.max()) < max(repeats.values())


@settings(max_examples=30, deadline=None)
@given(
    ids=st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), min_size=1, max_size=50),
    more=st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=50),
)
def test_splits_stable_across_mixes(ids: list[str], more: list[str]) -> None:
    import pyarrow as pa

    fracs = (("train", 0.8), ("val", 0.1), ("test", 0.1))
    alone = assign_splits(pa.array(ids), fracs).to_pylist()
    within = assign_splits(pa.array(more + ids[::-1]), fracs).to_pylist()[len(more) :][::-1]
    assert alone == within
