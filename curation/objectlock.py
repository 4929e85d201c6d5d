"""The writer lock of a lake on object storage: a lease object written with conditional writes.

S3 and Azure Blob refuse a create when the object exists (`If-None-Match: *`), and a
rewrite/delete when it changed since it was read (`If-Match: <etag>`). That is enough for a
lease:

- acquire: create `<lake>/_mixlake/writer.lock` only if absent; its body names the holder
  and when the lease expires;
- keep: a heartbeat thread rewrites it with `If-Match` every third of the lease time; a
  failed rewrite means the lease was lost (it expired and another writer took it), and
  `check()` then refuses to commit;
- release: delete it with `If-Match` (only our own lease);
- a holder killed with -9 cannot release: its lease expires after `MIXLAKE_LOCK_TTL`
  seconds (default 30) and the next writer removes it with `If-Match` on the dead lease.

The lease logic is here; the four conditional calls are a `LeaseStore` per scheme:
`curation.objectlock_s3` (s3://, boto3) and `curation.objectlock_az` (az://, abfs[s]://,
azure-storage-blob). Credentials and endpoint come from the environment, the same variables
Lance reads; nothing secret is written into the lease.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlparse

from curation.errors import CurationError

TTL_ENV = "MIXLAKE_LOCK_TTL"
LOCK_NAME = "_mixlake/writer.lock"
S3_SCHEMES = ("s3", "s3a")
AZURE_SCHEMES = ("az", "azure", "abfs", "abfss")


class LeaseStore(Protocol):
    """The conditional writes of one object store, on the lease object of one lake.

    Each call raises `CurationError` for anything but the expected "it exists" / "it changed"
    / "it is gone" answers, which come back as `None` / `False`.
    """

    where: str
    """The container, for messages (e.g. `s3://bucket`)."""

    def create(self, body: bytes) -> str | None:
        """Write the object only if it is absent; its etag, or None when it exists."""
        ...

    def read(self) -> tuple[bytes, str] | None:
        """The object's body and etag, or None when it is absent."""
        ...

    def replace(self, body: bytes, etag: str) -> str | None:
        """Rewrite the object only if its etag is `etag`; the new etag, or None if it changed."""
        ...

    def delete(self, etag: str) -> bool:
        """Delete the object only if its etag is `etag`; False when it changed or is gone."""
        ...


def lease_store(lake_uri: str) -> LeaseStore:
    """The lease store for the lake at `lake_uri`, chosen by its scheme.

    Raises:
        CurationError: a scheme mixlake has no lease for (gs://, …).
    """
    parsed = urlparse(lake_uri)
    prefix = parsed.path.strip("/")
    key = f"{prefix}/{LOCK_NAME}" if prefix else LOCK_NAME
    if parsed.scheme in S3_SCHEMES:
        from curation.objectlock_s3 import S3LeaseStore

        return S3LeaseStore(parsed.netloc, key)
    if parsed.scheme in AZURE_SCHEMES:
        from curation.objectlock_az import AzureLeaseStore

        return AzureLeaseStore(parsed.netloc, key)
    raise CurationError(
        f"writing to a {parsed.scheme}:// lake needs a writer lock mixlake has only for s3:// "
        "(and S3-compatible stores) and az:// (Azure Blob); set MIXLAKE_SINGLE_WRITER=1 if "
        "you are sure no other process writes to this lake"
    )


class ObjectStoreLock:
    """A lease on `<lake>/_mixlake/writer.lock` in an object store (S3 or Azure Blob)."""

    def __init__(self, lake_uri: str, operation: str, store: LeaseStore | None = None) -> None:
        """Prepare the lease for the lake at `lake_uri` (`s3://bucket/prefix`, `az://…`).

        Args:
            lake_uri: the lake.
            operation: what the holder does, shown to writers that wait.
            store: the conditional writes to use; by default the one of the URI's scheme.

        Raises:
            CurationError: a scheme without a lease store, or a bad `MIXLAKE_LOCK_TTL`.
        """
        self.store = store if store is not None else lease_store(lake_uri)
        self.operation = operation
        self.owner = uuid.uuid4().hex
        self.ttl = _ttl()
        self.etag: str | None = None
        self.lost = False
        self._renewed = 0.0  # monotonic time the last write of the lease was sent
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle
    def acquire(self, timeout: float | None, notice: Callable[[str], None] | None) -> None:
        """Take the lease, waiting while a live holder has it (up to `timeout` seconds).

        Raises:
            CurationError: a live holder kept it past `timeout`, or the store failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            sent = time.monotonic()
            self.etag = self.store.create(self._body())
            if self.etag is not None:
                self._renewed = sent
                break
            holder, etag, expired = self._read()
            if expired and etag is not None:
                self.store.delete(etag)  # a dead lease: only if nobody renewed it meanwhile
                continue
            if deadline is not None and time.monotonic() >= deadline:
                waited = f" after {timeout:g}s" if timeout else ""
                raise CurationError(
                    f"the lake is being written by {holder}; gave up waiting{waited} (set "
                    "MIXLAKE_LOCK_TIMEOUT=SECONDS to wait longer); nothing was changed"
                )
            if not told and notice is not None:
                notice(f"waiting for the lake's writer lock, held by {holder}")
                told = True
            time.sleep(0.2)
        self._thread = threading.Thread(target=self._beat, name="mixlake-lease", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise when the lease was lost, so nothing is committed without it.

        Lost means a renewal failed, or none succeeded for a whole lease time (the process
        was paused or the store unreachable): by then another writer may hold it, whether
        or not the heartbeat has run since.

        Raises:
            CurationError: the lease expired and may be another writer's now.
        """
        if time.monotonic() - self._renewed >= self.ttl:
            self.lost = True
        if self.lost:
            raise CurationError(
                "lost the lake's writer lock (its lease expired: the process stalled for more "
                f"than {self.ttl:g}s); nothing was committed — rerun the command"
            )

    def release(self) -> None:
        """Stop renewing and delete our own lease (only ours: the delete is conditional)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.etag is not None:
            with contextlib.suppress(Exception):
                self.store.delete(self.etag)
        self.etag = None

    # ------------------------------------------------------------------ internals
    def _body(self) -> bytes:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.ttl)
        return json.dumps(
            {
                "owner": self.owner,
                "holder": f"pid {os.getpid()} on {socket.gethostname()}: {self.operation}",
                "expires": expires.isoformat(),
            }
        ).encode()

    def _read(self) -> tuple[str, str | None, bool]:
        """Who holds the lease, its etag (None: gone) and whether it has expired."""
        got = self.store.read()
        if got is None:
            return "nobody (just released)", None, False
        raw, etag = got
        try:
            body = json.loads(raw)
            expires = dt.datetime.fromisoformat(body["expires"])
            holder = str(body.get("holder", "another mixlake process"))
        except (ValueError, KeyError, TypeError):
            return "an unreadable lock", etag, True
        return holder, etag, expires < dt.datetime.now(dt.UTC)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            sent = time.monotonic()
            try:
                etag = None if self.etag is None else self.store.replace(self._body(), self.etag)
            except Exception:
                etag = None
            if etag is None or self.lost:
                self.lost = True
                return
            self.etag, self._renewed = etag, sent


def _ttl() -> float:
    raw = os.environ.get(TTL_ENV, "").strip()
    try:
        return max(float(raw), 1.0) if raw else 30.0
    except ValueError:
        raise CurationError(f"{TTL_ENV}={raw!r} is not a number of seconds") from None
