"""The Ray engine against the local engine on the same rows, at 1 and 2 worker nodes.

One lake of `ROWS` synthetic text rows in `FRAGMENTS` fragments (near and exact duplicates,
a few emails) is copied once per configuration; each configuration runs the same five
steps in order — tokens (SmolLM2 tokenizer, actors), quality_heuristic_v1, pii (tasks),
exact and near dedup (map → hash partitions → reduce) — and each step is timed end to end
(read, compute, checkpoint, commit). Configurations: the local engine; a Ray cluster of a
head node (1 CPU) only; a head plus a second node (1 CPU each), both started on this machine
with `ray start`. Every configuration first runs the five steps on 200 rows (imports, first
calls, task workers started) so the timed run measures steady-state cost; model-step actors
start anew with every step, which is part of the measured overhead.

Scaling efficiency is t(1 node) / (2 × t(2 nodes)); overhead is t(1 node) / t(local).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROWS = 20_000
FRAGMENTS = 8
STEPS = ("tokens", "quality", "pii", "exact", "near")


def _corpus(rows: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(400)] + ["the", "a", "of", "and", "data", "model"]
    out: list[dict[str, str]] = []
    while len(out) < rows:
        base = [rng.choice(words) for _ in range(rng.randint(12, 40))]
        text = " ".join(base) + "."
        if rng.random() < 0.05:
            text += f" Mail me at user{rng.randint(0, 999)}@example.com."
        out.append({"text": text})
        if rng.random() < 0.08:
            out.append({"text": text.upper()})
        elif rng.random() < 0.08:
            changed = list(base)
            changed[rng.randrange(len(changed))] = rng.choice(words)
            out.append({"text": " ".join(changed) + "."})
    return out[:rows]


def _steps(engine: Any) -> dict[str, Callable[[Any], Any]]:
    from curation.engine import use_engine
    from curation.steps import apply
    from curation.steps.dedup import dedup
    from curation.steps.pii_step import pii
    from curation.steps.quality import HeuristicQualityStep
    from curation.steps.tokens import TokenCountStep

    def run_pii(lake: Any) -> Any:
        with use_engine(engine):
            return pii(lake)

    return {
        "tokens": lambda lake: apply(TokenCountStep(), lake, engine=engine),
        "quality": lambda lake: apply(HeuristicQualityStep(), lake, engine=engine),
        "pii": run_pii,
        "exact": lambda lake: dedup(lake, "exact", engine=engine),
        "near": lambda lake: dedup(lake, "near", engine=engine),
    }


def _time_all(base: Path, copy: Path, engine: Any) -> dict[str, float]:
    from curation import Lake

    shutil.copytree(base, copy)
    lake = Lake(copy)
    out = {}
    for name, step in _steps(engine).items():
        start = time.perf_counter()
        step(lake)
        out[name] = time.perf_counter() - start
    return out


@contextmanager
def _cluster(nodes: int) -> Iterator[str]:
    ray_bin = str(Path(sys.executable).with_name("ray"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    common += ["--object-store-memory", str(300 * 1024 * 1024)]
    address = f"127.0.0.1:{port}"
    try:
        head = ["--head", "--port", str(port), "--include-dashboard=false"]
        subprocess.run([ray_bin, "start", *head, *common], env=env, check=True, capture_output=True)
        for _ in range(nodes - 1):
            subprocess.run(
                [ray_bin, "start", "--address", address, *common],
                env=env,
                check=True,
                capture_output=True,
            )
        from curation.ray_engine import wait_for_cluster

        wait_for_cluster(address, nodes)
        yield address
    finally:
        import ray

        ray.shutdown()
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True)


def run() -> str:
    """Time every step on each configuration; return the Markdown section."""
    from curation.engine import LocalEngine
    from curation.models import load_tokenizer
    from curation.ray_engine import RayEngine
    from curation.testing import make_lake

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="mixlake-bench-scale-"))
    try:
        rows = _corpus(ROWS + 50, seed=1)
        make_lake(tmp / "base", {f"p{k}": rows[k::FRAGMENTS] for k in range(FRAGMENTS)})
        base = tmp / "base" / "lake"
        make_lake(tmp / "warm", {"w": rows[:200]})
        warm = tmp / "warm" / "lake"
        load_tokenizer()  # the local engine's tokenizer is loaded once per process too
        _time_all(warm, tmp / "warm-local", LocalEngine())  # imports, first calls
        times = {"local": _time_all(base, tmp / "local", LocalEngine())}
        for nodes in (1, 2):
            with _cluster(nodes) as address:
                engine = RayEngine(address)
                _time_all(warm, tmp / f"warm-ray{nodes}", engine)  # start workers
                times[f"ray{nodes}"] = _time_all(base, tmp / f"ray{nodes}", engine)
        live = _rows(base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _section(times, live, load_before, os.getloadavg()[0])


def _rows(base: Path) -> int:
    from curation import Lake

    return int(Lake(base).dataset("records").count_rows())


def _projected(local: float, one_node: float, nodes: int) -> float:
    """Time on `nodes` nodes (one fragment each): the fixed overhead measured at one node
    (its time beyond the local work) plus one fragment's share of the local work."""
    return max(one_node - local, 0.0) + local / nodes


def _section(times: dict[str, dict[str, float]], rows: int, load0: float, load1: float) -> str:
    lines = [
        "## Scale: the Ray engine at 1 and 2 nodes against the local engine",
        "",
        f"Data: {rows:,} synthetic text rows in {FRAGMENTS} fragments (exact and near "
        "duplicates, a few emails). Each step timed end to end (read, compute, commit one "
        "version); Ray nodes are 1-CPU `ray start` nodes on this same 2-core machine; every "
        "configuration first runs the five steps on 200 rows (imports, worker start). "
        f"Load average {load0:.1f} before, {load1:.1f} after.",
        "",
        "| step | local s | µs/row local | ray 1 node s | ray 2 nodes s | overhead (1 node / local) "
        f"| scaling efficiency (t1 / 2·t2) | projected {FRAGMENTS} nodes s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step in STEPS:
        local, one, two = (times[k][step] for k in ("local", "ray1", "ray2"))
        lines.append(
            f"| {step} | {local:.2f} | {1e6 * local / rows:.0f} | {one:.2f} | {two:.2f} "
            f"| {one / local:.2f}× | {one / (2 * two):.0%} "
            f"| {_projected(local, one, FRAGMENTS):.2f} |"
        )
    total = {k: sum(v.values()) for k, v in times.items()}
    lines += [
        "",
        f"All five steps: local {total['local']:.1f} s, Ray 1 node {total['ray1']:.1f} s, "
        f"2 nodes {total['ray2']:.1f} s.",
        "",
        "What 2 cores can show: the two Ray nodes share the machine's two cores with the "
        "driver, the raylets and the GCS, so 2 nodes cannot reach 2× and the efficiency "
        "column is a floor, not a measurement of a real cluster. The overhead column is the "
        "honest part: the fixed cost of scheduling, worker start-up (actors import "
        "transformers and load the tokenizer per step) and moving results through the object "
        "store. The projection assumes real nodes (no shared cores): a step's time is its fixed "
        "overhead at one node (t1 − local) plus (fragments / N) × its per-fragment cost (local "
        f"/ {FRAGMENTS}); at this size the fixed overhead dominates, so Ray pays off for lakes "
        "whose per-step work is minutes, not seconds.",
    ]
    return "\n".join(lines) + "\n"
