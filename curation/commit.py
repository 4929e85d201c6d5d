"""The one commit path: every mixlake write is one Lance commit that carries its journal entry.

Two pieces make a lake operation trustworthy:

- `Entry`: what made a version (operation, message, arguments, rows added/removed). It is
  stored in the Lance transaction's properties of the very commit it describes, so the journal
  can never disagree with the table: a crash leaves the old version (no entry) or the new
  version (with its entry), never a version without one.
- `writer_lock`: one writer at a time per lake, like SQLite's write lock. A mixlake write
  reads the latest version, works, and commits on top of exactly that version while holding
  it, so concurrent ingests cannot both add the same id and two materializations cannot take
  the same mix version. Readers never take it. On a local lake it is an `flock` on
  `<lake>/_mixlake/writer.lock`: the kernel releases it when its process dies (kill -9 leaves
  no stale lock). On `s3://` and `az://` it is a lease object written with conditional
  writes (`curation.objectlock`), which a killed holder loses after `MIXLAKE_LOCK_TTL`
  seconds. A writer that finds it held says who holds it and waits (`MIXLAKE_LOCK_TIMEOUT`
  seconds, default: forever; 0 fails at once, naming the holder).

`commit` refuses to commit on top of a version that moved under the lock (only a non-mixlake
writer can do that), so nothing is ever rebased silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lance
import orjson
from lance.dataset import Transaction

from curation.errors import CurationError, one_line
from curation.objectlock import ObjectStoreLock

PROP_PREFIX = "mixlake."
LOCK_ENV = "MIXLAKE_LOCK_TIMEOUT"

Notice = Callable[[str], None]
"""Called with a one-line notice (e.g. "waiting for the writer lock held by …")."""


@dataclass(frozen=True)
class Entry:
    """What made a table version; stored in the properties of that version's commit."""

    operation: str
    message: str
    args: dict[str, Any] = field(default_factory=dict)
    rows_added: int = 0
    rows_removed: int = 0

    def properties(self) -> dict[str, str]:
        """The Lance transaction properties that carry this entry."""
        return {
            "mixlake.operation": self.operation,
            "mixlake.message": self.message,
            "mixlake.args": orjson.dumps(self.args, default=str).decode(),
            "mixlake.rows_added": str(int(self.rows_added)),
            "mixlake.rows_removed": str(int(self.rows_removed)),
            "mixlake.at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }

    @classmethod
    def from_properties(cls, props: dict[str, str] | None) -> Entry | None:
        """The entry a commit carries, or None for a commit mixlake did not make."""
        if not props or "mixlake.operation" not in props:
            return None
        return cls(
            operation=props["mixlake.operation"],
            message=props.get("mixlake.message", ""),
            args=orjson.loads(props.get("mixlake.args", "{}")),
            rows_added=int(props.get("mixlake.rows_added", "0")),
            rows_removed=int(props.get("mixlake.rows_removed", "0")),
        )


def commit(
    table_uri: str,
    operation: lance.LanceOperation.BaseOperation,
    read_version: int,
    entry: Entry,
    *,
    extra: dict[str, str] | None = None,
) -> int:
    """Commit `operation` on top of `read_version` as one new version carrying `entry`.

    Call it while holding `writer_lock`. Lance would rebase an append over versions made
    since `read_version`; mixlake never wants that (its dedup and mix numbering looked at
    `read_version`), so a moved table is an error instead.

    Returns:
        The new version number (`read_version + 1`).

    Raises:
        CurationError: the table moved since `read_version` (a writer outside mixlake), or
            Lance refused the commit.
    """
    latest = _latest_version(table_uri)
    if latest is not None and latest != read_version:
        raise CurationError(
            f"{_name(table_uri)} moved from version {read_version} to {latest} during this "
            "operation (a write outside mixlake's writer lock); nothing was committed — rerun it"
        )
    check_lease(table_uri)
    props = {**entry.properties(), **(extra or {})}
    tx = Transaction(read_version, operation, transaction_properties=props)
    try:
        ds = lance.LanceDataset.commit(table_uri, tx, max_retries=0)
    except OSError as e:
        raise CurationError(f"committing {_name(table_uri)} failed: {one_line(e)}") from e
    return int(ds.version)


def read_entry(ds: lance.LanceDataset, version: int) -> Entry | None:
    """The entry carried by `version` of a dataset (None when mixlake did not make it)."""
    try:
        tx = ds.read_transaction(version)
    except (OSError, ValueError):
        return None
    return Entry.from_properties(tx.transaction_properties if tx else None)


def read_properties(ds: lance.LanceDataset, version: int) -> dict[str, str]:
    """All transaction properties of `version` (empty when there are none)."""
    try:
        tx = ds.read_transaction(version)
    except (OSError, ValueError):
        return {}
    return dict(tx.transaction_properties or {}) if tx else {}


# ------------------------------------------------------------------------ the writer lock
_held: dict[str, list[Any]] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def writer_lock(lake_uri: str, operation: str, *, notice: Notice | None = None) -> Iterator[None]:
    """Hold the lake's writer lock for the body (reentrant within one thread).

    Args:
        lake_uri: the lake.
        operation: what the holder does, shown to writers that wait (e.g. "ingest").
        notice: called once with a one-line message when the lock is held by someone else.

    Raises:
        CurationError: the lock stayed held past `MIXLAKE_LOCK_TIMEOUT` seconds.
    """
    remote = "://" in lake_uri
    if remote and os.environ.get("MIXLAKE_SINGLE_WRITER") == "1":
        yield  # the user vouches that no other process writes to this lake
        return
    key = lake_uri.rstrip("/") if remote else str(Path(lake_uri).resolve())
    with _held_guard:
        entry = _held.setdefault(key, [threading.RLock(), 0, None])
    rlock: threading.RLock = entry[0]
    timeout = _timeout()
    if not rlock.acquire(timeout=-1 if timeout is None else max(timeout, 0.001)):
        raise CurationError(_held_message(key, "another thread of this process", timeout))
    try:
        if entry[1] == 0:
            if remote:
                lease = ObjectStoreLock(key, operation)
                lease.acquire(timeout, notice or _stderr_notice)
                entry[2] = lease
            else:
                entry[2] = _acquire_file(key, operation, timeout, notice or _stderr_notice)
        entry[1] += 1
        try:
            yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                held, entry[2] = entry[2], None
                if isinstance(held, ObjectStoreLock):
                    held.release()
                else:
                    with contextlib.suppress(OSError):
                        os.ftruncate(held, 0)
                    os.close(held)  # releases the flock
    finally:
        rlock.release()


def check_lease(table_uri: str) -> None:
    """Refuse to commit to an object-store lake whose writer lease was lost."""
    if "://" not in table_uri:
        return
    lake_uri = table_uri.rstrip("/").rsplit("/", 1)[0]
    held = _held.get(lake_uri, [None, 0, None])[2]
    if isinstance(held, ObjectStoreLock):
        held.check()


def _stderr_notice(message: str) -> None:
    print(f"mixlake: {message}", file=sys.stderr, flush=True)


def _acquire_file(key: str, operation: str, timeout: float | None, notice: Notice | None) -> int:
    folder = Path(key) / "_mixlake"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "writer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if deadline is not None and time.monotonic() >= deadline:
                holder = _holder(path)
                os.close(fd)
                raise CurationError(_held_message(key, holder, timeout)) from None
            if not told and notice is not None:
                notice(f"waiting for the lake's writer lock, held by {_holder(path)}")
                told = True
            time.sleep(0.05)
    os.ftruncate(fd, 0)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    os.pwrite(fd, f"pid {os.getpid()}: {operation} since {stamp}".encode(), 0)
    return fd


def _holder(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another mixlake process"


def _held_message(key: str, holder: str, timeout: float | None) -> str:
    waited = f" after {timeout:g}s" if timeout else ""
    return (
        f"the lake at {key} is being written by {holder}; gave up waiting{waited} "
        f"(set {LOCK_ENV}=SECONDS to wait longer); nothing was changed"
    )


def _timeout() -> float | None:
    raw = os.environ.get(LOCK_ENV, "").strip()
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        raise CurationError(f"{LOCK_ENV}={raw!r} is not a number of seconds") from None


# ------------------------------------------------------------------------------ helpers
def _latest_version(table_uri: str) -> int | None:
    try:
        return int(lance.dataset(table_uri).version)
    except (OSError, ValueError):
        return None


def _name(table_uri: str) -> str:
    return table_uri.rstrip("/").rsplit("/", 1)[-1].removesuffix(".lance")
