"""The lease's conditional writes on S3 (and S3-compatible stores), through boto3.

`PUT` with `If-None-Match: *` creates, `PUT`/`DELETE` with `If-Match: <etag>` replace and
delete. The client is configured from the environment Lance reads (`AWS_ACCESS_KEY_ID`,
`AWS_ENDPOINT_URL`, …), which `--storage-option` sets.
"""

from __future__ import annotations

import os
from typing import Any

from curation.errors import CurationError


class S3LeaseStore:
    """The lease object `key` in S3 bucket `bucket`."""

    def __init__(self, bucket: str, key: str) -> None:
        """Name the object; the client is made on first use."""
        self.bucket = bucket
        self.key = key
        self.where = f"s3://{bucket}"
        self._client: Any = None

    @property
    def client(self) -> Any:
        """A boto3 S3 client configured from the environment (endpoint included).

        Raises:
            CurationError: boto3 is not installed.
        """
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

    def create(self, body: bytes) -> str | None:
        """Write the lease only if absent; its etag, or None when it exists.

        Raises:
            CurationError: the store refused for another reason.
        """
        try:
            out = self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, IfNoneMatch="*"
            )
        except Exception as e:
            if _precondition_failed(e):
                return None
            raise CurationError(f"cannot write the lake's lock in {self.where}: {e}") from e
        return str(out["ETag"])

    def read(self) -> tuple[bytes, str] | None:
        """The lease's body and etag, or None when it is absent.

        Raises:
            CurationError: the store refused the read.
        """
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as e:
            if _not_found(e):
                return None
            raise CurationError(f"cannot read the lake's lock in {self.where}: {e}") from e
        return bytes(got["Body"].read()), str(got.get("ETag", ""))

    def replace(self, body: bytes, etag: str) -> str | None:
        """Rewrite the lease only if unchanged; the new etag, or None when it changed.

        Raises:
            CurationError: the store refused for another reason.
        """
        try:
            out = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfMatch=etag)
        except Exception as e:
            if _precondition_failed(e) or _not_found(e):
                return None
            raise CurationError(f"cannot renew the lake's lock in {self.where}: {e}") from e
        return str(out["ETag"])

    def delete(self, etag: str) -> bool:
        """Delete the lease only if unchanged; False when it changed or is gone.

        Raises:
            CurationError: the store refused for another reason.
        """
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except Exception as e:
            if _precondition_failed(e) or _not_found(e):
                return False
            raise CurationError(f"cannot clear the lake's lock in {self.where}: {e}") from e
        return True


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _precondition_failed(e: Exception) -> bool:
    return _code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def _not_found(e: Exception) -> bool:
    return _code(e) in ("NoSuchKey", "404", "NotFound")
