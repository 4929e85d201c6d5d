"""`curation.errors.one_line`: a library exception as the one line a user reads."""

from __future__ import annotations

from pathlib import Path

import lance
import pyarrow as pa
import pytest

from curation.errors import MAX_CHARS, one_line


def test_lance_rust_location_and_prefix_are_dropped(tmp_path: Path) -> None:
    ds = lance.write_dataset(pa.table({"a": [1, 2]}), str(tmp_path / "t.lance"))
    with pytest.raises(ValueError, match="No field named nope") as caught:
        ds.to_table(filter="nope = 1")
    assert ".rs:" in str(caught.value)
    line = one_line(caught.value)
    assert ".rs" not in line and "/rust/" not in line
    assert line.startswith("Schema error: No field named nope")


def test_commit_conflict_message_ends_without_a_source_path() -> None:
    exc = RuntimeError(
        "Retryable commit conflict for version 2: This Merge transaction was preempted by "
        "concurrent transaction Delete at version 2. Please retry., "
        "/home/runner/work/lance/lance/rust/lance/src/io/commit/conflict_resolver.rs:2210:26"
    )
    assert one_line(exc) == (
        "Retryable commit conflict for version 2: This Merge transaction was preempted by "
        "concurrent transaction Delete at version 2. Please retry."
    )


def test_first_line_only_and_type_name_when_empty() -> None:
    assert one_line(ValueError("\n  first\nsecond")) == "first"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(OSError("")) == "OSError"


def test_long_messages_are_cut() -> None:
    line = one_line(ValueError("x" * 1000))
    assert len(line) == MAX_CHARS and line.endswith("…")
