"""Crash points for the fault-injection tests (SQLite's habit: the crash test is in the suite).

Every write path calls `crash_point(name)` just before and just after each commit and after
each data file it writes. Normally that is one dictionary lookup. With
`MIXLAKE_CRASH_AT=name` (or `name:N` for the N-th time that point is reached) in the
environment, the process kills itself there with SIGKILL: no `finally`, no atexit, exactly
what a power cut or `kill -9` leaves. `tests/curation/test_crash.py` runs every command with
every point and checks what the lake looks like afterwards.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "MIXLAKE_CRASH_AT"

_target = os.environ.get(CRASH_ENV, "")
_head, _, _count = _target.rpartition(":")
_name, _remaining = (_head, int(_count)) if _count.isdigit() else (_target, 1)
_seen: set[str] = set()


def crash_point(name: str) -> None:
    """Die here with SIGKILL when `MIXLAKE_CRASH_AT` names this point (else do nothing)."""
    global _remaining
    if not _name:
        return
    _seen.add(name)
    if name != _name:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)


def points_seen() -> set[str]:
    """Crash points reached so far in this process while a target was set (for tests)."""
    return set(_seen)
