"""k-means clusters: the column, the clusters table, seeds, filling new rows, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import CurationError
from curation.steps.cluster import cluster
from curation.steps.embed import embed
from curation.testing import FakeEmbedder, make_lake

TOPICS = {
    "cats": "cat kitten purr whiskers meow",
    "space": "rocket orbit planet galaxy star",
    "food": "pasta garlic olive tomato basil",
}
ROWS = [
    {"text": f"{topic} note {i} " + " ".join(words.split()[(i + j) % 5] for j in range(4))}
    for i in range(20)
    for topic, words in TOPICS.items()
]


def topic_of(text: str) -> str:
    return text.split()[0]


def test_clusters_follow_topics_and_table(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS})
    embed(lake, FakeEmbedder(32))
    report = cluster(lake, 3, seed=1)
    assert report.rows == 60 and sorted(c.size for c in report.clusters) == [20, 20, 20]
    rows = lake.sql("SELECT text, cluster FROM records").to_pylist()
    by_cluster: dict[int, set[str]] = {}
    for r in rows:
        by_cluster.setdefault(r["cluster"], set()).add(topic_of(r["text"]))
    assert all(len(topics) == 1 for topics in by_cluster.values())
    for info in report.clusters:
        topic = next(iter(by_cluster[info.cluster]))
        assert set(TOPICS[topic].split()) & set(info.top_terms)
        assert topic_of(info.snippet) == topic
    table = lake.dataset("clusters").to_table()
    assert table.num_rows == 3 and set(table.column_names) >= {
        "cluster",
        "size",
        "top_terms",
        "representative",
    }


def test_same_seed_same_labels_and_noop(tmp_path: Path) -> None:
    a = make_lake(tmp_path / "a", {"s": ROWS})
    b = make_lake(tmp_path / "b", {"s": ROWS})
    for lake in (a, b):
        embed(lake, FakeEmbedder(32))
        cluster(lake, 4, seed=7)
    q = "SELECT id, cluster FROM records ORDER BY id"
    assert a.sql(q).to_pylist() == b.sql(q).to_pylist()
    version = a.latest_version()
    assert cluster(a, 4, seed=7).step.no_op and a.latest_version() == version
    with pytest.raises(CurationError, match="--replace"):
        cluster(a, 5, seed=7)
    assert len(cluster(a, 5, seed=7, replace=True).clusters) == 5


def test_new_rows_go_to_stored_centroids(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS})
    embed(lake, FakeEmbedder(32), where="text LIKE '%note 1%'")  # notes 1, 10-19: 11 per topic
    first = cluster(lake, 3, seed=1)
    assert first.rows == 33
    before = {
        r["id"]: r["cluster"]
        for r in lake.sql("SELECT id, cluster FROM records WHERE cluster IS NOT NULL").to_pylist()
    }
    embed(lake, FakeEmbedder(32))
    second = cluster(lake, 3, seed=1)
    assert second.step.rows_computed == 27 and second.rows == 60
    rows = lake.sql("SELECT id, text, cluster FROM records").to_pylist()
    assert all(before[r["id"]] == r["cluster"] for r in rows if r["id"] in before)
    label_of_topic = {topic_of(r["text"]): r["cluster"] for r in rows if r["id"] in before}
    assert all(label_of_topic[topic_of(r["text"])] == r["cluster"] for r in rows)


def test_errors(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"s": ROWS[:5]})
    with pytest.raises(CurationError, match="mixlake embed"):
        cluster(lake, 2)
    embed(lake, FakeEmbedder(8))
    with pytest.raises(CurationError, match="lower --k"):
        cluster(lake, 10)
    assert "cluster" not in lake.dataset("records").schema.names


def test_a_crash_between_column_and_description_is_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cluster` commits the column, then rewrites `clusters`.

    A rerun after a crash between the two describes the clustering the column holds, not the
    one before it.
    """
    import lance

    lake = make_lake(tmp_path, {"s": ROWS})
    embed(lake, FakeEmbedder(32))
    cluster(lake, 3, seed=1)
    real = lance.write_dataset

    def crash(data, uri, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(uri).endswith("/clusters.lance"):
            raise KeyboardInterrupt  # as if killed right after the records commit
        return real(data, uri, *args, **kwargs)

    monkeypatch.setattr("curation.steps.cluster.lance.write_dataset", crash)
    with pytest.raises(KeyboardInterrupt):
        cluster(lake, 4, seed=1, replace=True)
    monkeypatch.undo()
    assert lake.dataset("clusters").count_rows() == 3  # stale: still the k=3 description
    again = cluster(lake, 4, seed=1)
    assert again.step.no_op  # the column was already right
    assert len(again.clusters) == 4 and lake.dataset("clusters").count_rows() == 4
    sizes = lake.sql("SELECT cluster, count(*) AS n FROM records GROUP BY cluster").to_pylist()
    assert sorted(c.size for c in again.clusters) == sorted(r["n"] for r in sizes)
