"""Helpers for the fault-injection and concurrency tests.

Run the CLI in a child process, kill it at a named crash point (or at a random instant), and
check what the lake looks like.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from curation import Lake
from curation.faults import CRASH_ENV


@dataclass(frozen=True)
class Run:
    """One child `mixlake` process: exit code and output."""

    code: int
    out: str
    err: str

    @property
    def killed(self) -> bool:
        """Whether SIGKILL ended it."""
        return self.code == -signal.SIGKILL


def mixlake(lake: Path, *args: str, crash_at: str | None = None, timeout: float = 300) -> Run:
    """Run `mixlake ARGS --lake LAKE` in a child process, optionally crashing at a point."""
    env = {**os.environ, "MIXLAKE_LAKE": str(lake), "TOKENIZERS_PARALLELISM": "false"}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    proc = subprocess.run(
        [sys.executable, "-m", "mixlake", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def start(lake: Path, *args: str) -> subprocess.Popen[str]:
    """Start `mixlake ARGS` in the background (for concurrency and random-kill tests)."""
    env = {**os.environ, "MIXLAKE_LAKE": str(lake), "TOKENIZERS_PARALLELISM": "false"}
    env.pop(CRASH_ENV, None)
    return subprocess.Popen(
        [sys.executable, "-m", "mixlake", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def kill_after(proc: subprocess.Popen[str], seconds: float) -> bool:
    """SIGKILL `proc` after `seconds` unless it ended first; True when it was killed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    return True


@dataclass(frozen=True)
class State:
    """What a reader sees in a lake: latest version, row count, ids, columns, journal."""

    version: int
    rows: int
    ids: frozenset[str]
    columns: tuple[str, ...]
    unjournaled: tuple[int, ...]


def check_lake(path: Path) -> State:
    """Open the lake and assert the invariants every crash must keep.

    - it opens and every live version of `records` carries its journal entry;
    - ids are unique at the latest version (no row stored twice);
    - every pin points at a live version.
    """
    lake = Lake(path)
    ds = lake.records()
    table = ds.to_table(columns=["id"])
    ids = table.column("id")
    distinct = len(pc.unique(ids))
    assert distinct == table.num_rows, f"{table.num_rows - distinct} duplicated ids"
    entries = lake.journal_entries("records")
    live = [int(v["version"]) for v in ds.versions()]
    unjournaled = tuple(v for v in live if v not in entries)
    assert not unjournaled, f"versions without a journal entry: {unjournaled}"
    for name, version in lake.tags(include_pins=True).items():
        assert version in live, f"tag {name} points at missing version {version}"
    return State(
        int(ds.version),
        table.num_rows,
        frozenset(ids.to_pylist()),
        tuple(ds.schema.names),
        unjournaled,
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSON lines."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def text_rows(n: int, tag: str) -> list[dict[str, Any]]:
    """`n` distinct text rows, with a few near-duplicates among them."""
    out = []
    for i in range(n):
        base = i - 1 if i % 10 == 9 else i  # every tenth row nearly repeats the previous one
        words = " ".join(f"w{(base * 7 + k) % 97}" for k in range(12))
        out.append({"text": f"{tag} {base} {words}" + (" again" if base != i else "")})
    return out


MIX_SPEC = """\
name: crashmix
records: latest
seed: 3
total_rows: 60
components:
  - name: all
    sql: SELECT * FROM records
    weight: 1.0
splits: {train: 0.8, val: 0.1, test: 0.1}
format: {template: text}
"""
