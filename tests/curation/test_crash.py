"""Fault injection: kill -9 at every commit point of every lake operation, then check the lake.

Each case runs a real `mixlake` command in a child process with `MIXLAKE_CRASH_AT` naming a
crash point (`curation.faults`), so the child dies by SIGKILL exactly there. Afterwards the
lake must open; its latest version is the old one or the new one, never a third state; ids
are unique and match that version; every version carries its journal entry; pins point at
live versions; and rerunning the command succeeds and ends where an uninterrupted run ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import Lake
from curation.ingest import list_rejects
from tests.curation.crashkit import (
    MIX_SPEC,
    check_lake,
    kill_after,
    mixlake,
    start,
    text_rows,
    write_jsonl,
)

ROWS = 3000


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", text_rows(ROWS, "doc"))


@pytest.fixture
def base_lake(tmp_path: Path, data: Path) -> Path:
    """A lake with the data ingested (version 2)."""
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    assert mixlake(lake, "ingest", str(data), "-s", "web").code == 0
    return lake


def _crash(lake: Path, point: str, *args: str) -> None:
    run = mixlake(lake, *args, crash_at=point)
    assert run.killed, f"{args} did not reach crash point {point}: {run.code} {run.err[-400:]}"


@pytest.mark.parametrize(
    "point", ["ingest:fragment-written", "ingest:before-commit", "ingest:after-commit"]
)
def test_ingest_crash(tmp_path: Path, data: Path, point: str) -> None:
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    _crash(lake, point, "ingest", str(data), "-s", "web")
    state = check_lake(lake)
    committed = point == "ingest:after-commit"
    assert state.version == (2 if committed else 1)
    assert state.rows == (ROWS if committed else 0)
    rerun = mixlake(lake, "ingest", str(data), "-s", "web")
    assert rerun.code == 0, rerun.err
    after = check_lake(lake)
    assert after.rows == len({r["text"] for r in text_rows(ROWS, "doc")})
    assert after.version == 2  # the rerun after a commit adds nothing and makes no version


@pytest.mark.parametrize("point", ["ingest:before-commit", "ingest:after-commit"])
def test_rejects_belong_to_their_batch(tmp_path: Path, point: str) -> None:
    rows = [*text_rows(50, "ok"), {"text": 7}, {"nope": 1}]
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    _crash(lake, point, "ingest", str(data), "-s", "web", "--on-error", "skip")
    check_lake(lake)
    rejects = list_rejects(Lake(lake))
    if point == "ingest:before-commit":
        assert rejects.num_rows == 0  # the batch never committed: its rejects are invisible
    else:
        assert rejects.num_rows == 2  # committed: its rejects are there (rolled forward)
        batch = Lake(lake).sql("SELECT DISTINCT batch FROM records").column(0)[0].as_py()
        assert set(rejects.column("batch").to_pylist()) == {batch}


STEP_POINTS = ["step:batch-done:2", "step:fragment-done", "step:before-commit", "step:after-commit"]


@pytest.mark.parametrize("point", STEP_POINTS)
def test_step_crash(base_lake: Path, point: str) -> None:
    _crash(base_lake, point, "score", "quality_heuristic_v1")
    state = check_lake(base_lake)
    committed = point == "step:after-commit"
    assert state.version == (3 if committed else 2)
    assert ("quality_heuristic_v1" in state.columns) == committed
    rerun = mixlake(base_lake, "score", "quality_heuristic_v1")
    assert rerun.code == 0, rerun.err
    after = check_lake(base_lake)
    assert after.version == 3 and "quality_heuristic_v1" in after.columns
    nulls = Lake(base_lake).sql(
        "SELECT count(*) AS n FROM records WHERE quality_heuristic_v1 IS NULL"
    )
    assert nulls.column(0)[0].as_py() == 0


@pytest.mark.parametrize("point", ["step:fragment-done", "step:before-commit"])
def test_replace_is_one_commit(base_lake: Path, point: str) -> None:
    assert mixlake(base_lake, "dedup", "near", "--threshold", "0.5").code == 0
    before = check_lake(base_lake)
    _crash(base_lake, point, "dedup", "near", "--threshold", "0.6", "--replace")
    state = check_lake(base_lake)
    assert state.version == before.version  # the old columns are all still there
    assert {"is_dup_near", "dup_group_near", "is_dup"} <= set(state.columns)
    assert mixlake(base_lake, "dedup", "near", "--threshold", "0.6", "--replace").code == 0
    after = check_lake(base_lake)
    assert after.version == before.version + 1


def test_dedup_marks_and_flag_commit_together(base_lake: Path) -> None:
    _crash(base_lake, "step:before-commit", "dedup", "near", "--threshold", "0.5")
    assert "is_dup_near" not in check_lake(base_lake).columns
    assert mixlake(base_lake, "dedup", "near", "--threshold", "0.5").code == 0
    lake = Lake(base_lake)
    marked = lake.sql(
        "SELECT count(*) FILTER (WHERE is_dup_near) AS near, count(*) FILTER (WHERE is_dup) AS "
        "any FROM records"
    ).to_pylist()[0]
    assert marked["near"] > 0 and marked["near"] == marked["any"]
    ops = [e.operation for e in lake.log()]
    assert ops.count("step") == 1  # marks and is_dup: one version


@pytest.mark.parametrize("point", ["delete:before-commit", "delete:after-commit"])
def test_delete_crash(base_lake: Path, point: str) -> None:
    where = "text LIKE 'doc 1%'"
    _crash(base_lake, point, "delete", "--where", where)
    state = check_lake(base_lake)
    assert state.version == (3 if point.endswith("after-commit") else 2)
    rerun = mixlake(base_lake, "delete", "--where", where)
    assert rerun.code == 0, rerun.err
    left = Lake(base_lake).sql(f"SELECT count(*) FROM records WHERE {where}")
    assert left.column(0)[0].as_py() == 0


@pytest.mark.parametrize("point", ["rollback:before-commit", "rollback:after-commit"])
def test_rollback_crash(base_lake: Path, point: str, tmp_path: Path) -> None:
    more = write_jsonl(tmp_path / "more.jsonl", text_rows(20, "late"))
    assert mixlake(base_lake, "ingest", str(more), "-s", "late").code == 0
    _crash(base_lake, point, "rollback", "--to", "2")
    state = check_lake(base_lake)
    assert state.version == (4 if point.endswith("after-commit") else 3)
    if point.endswith("before-commit"):
        assert mixlake(base_lake, "rollback", "--to", "2").code == 0
    assert check_lake(base_lake).ids == frozenset(
        Lake(base_lake).records(2).to_table(columns=["id"]).column("id").to_pylist()
    )


@pytest.mark.parametrize(
    "point", ["materialize:pinned", "materialize:rows-written", "materialize:after-commit"]
)
def test_materialize_crash(base_lake: Path, point: str, tmp_path: Path) -> None:
    spec = tmp_path / "crashmix.yaml"
    spec.write_text(MIX_SPEC)
    _crash(base_lake, point, "mix", "materialize", str(spec))
    check_lake(base_lake)
    rerun = mixlake(base_lake, "mix", "materialize", str(spec))
    assert rerun.code == 0, rerun.err
    # the mix survives gc: its pin exists whatever instant the crash came at
    more = write_jsonl(tmp_path / "more.jsonl", text_rows(5, "late"))
    assert mixlake(base_lake, "ingest", str(more), "-s", "late").code == 0
    assert mixlake(base_lake, "gc", "--older-than", "0").code == 0
    shown = mixlake(base_lake, "mix", "show", "crashmix")
    assert shown.code == 0, shown.err
    from queries import open_mix

    mix = open_mix(Lake(base_lake), "crashmix")
    assert mix.version == 1 and mix.rows("train").num_rows > 0


def test_ingest_killed_at_random_instants(tmp_path: Path) -> None:
    """A kill -9 at seeded random instants of a larger ingest: always old or new, never half."""
    import random

    data = write_jsonl(tmp_path / "big.jsonl", text_rows(60_000, "big"))
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    rng = random.Random(11)
    for _ in range(4):
        proc = start(lake, "ingest", str(data), "-s", "big")
        killed = kill_after(proc, rng.uniform(0.5, 4.0))
        state = check_lake(lake)
        assert state.rows in (0, 60_000)
        if not killed:
            break
    assert mixlake(lake, "ingest", str(data), "-s", "big").code == 0
    assert check_lake(lake).rows == 60_000


def test_gc_removes_leftovers_of_killed_writers(tmp_path: Path, data: Path) -> None:
    lake = tmp_path / "lake"
    assert mixlake(lake, "init").code == 0
    _crash(lake, "ingest:before-commit", "ingest", str(data), "-s", "web")
    files = lambda: sorted((lake / "records.lance" / "data").glob("*.lance"))  # noqa: E731
    assert files(), "the killed ingest wrote data files"
    assert mixlake(lake, "gc", "--older-than", "0").code == 0
    assert files() == []
    assert check_lake(lake).version == 1


@pytest.mark.parametrize("point", ["step:fragment-done", "step:before-commit", "step:after-commit"])
def test_eval_write_back_crash(base_lake: Path, point: str, tmp_path: Path) -> None:
    import json

    ids = Lake(base_lake).sql("SELECT id FROM records ORDER BY id LIMIT 40").column(0)
    lines = [{"manifest": {"run_id": "rcrash", "suite": "heldout", "mix": "eval-set:crash"}}]
    lines += [
        {"id": i, "loss": 1.0 + k / 100, "perplexity": 2.0} for k, i in enumerate(ids.to_pylist())
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    _crash(base_lake, point, "eval", "import", str(results))
    state = check_lake(base_lake)
    committed = point == "step:after-commit"
    assert ("eval_rcrash_heldout_loss" in state.columns) == committed
    rerun = mixlake(base_lake, "eval", "import", str(results))
    assert rerun.code == 0, rerun.err
    lake = Lake(base_lake)
    got = lake.sql("SELECT count(eval_rcrash_heldout_loss) AS n FROM records").column(0)[0]
    assert got.as_py() == 40
    evals = lake.sql("SELECT count(*) FROM evals WHERE run_id = 'rcrash'").column(0)[0]
    assert evals.as_py() == 2  # loss and perplexity, once: the rerun did not repeat them
    messages = [e.message for e in lake.log() if e.operation == "eval"]
    assert len(messages) == 1


@pytest.mark.parametrize("command", [("score", "quality_heuristic_v1"), ("tokens",)])
def test_ctrl_c_during_a_step_exits_cleanly(base_lake: Path, command: tuple[str, ...]) -> None:
    """Ctrl-C inside Lance's callback into a step once aborted the process (SIGABRT, -6)."""
    import random
    import signal
    import time

    rng = random.Random(5)
    for _ in range(4):
        proc = start(base_lake, *command)
        time.sleep(rng.uniform(2.0, 6.0))
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        assert "Traceback" not in err, err[-800:]
        assert proc.returncode != -signal.SIGABRT, err[-500:]
        done = "✓" in err  # the step had committed before the signal landed
        if done:
            assert proc.returncode in (0, 130, -signal.SIGINT), (proc.returncode, err[-500:])
            break
        assert proc.returncode == 130, (proc.returncode, err[-500:])
        version = check_lake(base_lake).version  # the lake's invariants hold either way
        if version == 3:  # the signal landed after the commit, before the summary: the new one
            break
        assert version == 2  # interrupted before the commit: nothing committed
