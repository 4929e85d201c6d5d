"""History: log, tags, diff, rollback (both ways), delete, gc."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import CurationError, Lake, delete, diff, gc, rollback
from curation.testing import make_lake, write_jsonl
from tests.conftest import SAMPLE_ROWS

WEB = [{"text": f"web page number {i} about cooking"} for i in range(5)]


@pytest.fixture
def two_sources(tmp_path: Path) -> Lake:
    """v2: six sample rows; v3: +5 web rows."""
    return make_lake(tmp_path, {"sample": SAMPLE_ROWS, "web": WEB})


def _ids(lake: Lake, ref: int | str | None = None) -> set[str]:
    return set(lake.records(ref).to_table(columns=["id"]).column("id").to_pylist())


# ------------------------------------------------------------------------ log & tags


def test_log_lists_every_version_newest_first(two_sources: Lake) -> None:
    entries = two_sources.log()
    assert [e.version for e in entries] == [3, 2, 1]
    assert [e.rows for e in entries] == [11, 6, 0]
    assert [e.operation for e in entries] == ["ingest", "ingest", "init"]
    assert "source=web: +5 rows" in entries[0].message


def test_tag_resolve_and_log_shows_tags(two_sources: Lake) -> None:
    assert two_sources.tag("clean", 2) == 2
    assert two_sources.tag("now") == 3
    assert two_sources.tags() == {"clean": 2, "now": 3}
    assert two_sources.resolve("clean") == 2
    assert two_sources.resolve("2") == 2
    assert two_sources.resolve("latest") == 3
    assert {e.version: e.tags for e in two_sources.log()}[2] == ("clean",)


def test_tag_errors(two_sources: Lake) -> None:
    two_sources.tag("clean", 2)
    with pytest.raises(CurationError, match="tag 'clean' already exists"):
        two_sources.tag("clean")
    with pytest.raises(CurationError, match="bad tag name 'a b'"):
        two_sources.tag("a b")
    with pytest.raises(CurationError, match="reserved prefix"):
        two_sources.tag("pin-x")
    with pytest.raises(CurationError, match="no version 99"):
        two_sources.tag("far", 99)
    with pytest.raises(CurationError, match=r"no tag 'nope' on records \(tags: clean\)"):
        two_sources.resolve("nope")


def test_pins_are_hidden_from_tags_but_kept(two_sources: Lake) -> None:
    name = two_sources.pin("mix/chat-v1", 2)
    assert name == "pin-mix-chat-v1"
    assert two_sources.pin("mix/chat-v1", 2) == name  # idempotent
    assert two_sources.tags() == {}
    assert two_sources.tags(include_pins=True) == {name: 2}


# ----------------------------------------------------------------------------- diff


def test_diff_counts_per_source_with_examples(two_sources: Lake) -> None:
    d = diff(two_sources, 2, 3)
    assert (d.a, d.b, d.added, d.removed) == (2, 3, 5, 0)
    assert [(s.source, s.added, s.removed) for s in d.by_source] == [("web", 5, 0)]
    assert len(d.added_examples) == 3
    assert all(e["source"] == "web" for e in d.added_examples)
    assert d.added_ids == []


def test_diff_ids_and_both_directions(two_sources: Lake) -> None:
    forward = diff(two_sources, 2, 3, ids=True)
    back = diff(two_sources, "3", "2", ids=True)
    assert set(forward.added_ids) == _ids(two_sources, 3) - _ids(two_sources, 2)
    assert back.removed_ids == forward.added_ids
    assert back.added_ids == []


def test_diff_by_tag_after_delete(two_sources: Lake) -> None:
    two_sources.tag("before")
    delete(two_sources, where="source = 'sample' AND kind = 'chat'")
    d = diff(two_sources, "before", "latest")
    assert [(s.source, s.added, s.removed) for s in d.by_source] == [("sample", 0, 4)]
    chat_texts = {r["text"][:120] for r in two_sources.records("before").to_table().to_pylist()}
    assert len(d.removed_examples) == 3
    assert all(e["text"] in chat_texts and e["source"] == "sample" for e in d.removed_examples)
    assert d.added_examples == []


def test_diff_same_version_is_empty(two_sources: Lake) -> None:
    d = diff(two_sources, 3, 3)
    assert (d.added, d.removed, d.by_source) == (0, 0, [])


def test_diff_unknown_version(two_sources: Lake) -> None:
    with pytest.raises(CurationError, match="no version 42"):
        diff(two_sources, 42, 3)


# ------------------------------------------------------------------------- rollback


def test_rollback_to_version_is_a_new_version(two_sources: Lake) -> None:
    before = _ids(two_sources, 2)
    new = rollback(two_sources, 2)
    assert new == 4
    assert _ids(two_sources) == before
    assert two_sources.log()[0].operation == "rollback"
    assert "rollback to version 2 (from 3): 11 → 6 rows" in two_sources.log()[0].message
    assert _ids(two_sources, 3) != before  # history is kept


def test_rollback_to_tag_and_undo(two_sources: Lake) -> None:
    two_sources.tag("clean", 2)
    full = _ids(two_sources)
    rollback(two_sources, "clean")
    assert len(_ids(two_sources)) == 6
    rollback(two_sources, 3)  # undo the rollback
    assert _ids(two_sources) == full
    assert [e.operation for e in two_sources.log()[:2]] == ["rollback", "rollback"]


def test_ingest_after_rollback(two_sources: Lake, tmp_path: Path) -> None:
    rollback(two_sources, 2)
    report = two_sources.ingest([tmp_path / "web.jsonl"], source="web")
    assert report.rows_added == 5  # the rolled-back rows are not "already present"
    assert two_sources.records().count_rows() == 11


def test_rollback_errors(two_sources: Lake) -> None:
    with pytest.raises(CurationError, match="already at version 3"):
        rollback(two_sources, "latest")
    with pytest.raises(CurationError, match="no tag 'ghost'"):
        rollback(two_sources, "ghost")
    assert two_sources.latest_version() == 3


# --------------------------------------------------------------------------- delete


def test_delete_where(two_sources: Lake) -> None:
    result = delete(two_sources, where="source = 'web' AND text LIKE '%number 1%'")
    assert (result.rows_removed, result.version) == (1, 4)
    assert two_sources.records().count_rows() == 10
    assert two_sources.log()[0].operation == "delete"
    assert two_sources.journal_entries()[4]["rows_removed"] == 1


def test_delete_batch_removes_only_that_ingest(two_sources: Lake) -> None:
    web_batch = two_sources.sql("SELECT DISTINCT batch FROM records WHERE source = 'web'")
    batch = web_batch.column(0)[0].as_py()
    result = delete(two_sources, batch=batch)
    assert result.rows_removed == 5
    assert _ids(two_sources) == _ids(two_sources, 2)


def test_delete_nothing_matched_makes_no_version(two_sources: Lake) -> None:
    result = delete(two_sources, where="source = 'nobody'")
    assert (result.rows_removed, result.version) == (0, None)
    assert two_sources.latest_version() == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"where": "sourse = 'web'"}, "bad --where predicate"),
        ({"where": "source = "}, "bad --where predicate"),
        ({"batch": "b-does-not-exist"}, "no batch 'b-does-not-exist'"),
        ({"batch": "x' OR '1'='1"}, "no batch"),
        ({}, "exactly one of --where or --batch"),
        ({"where": "true", "batch": "b"}, "exactly one of --where or --batch"),
    ],
)
def test_delete_errors_leave_lake(two_sources: Lake, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(CurationError, match=message):
        delete(two_sources, **kwargs)
    assert two_sources.latest_version() == 3
    assert two_sources.records().count_rows() == 11


# ------------------------------------------------------------------------------- gc


def test_gc_keeps_tagged_pinned_and_latest(tmp_path: Path) -> None:
    lake = Lake.create(tmp_path / "lake")
    for i in range(5):
        lake.ingest([write_jsonl(tmp_path / f"{i}.jsonl", [{"text": f"row {i}"}])], source="s")
    lake.tag("keep", 2)
    lake.pin("run-1", 4)
    result = gc(lake, 0)
    live = [e.version for e in lake.log()]
    assert live == [6, 4, 2]
    assert result.versions_removed == 3
    assert result.kept_tagged == [2, 4]
    assert lake.records("keep").count_rows() == 1
    assert lake.records(4).count_rows() == 3
    assert lake.records().count_rows() == 5


def test_gc_recent_versions_are_kept(two_sources: Lake) -> None:
    result = gc(two_sources, 30)
    assert result.versions_removed == 0
    assert [e.version for e in two_sources.log()] == [3, 2, 1]


def test_gc_negative_days(two_sources: Lake) -> None:
    with pytest.raises(CurationError, match="zero or more days"):
        gc(two_sources, -1)


def test_bad_predicate_message_names_column_without_engine_noise(two_sources: Lake) -> None:
    with pytest.raises(CurationError) as info:
        delete(two_sources, where="no_such_column = 1")
    message = str(info.value)
    assert "No field named no_such_column" in message
    assert ".rs" not in message and "Invalid user input" not in message
