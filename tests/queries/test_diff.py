"""`diff_mixes`: rows added/removed per component and the change in composition."""

from __future__ import annotations

from curation import Lake
from queries import diff_mixes, materialize_mix, parse_spec

SPEC = """
name: {name}
seed: {seed}
total_rows: {total}
components:
  - name: chat
    sql: source = 'chat'
  - name: web
    sql: source = 'web'
    weight: {w}
splits: {{train: 0.8, val: 0.2}}
format: {{template: text}}
"""


def make(lake: Lake, name: str, seed: int = 1, total: int = 100, w: float = 1.0):  # type: ignore[no-untyped-def]
    return materialize_mix(lake, parse_spec(SPEC.format(name=name, seed=seed, total=total, w=w)))


def test_diff_counts_match_the_id_sets(shared_lake: Lake) -> None:
    a = make(shared_lake, "da")
    b = make(shared_lake, "da", seed=2, total=120, w=0.5)
    d = diff_mixes(shared_lake, "da@1", "da")
    assert (d.a, d.b, d.same) == ("da@1", "da@2", False)
    rows_a, rows_b = a.rows().to_pylist(), b.rows().to_pylist()
    ids_a, ids_b = {r["id"] for r in rows_a}, {r["id"] for r in rows_b}
    by = {c.component: c for c in d.components}
    assert [c.component for c in d.components] == ["chat", "web"]
    for comp in ("chat", "web"):
        in_a = {r["id"] for r in rows_a if r["component"] == comp}
        in_b = {r["id"] for r in rows_b if r["component"] == comp}
        assert by[comp].rows_a == len(in_a) and by[comp].rows_b == len(in_b)
        assert by[comp].added == len(in_b - ids_a)
        assert by[comp].removed == len(in_a - ids_b)
    assert (by["chat"].rows_a, by["chat"].rows_b) == (50, 80)
    assert d.common == len(ids_a & ids_b) and d.split_changes == 0
    assert d.added == len(ids_b - ids_a) and d.removed == len(ids_a - ids_b)


def test_diff_of_identical_mixes(shared_lake: Lake) -> None:
    make(shared_lake, "same1")
    make(shared_lake, "same2")
    d = diff_mixes(shared_lake, "same1", "same2")
    assert d.same and d.added == 0 and d.removed == 0 and d.common == 100
