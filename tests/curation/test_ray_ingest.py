"""Ingest of many files at once: a folder or a glob, parsed and normalised in Ray tasks.

It commits one version with exactly the ids, dedup counts, rejects and errors of the local path.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import CurationError, Lake
from curation.ingest import ingest, list_rejects
from curation.ray_engine import RayEngine
from curation.testing import write_jsonl
from tests.curation.ray_cluster import corpus


def _files(folder: Path) -> Path:
    """Six JSONL and two Parquet files; rows repeat across files; two rows are bad."""
    folder.mkdir()
    rows = corpus(3000, seed=5)
    for k in range(6):
        part = rows[k * 400 : (k + 1) * 400 + 50]  # 50 rows overlap the next file
        if k == 3:
            part = [*part[:10], {"no_text_here": 1}, *part[10:]]
        write_jsonl(folder / f"part-{k}.jsonl", part)
    (folder / "sub").mkdir()
    for k in range(2):
        table = pa.Table.from_pylist(rows[2400 + k * 300 : 2700 + k * 300 + 20])
        pq.write_table(table, folder / "sub" / f"more-{k}.parquet")
    with open(folder / "part-5.jsonl", "a") as fh:
        fh.write("{not json\n")
    return folder


def _state(lake: Lake) -> tuple[list[tuple[str, str, str]], list[tuple[str, int, str]]]:
    ds = lake.dataset("records")
    rows = ds.to_table(columns=["id", "kind", "text"]).to_pylist()
    rejects = list_rejects(lake).to_pylist()
    return (
        sorted((r["id"], r["kind"], r["text"]) for r in rows),
        sorted((Path(r["file"]).name, r["line"], r["reason"]) for r in rejects),
    )


def test_folder_on_ray_equals_local(tmp_path: Path, ray_address: str) -> None:
    folder = _files(tmp_path / "data")
    local, distributed = Lake.create(tmp_path / "l"), Lake.create(tmp_path / "r")
    a = ingest(local, [folder], "web", on_error="skip")
    b = ingest(distributed, [folder], "web", on_error="skip", engine=RayEngine(ray_address))
    assert len(a.files) == 8 and a.files == b.files
    for field in ("rows_read", "rows_added", "already_present", "duplicates_in_input", "rejected"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.duplicates_in_input >= 250 and a.rejected == 2
    assert a.reject_reasons == b.reject_reasons and a.by_kind == b.by_kind
    assert _state(local) == _state(distributed)
    assert distributed.latest_version() == local.latest_version() == 2  # one version each
    again = ingest(
        distributed,
        [str(folder / "*.jsonl")],
        "web",
        on_error="skip",
        engine=RayEngine(ray_address),
    )
    assert again.rows_added == 0 and not again.new_version


def test_first_bad_row_fails_the_same_way(tmp_path: Path, ray_address: str) -> None:
    folder = _files(tmp_path / "data")
    messages = []
    for engine in (None, RayEngine(ray_address)):
        lake = Lake.create(tmp_path / f"lake-{len(messages)}")
        with pytest.raises(CurationError) as failed:
            ingest(lake, [str(folder / "part-*.jsonl")], "web", engine=engine)
        messages.append(str(failed.value))
        assert lake.latest_version() == 1  # nothing committed
    assert messages[0] == messages[1]
    assert "part-3.jsonl:11:" in messages[0]


def test_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    lake = Lake.create(tmp_path / "lake")
    with pytest.raises(CurationError, match="no file matches"):
        ingest(lake, [str(tmp_path / "*.jsonl")], "web")


def test_cli_ingest_with_engine_ray(tmp_path: Path, ray_address: str) -> None:
    from mixlake.cli import main

    folder = _files(tmp_path / "data")
    local = Lake.create(tmp_path / "l")
    ingest(local, [folder], "web", on_error="skip")
    uri = str(tmp_path / "cli")
    assert main(["init", "--lake", uri]) == 0
    args = ["ingest", str(folder), "-s", "web", "--on-error", "skip", "--lake", uri]
    assert main([*args, "--engine", "ray", "--ray-address", ray_address]) == 0
    assert _state(Lake(uri)) == _state(local)
