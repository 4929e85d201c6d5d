"""A real two-node Ray cluster on this machine for the distributed-engine tests.

`ray start --head` (1 CPU, a `head` resource) and a second `ray start --address=…` (1 CPU)
run as separate raylets, so tasks really spread over two nodes. Nothing is installed at test
time: `ray` comes from `make install` (the `ray` extra). `ray stop --force` always runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
OBJECT_STORE = str(150 * 1024 * 1024)
"""Bytes of shared memory per node: the tests move a few MB, and the machine is shared."""


def ray_binary() -> str:
    """The `ray` CLI of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        raise RuntimeError("the ray CLI is missing: run `make install` (ray is a dev dependency)")
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # Workers import the test modules' steps (`tests.curation…`) as well as mixlake.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _run(args: list[str]) -> None:
    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n" + "\n".join(tail))


@contextmanager
def ray_cluster(nodes: int = 2) -> Iterator[str]:
    """Start a head and `nodes - 1` more nodes on 127.0.0.1; yield the address; stop them."""
    ray = ray_binary()
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    common += ["--object-store-memory", OBJECT_STORE]
    try:
        head = ["--head", "--port", str(port), "--include-dashboard=false"]
        _run([ray, "start", *head, *common, "--resources", '{"head": 1}'])
        for _ in range(nodes - 1):
            _run([ray, "start", "--address", address, *common])
        _wait_for_nodes(address, nodes)
        yield address
    finally:
        import ray as ray_api

        ray_api.shutdown()  # the tests' driver connection first, so nothing reports a lost raylet
        subprocess.run([ray, "stop", "--force"], env=_env(), capture_output=True, timeout=120)


def _wait_for_nodes(address: str, nodes: int) -> None:
    """Block until the cluster reports `nodes` alive nodes (a second raylet joins async)."""
    import ray

    if ray.is_initialized():  # a driver connection left by an earlier test's engine
        ray.shutdown()
    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        deadline = time.monotonic() + 60
        while sum(1 for n in ray.nodes() if n["Alive"]) < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ray.nodes()} joined the test cluster")
            time.sleep(0.2)
    finally:
        ray.shutdown()


def corpus(rows: int, seed: int = 0) -> list[dict[str, str]]:
    """Text rows that give every step work.

    Exact duplicates (case/punctuation changed), near duplicates (one word changed) and
    chat-free plain prose with a few emails.
    """
    import random

    rng = random.Random(seed)
    words = [f"w{i}" for i in range(400)] + ["the", "a", "of", "and", "data", "model"]
    out: list[dict[str, str]] = []
    while len(out) < rows:
        base = [rng.choice(words) for _ in range(rng.randint(12, 40))]
        text = " ".join(base) + "."
        if rng.random() < 0.05:
            text += f" Mail me at user{rng.randint(0, 999)}@example.com."
        out.append({"text": text})
        roll = rng.random()
        if roll < 0.08:
            out.append({"text": text.upper().replace(".", "!")})
        elif roll < 0.16:
            changed = list(base)
            changed[rng.randrange(len(changed))] = rng.choice(words)
            out.append({"text": " ".join(changed) + "."})
    return out[:rows]


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The address of a head plus one more node started on 127.0.0.1 for this session."""
    with ray_cluster(nodes=2) as address:
        yield address
