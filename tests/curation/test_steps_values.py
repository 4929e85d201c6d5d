"""`write_values`: the sparse write by id that eval imports and training losses share."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curation import CurationError, Lake
from curation.commit import Entry
from curation.steps.base import column_provenance
from curation.steps.values import write_values
from curation.testing import make_lake


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return make_lake(tmp_path, {"a": [{"text": f"row {i}"} for i in range(6)]})


def _ids(lake: Lake) -> list[str]:
    return sorted(lake.records().to_table(columns=["id"]).column("id").to_pylist())


def _table(ids: list[str], values: list[float | None], label: list[str] | None = None) -> pa.Table:
    columns = {"id": ids, "v_score": pa.array(values, pa.float64())}
    if label is not None:
        columns["v_label"] = pa.array(label, pa.string())
    return pa.table(columns)


def _column(lake: Lake, name: str) -> dict[str, object]:
    t = lake.records().to_table(columns=["id", name])
    return dict(zip(t["id"].to_pylist(), t[name].to_pylist(), strict=True))


def _write(lake: Lake, table: pa.Table, **kw: object) -> object:
    return write_values(lake, table, name="v", params={"source": "test"}, **kw)  # type: ignore[arg-type]


def test_writes_only_named_rows_in_one_commit_with_the_entry(lake: Lake) -> None:
    ids = _ids(lake)
    before = lake.records().version
    entry = Entry("eval", "three values", {"rows": 3})
    report = _write(lake, _table(ids[:3], [1.0, 2.0, 3.0], ["x", "y", "z"]), entry=entry)
    assert report.version == before + 1 == lake.records().version  # type: ignore[attr-defined]
    assert report.rows_written == 3  # type: ignore[attr-defined]
    got = _column(lake, "v_score")
    assert [got[i] for i in ids] == [1.0, 2.0, 3.0, None, None, None]
    assert _column(lake, "v_label")[ids[1]] == "y"
    assert lake.log()[0].message == "three values"
    field = lake.records().schema.field("v_score")
    assert column_provenance(field)["params"] == {"source": "test"}


def test_same_values_again_is_a_no_op_and_new_rows_are_filled(lake: Lake) -> None:
    ids = _ids(lake)
    _write(lake, _table(ids[:2], [1.0, 2.0]))
    version = lake.records().version
    again = _write(lake, _table(ids[:2], [1.0, 2.0]))
    assert again.version is None and again.rows_unchanged == 2  # type: ignore[attr-defined]
    assert lake.records().version == version
    more = _write(lake, _table(ids[:4], [1.0, 2.0, 3.0, 4.0]))
    assert more.rows_written == 2 and more.rows_unchanged == 2  # type: ignore[attr-defined]
    assert [_column(lake, "v_score")[i] for i in ids[:4]] == [1.0, 2.0, 3.0, 4.0]


def test_tolerance_conflict_and_replace_keep_other_rows(lake: Lake) -> None:
    ids = _ids(lake)
    _write(lake, _table(ids[:3], [1.0, 2.0, 3.0]))
    jitter = _write(lake, _table(ids[:1], [1.0 + 1e-5]), tolerance=1e-3)
    assert jitter.version is None  # type: ignore[attr-defined]
    with pytest.raises(CurationError, match="1 rows already have different values in v_score"):
        _write(lake, _table(ids[:1], [1.5]), tolerance=1e-3)
    replaced = _write(lake, _table(ids[:1], [1.5]), replace=True)
    assert replaced.version == lake.records().version  # type: ignore[attr-defined]
    got = _column(lake, "v_score")
    assert [got[i] for i in ids] == [1.5, 2.0, 3.0, None, None, None]


def test_rows_without_a_first_value_are_skipped_and_bad_tables_refused(lake: Lake) -> None:
    ids = _ids(lake)
    report = _write(lake, _table(ids[:2], [None, 2.0]))
    assert report.rows_written == 1  # type: ignore[attr-defined]
    assert _column(lake, "v_score")[ids[0]] is None
    with pytest.raises(CurationError, match="appears more than once"):
        _write(lake, _table([ids[0], ids[0]], [1.0, 1.0]))
    with pytest.raises(CurationError, match="needs an `id` column"):
        _write(lake, pa.table({"id": ids[:1]}))


def test_other_params_are_refused(lake: Lake) -> None:
    ids = _ids(lake)
    _write(lake, _table(ids[:1], [1.0]))
    with pytest.raises(CurationError, match="was made by v with parameters"):
        write_values(lake, _table(ids[1:2], [1.0]), name="v", params={"source": "other"})


def test_a_crashed_write_never_lends_its_values_to_the_next(tmp_path: Path) -> None:
    """The checkpoints of apply are keyed by the rows, not by the values a write carries."""
    from curation.steps.base import apply
    from curation.steps.values import ValuesStep

    lake = make_lake(tmp_path, {s: [{"text": f"{s} {i}"} for i in range(3)] for s in "ab"})
    assert len(lake.records().get_fragments()) == 2
    ids = _ids(lake)

    class Crashing(ValuesStep):
        calls = 0

        def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
            Crashing.calls += 1
            if Crashing.calls > 1:  # the second fragment
                raise RuntimeError("power cut")
            return super().__call__(batch)

    stale = _table(ids, [9.0] * len(ids))
    with pytest.raises(CurationError, match="power cut"):
        apply(Crashing("v", {"source": "test"}, stale), lake, ids=ids)
    assert list((Path(lake.uri) / "_checkpoints").glob("v-v*/fragment-*.json"))  # left behind
    _write(lake, _table(ids, [float(k) for k in range(len(ids))]))
    assert [_column(lake, "v_score")[i] for i in ids] == [float(k) for k in range(len(ids))]


def test_a_crashed_restricted_run_never_lends_its_batches_to_other_rows(tmp_path: Path) -> None:
    """Checkpoints are keyed by the ids a sparse write covers, not only name and params."""
    from curation.steps.base import apply
    from curation.steps.values import ValuesStep

    lake = make_lake(tmp_path, {s: [{"text": f"{s} {i}"} for i in range(3)] for s in "ab"})
    ids = _ids(lake)
    rows = lake.records().to_table(columns=["id", "source"]).to_pylist()
    by_source = {s: sorted(r["id"] for r in rows if r["source"] == s) for s in "ab"}
    first = [by_source["a"][0], by_source["b"][0]]  # one row in each fragment
    second = [i for i in ids if i not in first]
    values = _table(ids, [float(k) for k in range(len(ids))])

    class Crashing(ValuesStep):
        calls = 0

        def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
            Crashing.calls += 1
            if Crashing.calls > 1:  # after the first fragment's batch is checkpointed
                raise RuntimeError("power cut")
            return super().__call__(batch)

    with pytest.raises(CurationError, match="power cut"):
        apply(Crashing("v", {"source": "test"}, values), lake, ids=first)
    assert list((Path(lake.uri) / "_checkpoints").glob("v-v*/fragment-*.json"))  # left behind
    report = apply(ValuesStep("v", {"source": "test"}, values), lake, ids=second)
    written = _column(lake, "v_score")
    assert report.rows_computed == len(second)
    assert {i: written[i] for i in second} == {i: float(ids.index(i)) for i in second}
    assert all(written[i] is None for i in first)  # the crashed run's rows were not lent
