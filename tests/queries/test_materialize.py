"""Materialization: tables written, versions, pinning, rollback, gc, reading by row address."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from curation import Lake, gc, rollback
from curation.testing import write_jsonl
from queries import MixSpec, QueryError, list_mixes, materialize_mix, open_mix, parse_spec
from tests.queries.conftest import chat_rows

SPEC = """
name: {name}
seed: {seed}
total_rows: 120
exclude: [is_dup]
components:
  - name: chat
    sql: source = 'chat'
    weight: 0.75
    stratify_by: cluster
  - name: web
    sql: SELECT id FROM records WHERE source = 'web'
    weight: 0.25
    order_by: quality_heuristic_v1 DESC
splits: {{train: 0.8, val: 0.1, test: 0.1}}
format: {{template: {template}}}
"""


def spec(name: str = "m", seed: int = 1, template: str = "text") -> MixSpec:
    return parse_spec(SPEC.format(name=name, seed=seed, template=template), f"{name}.yaml")


def test_materialize_writes_rows_and_mixes_row(shared_lake: Lake) -> None:
    mix = materialize_mix(shared_lake, spec("write"))
    assert mix.is_new and mix.version == 1 and mix.row_count == 120
    rows = mix.rows()
    assert rows.column_names == ["position", "id", "row_addr", "component", "split", "repeat"]
    assert rows.column("position").to_pylist() == list(range(120))
    assert rows.column("component").to_pylist().count("web") == 30
    mixes = shared_lake.dataset("mixes").to_table(filter="name = 'write'").to_pylist()
    assert len(mixes) == 1
    row = mixes[0]
    assert row["checksum"] == mix.checksum and row["records_version"] == mix.records_version
    assert row["rows"] == 120 and row["tokens"] == mix.tokens and row["seed"] == 1
    assert "total_rows: 120" in row["spec"]
    assert shared_lake.tags(include_pins=True)["pin-mix-write-1"] == mix.records_version


def test_order_by_takes_the_top(shared_lake: Lake) -> None:
    mix = materialize_mix(shared_lake, spec("top"))
    web = {r["id"] for r in mix.rows().to_pylist() if r["component"] == "web"}
    best = shared_lake.sql(
        "SELECT id FROM records WHERE source = 'web' AND NOT is_dup "
        "ORDER BY quality_heuristic_v1 DESC, id LIMIT 30"
    )
    assert web == set(best.column("id").to_pylist())


def test_stratify_spreads_over_clusters(shared_lake: Lake) -> None:
    mix = materialize_mix(shared_lake, spec("strat"))
    ids = [r["id"] for r in mix.rows().to_pylist() if r["component"] == "chat"]
    clusters = shared_lake.sql(
        "SELECT cluster, count(*) AS n FROM records WHERE id IN ("
        + ",".join(f"'{i}'" for i in ids)
        + ") GROUP BY cluster"
    ).to_pylist()
    counts = sorted(r["n"] for r in clusters)
    assert len(counts) == 5 and counts[-1] - counts[0] <= 1  # 90 rows over 5 clusters: 18 each


def test_same_spec_same_version_is_a_no_op(shared_lake: Lake) -> None:
    first = materialize_mix(shared_lake, spec("same"))
    again = materialize_mix(shared_lake, spec("same"))
    assert not again.is_new and again.version == 1 and again.checksum == first.checksum
    assert len([m for m in list_mixes(shared_lake) if m.name == "same"]) == 1


def test_changed_spec_makes_new_version_old_stays_readable(shared_lake: Lake) -> None:
    v1 = materialize_mix(shared_lake, spec("evolve", seed=1))
    v2 = materialize_mix(shared_lake, spec("evolve", seed=2))
    assert v2.version == 2 and v2.checksum != v1.checksum
    old = open_mix(shared_lake, "evolve", 1)
    assert old.checksum == v1.checksum
    assert old.rows().column("id").to_pylist() == v1.rows().column("id").to_pylist()
    assert open_mix(shared_lake, "evolve@1").spec.seed == 1
    assert open_mix(shared_lake, "evolve").version == 2
    with pytest.raises(QueryError, match="has no version 7"):
        open_mix(shared_lake, "evolve", 7)
    with pytest.raises(QueryError, match="no mix 'nothing'"):
        open_mix(shared_lake, "nothing")


def test_examples_read_by_row_address_and_render(shared_lake: Lake) -> None:
    mix = materialize_mix(shared_lake, spec("ex"))
    val = mix.rows("val")
    examples = list(mix.examples("val"))
    assert [e["id"] for e in examples] == val.column("id").to_pylist()
    by_id = {
        r["id"]: r
        for r in shared_lake.records(mix.records_version)
        .to_table(columns=["id", "messages", "text"])
        .to_pylist()
    }
    assert examples
    for e in examples:
        assert e["split"] == "val" and set(e) == {"id", "split", "component", "text"}
        assert e["text"] == by_id[e["id"]]["text"]
    resumed = list(itertools.islice(mix.examples("val", start=3), 2))
    assert [e["id"] for e in resumed] == [e["id"] for e in examples[3:5]]
    with pytest.raises(QueryError, match="no split 'dev'"):
        mix.rows("dev")


def test_chat_template_on_text_records_is_a_check_problem(shared_lake: Lake) -> None:
    with pytest.raises(QueryError, match="component 'web': 150 rows have no messages"):
        materialize_mix(shared_lake, spec("textchat", template="chat"))
    assert not shared_lake.has_table("mix__textchat")


def test_rollback_keeps_mix_and_rematerialize_follows(fresh_lake: Lake) -> None:
    lake = fresh_lake
    before = materialize_mix(lake, spec("rb"))
    ids_before = before.rows().column("id").to_pylist()
    pinned = lake.latest_version()
    more = write_jsonl(Path(lake.uri).parent / "more.jsonl", chat_rows(200, "late"))
    lake.ingest([more], source="chat")
    rollback(lake, 2)  # back to the chat-only version: no web rows, no columns
    reopened = open_mix(lake, "rb")
    assert reopened.checksum == before.checksum and reopened.records_version == pinned
    assert [e["id"] for e in reopened.examples()] == ids_before
    with pytest.raises(QueryError, match="unknown column 'is_dup'"):
        materialize_mix(lake, spec("rb"))
    rollback(lake, pinned)
    again = materialize_mix(lake, spec("rb"))
    assert again.version == 2 and again.records_version == lake.latest_version()
    assert again.checksum == before.checksum  # same rows as the pinned version had


def test_gc_keeps_the_pinned_version(fresh_lake: Lake) -> None:
    lake = fresh_lake
    mix = materialize_mix(lake, spec("kept"))
    lake.ingest([write_jsonl(Path(lake.uri).parent / "x.jsonl", chat_rows(5, "gc"))], source="chat")
    gc(lake, 0)
    versions = {int(v["version"]) for v in lake.dataset("records").versions()}
    assert mix.records_version in versions and 2 not in versions
    examples = list(open_mix(lake, "kept").examples("train"))
    assert len(examples) == mix.count("train")


def test_failed_write_leaves_the_lake_as_it_was(
    fresh_lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lance

    lake = fresh_lake
    first = materialize_mix(lake, spec("atomic", seed=1))
    real = lance.write_dataset

    def failing(data, uri, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(uri).endswith("/mixes.lance"):
            raise OSError("disk full")
        return real(data, uri, *args, **kwargs)

    monkeypatch.setattr("queries.materialize.lance.write_dataset", failing)
    with pytest.raises(QueryError, match="writing failed, nothing kept: disk full"):
        materialize_mix(lake, spec("atomic", seed=2))
    with pytest.raises(QueryError, match="writing failed"):
        materialize_mix(lake, spec("brandnew"))
    monkeypatch.undo()
    assert not lake.has_table("mix__brandnew")
    assert [m.mix_version for m in list_mixes(lake) if m.name == "atomic"] == [1]
    latest_rows = lake.dataset("mix__atomic").to_table().sort_by("position")
    assert latest_rows.column("id").to_pylist() == first.rows().column("id").to_pylist()
    assert "pin-mix-atomic-2" not in lake.tags(include_pins=True)


def test_rollback_of_bad_rows_changes_only_the_rematerialized_mix(fresh_lake: Lake) -> None:
    lake = fresh_lake
    clean = lake.latest_version()
    bad = write_jsonl(Path(lake.uri).parent / "bad.jsonl", chat_rows(300, "spam"))
    lake.ingest([bad], source="chat")
    with_bad = materialize_mix(lake, spec("rb2"))
    late = {r["id"] for r in with_bad.rows().to_pylist()} & set(
        lake.sql("SELECT id FROM records WHERE text LIKE 'spam%'").column("id").to_pylist()
    )
    assert late  # the mix took some of the bad rows
    rollback(lake, clean)
    kept = open_mix(lake, "rb2")
    assert kept.checksum == with_bad.checksum
    assert [e["id"] for e in kept.examples()] == with_bad.rows().column("id").to_pylist()
    fixed = materialize_mix(lake, spec("rb2"))
    assert fixed.version == 2 and fixed.checksum != with_bad.checksum
    assert not late & set(fixed.rows().column("id").to_pylist())
