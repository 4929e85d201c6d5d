"""The writer lock of a lake on object storage: a lease object written with conditional puts.

S3 (and S3-compatible stores) refuse a `PUT` with `If-None-Match: *` when the object exists,
and a `PUT`/`DELETE` with `If-Match: <etag>` when it changed. That is enough for a lease:

- acquire: create `<lake>/_mixlake/writer.lock` only if absent; its body names the holder
  and when the lease expires;
- keep: a heartbeat thread rewrites it with `If-Match` every third of the lease time; a
  failed rewrite means the lease was lost (it expired and another writer took it), and
  `check()` then refuses to commit;
- release: delete it with `If-Match` (only our own lease);
- a holder killed with -9 cannot release: its lease expires after `MIXLAKE_LOCK_TTL`
  seconds (default 30) and the next writer removes it with `If-Match` on the dead lease.

Credentials and endpoint come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
…), the same ones Lance reads; nothing secret is written into the lease.
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
from typing import Any
from urllib.parse import urlparse

from curation.errors import CurationError

TTL_ENV = "MIXLAKE_LOCK_TTL"


class ObjectStoreLock:
    """A lease on `<lake>/_mixlake/writer.lock` in an S3 bucket."""

    def __init__(self, lake_uri: str, operation: str) -> None:
        """Prepare the lease for the lake at an `s3://bucket/prefix` URI."""
        parsed = urlparse(lake_uri)
        if parsed.scheme not in ("s3", "s3a"):
            raise CurationError(
                f"writing to a {parsed.scheme}:// lake needs a writer lock mixlake has only for "
                "s3:// (and S3-compatible stores); set MIXLAKE_SINGLE_WRITER=1 if you are sure "
                "no other process writes to this lake"
            )
        self.bucket = parsed.netloc
        prefix = parsed.path.strip("/")
        self.key = f"{prefix}/_mixlake/writer.lock" if prefix else "_mixlake/writer.lock"
        self.operation = operation
        self.owner = uuid.uuid4().hex
        self.ttl = _ttl()
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    # ------------------------------------------------------------------ life cycle
    def acquire(self, timeout: float | None, notice: Callable[[str], None] | None) -> None:
        """Take the lease, waiting while a live holder has it (up to `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            if self._try_create():
                break
            holder, etag, expired = self._read()
            if expired and etag is not None:
                self._remove_dead(etag)
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
        """Raise when the lease was lost, so nothing is committed without it."""
        if self.lost:
            raise CurationError(
                "lost the lake's writer lock (its lease expired: the process stalled for more "
                f"than {self.ttl:g}s); nothing was committed — rerun the command"
            )

    def release(self) -> None:
        """Stop renewing and delete our own lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.etag is not None and not self.lost:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        self.etag = None

    # ------------------------------------------------------------------ S3 calls
    @property
    def client(self) -> Any:
        """A boto3 S3 client configured from the environment (endpoint included)."""
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise CurationError(
                    "writing to an s3:// lake needs boto3 (`pip install boto3`) for its lock"
                ) from None
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            self._client = boto3.client("s3", endpoint_url=endpoint or None)
        return self._client

    def _body(self) -> bytes:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.ttl)
        return json.dumps(
            {
                "owner": self.owner,
                "holder": f"pid {os.getpid()} on {socket.gethostname()}: {self.operation}",
                "expires": expires.isoformat(),
            }
        ).encode()

    def _try_create(self) -> bool:
        try:
            out = self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=self._body(), IfNoneMatch="*"
            )
        except Exception as e:
            if _precondition_failed(e):
                return False
            raise CurationError(f"cannot write the lake's lock in s3://{self.bucket}: {e}") from e
        self.etag = out["ETag"]
        return True

    def _read(self) -> tuple[str, str | None, bool]:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as e:
            if _not_found(e):
                return "nobody (just released)", None, False
            raise CurationError(f"cannot read the lake's lock in s3://{self.bucket}: {e}") from e
        try:
            body = json.loads(got["Body"].read())
            expires = dt.datetime.fromisoformat(body["expires"])
            holder = str(body.get("holder", "another mixlake process"))
        except (ValueError, KeyError, TypeError):
            return "an unreadable lock", got.get("ETag"), True
        return holder, got.get("ETag"), expires < dt.datetime.now(dt.UTC)

    def _remove_dead(self, etag: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except Exception as e:
            if not (_precondition_failed(e) or _not_found(e)):
                raise CurationError(f"cannot clear an expired lock: {e}") from e

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                out = self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=self._body(), IfMatch=self.etag
                )
                self.etag = out["ETag"]
            except Exception:
                self.lost = True
                return


def _precondition_failed(e: Exception) -> bool:
    code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def _not_found(e: Exception) -> bool:
    code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def _ttl() -> float:
    raw = os.environ.get(TTL_ENV, "").strip()
    try:
        return max(float(raw), 1.0) if raw else 30.0
    except ValueError:
        raise CurationError(f"{TTL_ENV}={raw!r} is not a number of seconds") from None
