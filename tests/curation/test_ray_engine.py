"""The Ray engine on a real two-node cluster commits exactly what the local engine commits.

One 20k-row lake (4 fragments) is copied; tokens, quality_heuristic_v1, pii, exact and near
dedup run on the copy with `RayEngine` and on the original locally; every new column must be
equal (Arrow `equals`), with the same provenance and journal. A worker killed mid-step is
retried, or the step fails with one line and the lake stays where it was.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from curation import CurationError, Lake
from curation.engine import Engine, LocalEngine, use_engine
from curation.ray_engine import RayEngine, is_model_step
from curation.steps import apply, column_provenance
from curation.steps.dedup import dedup
from curation.steps.pii_step import pii
from curation.steps.quality import HeuristicQualityStep
from curation.steps.tokens import TokenCountStep
from curation.testing import make_lake
from tests.curation.ray_cluster import corpus

ROWS = 20_000
STEPS = {
    "tokens": ["n_tokens", "n_prompt_tokens", "n_completion_tokens"],
    "quality": ["quality_heuristic_v1", "quality_heuristic_v1_reasons"],
    "pii": ["pii_count", "pii_kinds"],
    "exact": ["is_dup_exact", "dup_group_exact"],
    "near": ["is_dup_near", "dup_group_near", "is_dup"],
}


def _run_all(lake: Lake, engine: Any) -> dict[str, int | None]:
    versions: dict[str, int | None] = {}
    versions["tokens"] = apply(TokenCountStep(), lake, engine=engine).version
    versions["quality"] = apply(HeuristicQualityStep(), lake, engine=engine).version
    with use_engine(engine):  # the step functions take the engine from the context
        versions["pii"] = pii(lake).step.version
    versions["exact"] = dedup(lake, "exact", engine=engine).step.version
    versions["near"] = dedup(lake, "near", engine=engine).step.version
    return versions


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, ray_address: str) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("engines")
    rows = corpus(ROWS + 50, seed=1)  # a few random rows repeat and are deduped at ingest
    local = make_lake(root, {f"part{k}": rows[k::4] for k in range(4)})
    shutil.copytree(root / "lake", root / "ray-lake")
    distributed = Lake(root / "ray-lake")
    started = time.monotonic()
    ray_versions = _run_all(distributed, RayEngine(ray_address))
    ray_seconds = time.monotonic() - started
    local_versions = _run_all(local, LocalEngine())
    return {
        "local": local,
        "ray": distributed,
        "versions": (local_versions, ray_versions),
        "ray_seconds": ray_seconds,
    }


def _plain(lake: Lake, columns: list[str]) -> pa.Table:
    table = lake.dataset("records").to_table(columns=["id", *columns])
    return pa.Table.from_arrays(table.columns, names=table.column_names).sort_by("id")


@pytest.mark.parametrize("step", list(STEPS))
def test_ray_columns_equal_local_columns(both: dict[str, Any], step: str) -> None:
    local, distributed = both["local"], both["ray"]
    assert local.dataset("records").count_rows() >= ROWS
    assert len(local.dataset("records").get_fragments()) == 4
    expected, got = _plain(local, STEPS[step]), _plain(distributed, STEPS[step])
    assert got.equals(expected)
    assert expected.column(STEPS[step][0]).null_count < ROWS  # the step computed something
    for name in STEPS[step]:
        a = column_provenance(local.dataset("records").schema.field(name))
        b = column_provenance(distributed.dataset("records").schema.field(name))
        a.pop("created_at", None), b.pop("created_at", None)
        assert a == b


def test_same_versions_and_journal(both: dict[str, Any]) -> None:
    local_versions, ray_versions = both["versions"]
    assert local_versions == ray_versions  # one version per step, the same numbers
    first = ray_versions["tokens"]
    assert first is not None
    assert list(ray_versions.values()) == list(range(first, first + 5))
    entries = [
        [(e.version, e.operation, e.message) for e in lake.log()]
        for lake in (both["local"], both["ray"])
    ]
    assert entries[0] == entries[1]
    near = _plain(both["ray"], ["is_dup_near", "is_dup_exact"]).to_pylist()
    assert sum(r["is_dup_near"] for r in near) > sum(r["is_dup_exact"] for r in near) > 100


def test_model_steps_run_on_actors() -> None:
    """Actors are for steps that declare `model_step = True`; nothing else is guessed."""
    assert is_model_step(TokenCountStep())
    assert not is_model_step(HeuristicQualityStep())
    holds_a_model = type("HoldsAModel", (), {"_model": None, "_tokenizer": None})
    assert not is_model_step(holds_a_model())
    declares = type("Declares", (), {"model_step": True})
    assert is_model_step(declares())


# ------------------------------------------------------------ a worker killed mid-step
class StallOnce:
    """quality_heuristic_v1 with a worker that waits to be killed.

    The first worker to reach a real batch writes its pid to `marker` and waits to be killed;
    later calls (the retry) compute normally.
    """

    name = "quality_heuristic_v1"
    input_columns = HeuristicQualityStep.input_columns

    def __init__(self, marker: str) -> None:
        self.marker, self.inner = marker, HeuristicQualityStep()

    def params(self) -> dict[str, Any]:
        return self.inner.params()

    def output_schema(self) -> pa.Schema:
        return self.inner.output_schema()

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.inner(batch)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(300)
        raise AssertionError("the test should have killed this worker")


def _kill_when_stalled(marker: Path) -> threading.Thread:
    def kill() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text():
                os.kill(int(marker.read_text()), signal.SIGKILL)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def small(tmp_path: Path) -> Lake:
    rows = corpus(1200, seed=2)
    return make_lake(tmp_path, {f"p{k}": rows[k::3] for k in range(3)})


def test_killed_worker_is_retried(small: Lake, tmp_path: Path, ray_address: str) -> None:
    marker = tmp_path / "stalled.pid"
    before = small.latest_version()
    killer = _kill_when_stalled(marker)
    report = apply(StallOnce(str(marker)), small, engine=RayEngine(ray_address, max_retries=2))
    killer.join(timeout=5)
    assert marker.exists()
    got = _plain(small, STEPS["quality"])
    reference = make_lake(tmp_path / "ref", {f"p{k}": corpus(1200, seed=2)[k::3] for k in range(3)})
    apply(HeuristicQualityStep(), reference)
    assert got.equals(_plain(reference, STEPS["quality"]))
    assert report.version == small.latest_version() == before + 1


def test_killed_worker_without_retries_fails_in_one_line(
    small: Lake, tmp_path: Path, ray_address: str
) -> None:
    marker = tmp_path / "stalled.pid"
    before = small.latest_version()
    killer = _kill_when_stalled(marker)
    with pytest.raises(CurationError) as failed:
        apply(StallOnce(str(marker)), small, engine=RayEngine(ray_address, max_retries=0))
    killer.join(timeout=5)
    message = str(failed.value)
    assert "\n" not in message and "worker died" in message and "nothing was committed" in message
    assert small.latest_version() == before
    assert "quality_heuristic_v1" not in small.dataset("records").schema.names
    # The rerun reuses whatever fragments finished (the checkpoint) and commits once.
    rerun = apply(StallOnce(str(marker)), small, engine=RayEngine(ray_address, max_retries=0))
    assert rerun.version == small.latest_version() == before + 1
    reference = make_lake(tmp_path / "ref", {f"p{k}": corpus(1200, seed=2)[k::3] for k in range(3)})
    apply(HeuristicQualityStep(), reference)
    assert _plain(small, STEPS["quality"]).equals(_plain(reference, STEPS["quality"]))


# ------------------------------------------------------------------------------ the CLI
def test_cli_engine_options(tmp_path: Path, ray_address: str, capsys: Any) -> None:
    from mixlake.cli import main

    rows = corpus(900, seed=4)
    lakes = [make_lake(tmp_path / n, {f"p{k}": rows[k::3] for k in range(3)}) for n in "lr"]
    for lake, engine in zip(lakes, (["--engine", "local"], ["--engine", "ray"]), strict=True):
        address = ["--ray-address", ray_address] if engine[1] == "ray" else []
        for command in (["score", "quality_heuristic_v1"], ["pii"], ["dedup", "near"]):
            assert main([*command, *engine, *address, "--lake", lake.uri]) == 0
    for columns in (STEPS["quality"], STEPS["pii"], STEPS["near"]):
        assert _plain(lakes[1], columns).equals(_plain(lakes[0], columns))
    capsys.readouterr()
    assert main(["pii", "--engine", "spark", "--replace", "--lake", lakes[0].uri]) == 2
    assert "unknown --engine 'spark'" in capsys.readouterr().err
    assert main(["pii", "--gpus-per-worker", "1", "--replace", "--lake", lakes[0].uri]) == 2
    assert "--gpus-per-worker needs --engine ray" in capsys.readouterr().err


# ------------------------------------------------- model steps on actors, prepared steps
def test_embedder_actors_cluster_and_semantic_dedup(tmp_path: Path, ray_address: str) -> None:
    """An embedder step runs on actors; cluster and semantic dedup fit on the driver.

    They write on workers; all equal the local engine's columns.
    """
    from curation.steps.cluster import cluster
    from curation.steps.embed import EmbedStep, embed
    from curation.testing import FakeEmbedder

    assert is_model_step(EmbedStep(FakeEmbedder()))
    rows = corpus(1500, seed=6)
    lakes = [make_lake(tmp_path / n, {f"p{k}": rows[k::3] for k in range(3)}) for n in "lr"]
    engines: tuple[Engine, ...] = (LocalEngine(), RayEngine(ray_address))
    for lake, engine in zip(lakes, engines, strict=True):
        with use_engine(engine):
            embed(lake, FakeEmbedder(dim=16))
            cluster(lake, 5, seed=1)
            dedup(lake, "semantic", threshold=0.9)
    columns = ["embedding", "cluster", "is_dup_semantic", "dup_group_semantic"]
    assert _plain(lakes[1], columns).equals(_plain(lakes[0], columns))
    assert lakes[1].latest_version() == lakes[0].latest_version()


def test_without_ray_installed_the_engine_says_how_to_get_it(monkeypatch: Any) -> None:
    import sys

    from curation.ray_engine import make_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if absent
    engine = make_engine("ray", "127.0.0.1:1")
    assert isinstance(engine, RayEngine)
    with pytest.raises(CurationError, match=r"pip install 'mixlake\[ray\]'"):
        engine.workers()
