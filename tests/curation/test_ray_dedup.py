"""Near and exact dedup group through map → hash partitions → reduce.

The groups must be exactly those of datasketch's own MinHashLSH run in one process, for any
partition count.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curation.steps.dedup import ExactDedup, NearDedup, dedup
from curation.steps.dedup_base import DedupStep, bucket_map, bucket_reduce, merge_components
from curation.testing import make_lake
from tests.curation.ray_cluster import corpus


def _groups(groups: list[list[tuple[str, float]]]) -> set[frozenset[str]]:
    return {frozenset(i for i, _ in g) for g in groups}


@pytest.fixture(scope="module")
def dup_lake(tmp_path_factory: pytest.TempPathFactory):
    rows = corpus(3000, seed=3)
    parts = {f"part{k}": rows[k::3] for k in range(3)}  # three ingests: three fragments
    return make_lake(tmp_path_factory.mktemp("dups"), parts)


@pytest.mark.parametrize("step", [NearDedup(), NearDedup(threshold=0.5), ExactDedup()])
def test_bucketed_groups_equal_the_in_process_reference(dup_lake, step) -> None:
    ds = dup_lake.dataset("records")
    assert len(ds.get_fragments()) == 3
    found, covered = step.find_groups(ds, None)
    reference, _ = DedupStep.find_groups(step, ds, None)  # datasketch LSH / text dict
    assert covered is None
    assert len(reference) > 20  # the corpus has duplicates to find
    assert _groups(found) == _groups(reference)


@pytest.mark.parametrize("parts", [2, 5])
@pytest.mark.parametrize("method", ["near", "exact"])
def test_any_partition_count_gives_the_same_components(dup_lake, parts: int, method: str) -> None:
    step = NearDedup() if method == "near" else ExactDedup()
    spec = step.spec()
    ds = dup_lake.dataset("records")
    tables = [f.to_table(columns=["id", "text"], with_row_address=True) for f in ds.get_fragments()]
    one = merge_components([bucket_reduce(spec, [bucket_map(spec, t, 1)[0] for t in tables])])
    mapped = [bucket_map(spec, t, parts) for t in tables]
    reduced = [bucket_reduce(spec, [m[p] for m in mapped]) for p in range(parts)]
    assert sum(r.num_rows for r in reduced) >= sum(len(g) for g in one)
    assert _groups(merge_components(reduced)) == _groups(one)
    assert len(one) > 20


def test_where_limits_grouping_and_marks(tmp_path: Path) -> None:
    rows = [{"text": "same words in this row here"}, {"text": "Same words, in this row here!"}]
    rows += [{"text": "SAME words in this row here"}]
    lake = make_lake(tmp_path, {"a": rows[:2], "b": rows[2:]})
    report = dedup(lake, "exact", where="source = 'a'")
    assert (report.groups, report.rows_marked) == (1, 1)
    marks = lake.dataset("records").to_table(columns=["source", "is_dup_exact"]).to_pylist()
    assert sorted((m["source"], m["is_dup_exact"]) for m in marks) == [
        ("a", False),
        ("a", True),
        ("b", None),
    ]


def test_empty_partitions_reduce_to_nothing() -> None:
    spec = NearDedup().spec()
    empty = pa.table(
        {
            "id": pa.array([], pa.string()),
            "text": pa.array([], pa.string()),
            "_rowaddr": pa.array([], pa.uint64()),
        }
    )
    out = bucket_reduce(spec, [bucket_map(spec, empty, 3)[1]])
    assert out.num_rows == 0
    assert merge_components([out]) == []
