"""Two writers at once: concurrent mixlake processes never duplicate, lose or mix up rows.

Every case starts real `mixlake` processes against one lake at the same time and checks the
result against what the same commands give one after the other.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from curation import Lake
from queries import open_mix
from tests.curation.crashkit import MIX_SPEC, check_lake, mixlake, start, text_rows, write_jsonl

N = 20_000


def _wait(*procs: subprocess.Popen[str]) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=600)
        out.append((p.returncode, err))
    return out


def _added(err: str) -> int:
    head = err.split("added:", 1)[1].split("·", 1)[0]
    return int(head.strip().replace(",", ""))


def test_two_ingests_of_one_file_store_each_row_once(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "same.jsonl", text_rows(N, "same"))
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    results = _wait(
        start(lake, "ingest", str(data), "-s", "web"), start(lake, "ingest", str(data), "-s", "web")
    )
    assert [code for code, _ in results] == [0, 0], results
    state = check_lake(lake)
    assert state.rows == N
    assert sorted(_added(err) for _, err in results) == [0, N]  # the loser adds nothing
    assert state.version == 2  # and makes no version


def test_two_ingests_of_different_files(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", text_rows(N, "a"))
    b = write_jsonl(tmp_path / "b.jsonl", [*text_rows(N // 2, "b"), *text_rows(100, "a")])
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    results = _wait(
        start(lake, "ingest", str(a), "-s", "a"), start(lake, "ingest", str(b), "-s", "b")
    )
    assert [code for code, _ in results] == [0, 0], results
    state = check_lake(lake)
    assert state.rows == N + N // 2  # the 100 rows in both files are stored once
    assert state.version == 3


def test_ingest_during_a_step(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    first = write_jsonl(tmp_path / "first.jsonl", text_rows(N, "first"))
    assert mixlake(lake, "ingest", str(first), "-s", "first").code == 0
    late = write_jsonl(tmp_path / "late.jsonl", text_rows(500, "late"))
    step = start(lake, "dedup", "near", "--threshold", "0.5")
    ingest = start(lake, "ingest", str(late), "-s", "late")
    results = _wait(step, ingest)
    assert [code for code, _ in results] == [0, 0], results
    state = check_lake(lake)
    assert state.rows == N + 500 and "is_dup_near" in state.columns
    # a rerun fills the step for rows that arrived after it (none if the ingest went first)
    assert mixlake(lake, "dedup", "near", "--threshold", "0.5").code == 0
    missing = Lake(lake).sql("SELECT count(*) FROM records WHERE is_dup_near IS NULL")
    assert missing.column(0)[0].as_py() == 0


def test_two_steps_at_once(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    data = write_jsonl(tmp_path / "d.jsonl", text_rows(N, "d"))
    assert mixlake(lake, "ingest", str(data), "-s", "d").code == 0
    results = _wait(start(lake, "score", "quality_heuristic_v1"), start(lake, "dedup", "exact"))
    assert [code for code, _ in results] == [0, 0], results
    state = check_lake(lake)
    assert {"quality_heuristic_v1", "is_dup_exact", "is_dup"} <= set(state.columns)
    assert state.version == 4


def test_two_materializations_of_one_name(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    data = write_jsonl(tmp_path / "d.jsonl", text_rows(2000, "d"))
    assert mixlake(lake, "ingest", str(data), "-s", "d").code == 0
    specs = []
    for seed in (1, 2):
        path = tmp_path / f"seed{seed}.yaml"
        path.write_text(MIX_SPEC.replace("seed: 3", f"seed: {seed}"))
        specs.append(path)
    results = _wait(*(start(lake, "mix", "materialize", str(p)) for p in specs))
    assert [code for code, _ in results] == [0, 0], results
    opened = Lake(lake)
    one, two = open_mix(opened, "crashmix", 1), open_mix(opened, "crashmix", 2)
    assert one.checksum != two.checksum
    assert {one.spec.seed, two.spec.seed} == {1, 2}


def test_a_writer_that_cannot_wait_names_the_holder(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from curation.commit import writer_lock
                with writer_lock({str(lake)!r}, "a long embed"):
                    print("held", flush=True)
                    time.sleep(30)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        data = write_jsonl(tmp_path / "d.jsonl", text_rows(10, "d"))
        import os

        env = {**os.environ, "MIXLAKE_LOCK_TIMEOUT": "0", "MIXLAKE_LAKE": str(lake)}
        run = subprocess.run(
            [sys.executable, "-m", "mixlake", "ingest", str(data), "-s", "d"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert run.returncode == 2
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "a long embed" in lines[0] and "nothing was changed" in lines[0]
    finally:
        holder.kill()
        holder.wait()
    assert check_lake(lake).version == 1
    # once the holder is gone (killed, not exited cleanly) the lock is free again
    assert mixlake(lake, "ingest", str(data), "-s", "d").code == 0
