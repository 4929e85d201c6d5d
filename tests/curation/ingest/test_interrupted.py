"""Interrupted ingests (Ctrl-C, a crash, a bad row after many batches) commit nothing."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from curation import CurationError, Lake, list_rejects
from curation.ingest.inputs import Row
from curation.testing import write_jsonl
from tests.curation.ingest.kit import GOOD, lines_file, state


def test_interrupt_in_progress_callback_commits_nothing(
    sample_lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.modules["curation.ingest.read_jsonl"], "BLOCK_BYTES", 16_384)
    rows = [{"text": f"row {i}"} for i in range(20_000)]
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    before = state(sample_lake)
    calls = []

    def interrupt(file: str, n: int) -> None:
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample_lake.ingest([path], source="s", batch_rows=1000, progress=interrupt)
    assert state(sample_lake) == before
    assert sample_lake.ingest([path], source="s").rows_added == 20_000


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "row-by-row"])
def test_crash_mid_stream_after_batches_commits_nothing(
    sample_lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    intake_module = sys.modules["curation.ingest.intake"]
    monkeypatch.setattr(sys.modules["curation.ingest.read_jsonl"], "BLOCK_BYTES", 16_384)
    real_table = intake_module.jsonl_table
    real_rows: Callable[..., Iterator[Row]] = intake_module.jsonl_rows
    calls: list[int] = []

    def crashing_table(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if not bulk:
            return None  # read row by row (crashes at line 4500)
        if len(calls) == 6:
            raise RuntimeError("disk on fire")
        return real_table(*args, **kwargs)

    def crashing_rows(*args: Any, **kwargs: Any) -> Iterator[Row]:
        for number, row in real_rows(*args, **kwargs):
            if number == 4500:
                raise RuntimeError("disk on fire")
            yield number, row

    monkeypatch.setattr(intake_module, "jsonl_table", crashing_table)
    monkeypatch.setattr(intake_module, "jsonl_rows", crashing_rows)
    path = write_jsonl(tmp_path / "big.jsonl", [{"text": f"row {i}"} for i in range(6000)])
    before = state(sample_lake)
    with pytest.raises(RuntimeError, match="disk on fire"):
        sample_lake.ingest([path], source="s", batch_rows=1000)
    assert len(calls) == 6 if bulk else len(calls) >= 6  # it crashed mid-file
    assert state(sample_lake) == before


def test_bad_row_after_several_batches_commits_nothing(sample_lake: Lake, tmp_path: Path) -> None:
    rows: list[Any] = [{"text": f"row {i}"} for i in range(5000)]
    rows.append({"text": None})
    path = write_jsonl(tmp_path / "late.jsonl", rows)
    before = state(sample_lake)
    with pytest.raises(CurationError, match=r"late\.jsonl:5001: field 'text' is null"):
        sample_lake.ingest([path], source="s", batch_rows=500)
    assert state(sample_lake) == before


def test_garbage_collector_is_restored_after_failed_and_good_ingests(
    lake: Lake, tmp_path: Path
) -> None:
    import gc

    assert gc.isenabled()
    with pytest.raises(CurationError):
        lake.ingest([lines_file(tmp_path, "{}")], source="s")
    assert gc.isenabled()
    lake.ingest([write_jsonl(tmp_path / "ok.jsonl", GOOD)], source="s")
    assert gc.isenabled()
    gc.disable()
    try:
        lake.ingest([write_jsonl(tmp_path / "ok2.jsonl", [{"text": "x"}])], source="s")
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_chunked_write_is_one_version_and_all_or_nothing(
    sample_lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_module = sys.modules["curation.ingest.run"]
    monkeypatch.setattr(ingest_module, "_CHUNK_ROWS", 1000)
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": f"chunked {i}"} for i in range(3500)])
    before = state(sample_lake)
    report = sample_lake.ingest([good], source="s", batch_rows=400)
    assert report.rows_added == 3500
    assert sample_lake.latest_version() == before[0] + 1
    assert sample_lake.records().count_rows() == before[1] + 3500
    assert len(sample_lake.records().get_fragments()) >= 4  # several writers, one commit

    rows: list[Any] = [{"text": f"second {i}"} for i in range(3000)]
    rows.append({"text": 7})  # fails after three chunks were written
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    after_good = state(sample_lake)
    with pytest.raises(CurationError, match=r"bad\.jsonl:3001: field 'text'"):
        sample_lake.ingest([bad], source="s", batch_rows=400)
    assert state(sample_lake) == after_good


def test_many_rejects_are_flushed_and_undone_if_the_ingest_fails(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.modules["curation.ingest.intake"], "REJECTS_FLUSH", 5)
    lines = [f'{{"text": "good {i}"}}' if i % 2 else "{}" for i in range(30)]
    report = lake.ingest([lines_file(tmp_path, *lines)], source="s", on_error="skip")
    assert (report.rows_added, report.rejected) == (15, 15)
    assert list_rejects(lake, report.batch, limit=100).num_rows == 15

    def crash(file: str, n: int) -> None:
        raise KeyboardInterrupt

    before = state(lake)
    more = [f'{{"text": "more {i}"}}' if i % 2 else "[]" for i in range(10_000)]
    with pytest.raises(KeyboardInterrupt):
        lake.ingest(
            [lines_file(tmp_path, *more, name="more.jsonl")],
            source="s",
            on_error="skip",
            progress=crash,
        )
    assert state(lake) == before
    assert lake.sql("SELECT count(*) AS n FROM rejects").column("n")[0].as_py() == 15
