"""A real S3 API on 127.0.0.1 for the tests.

`moto_server` from `moto[server]`, started and stopped by the `s3_lake` fixture. Lance and the
lake's lease both talk to it over HTTP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import environment, free_port, stop, wait_for_port

SECRET = "mixlake-test-secret-" + uuid.uuid4().hex[:8]
KEY_ID = "mixlake-test-key-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint of a moto S3 server; the AWS_* variables point every client at it."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
        "moto_server"
    )
    assert exe, "moto_server is missing: `make install` installs moto[server]"
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(proc, port, "moto_server", timeout=30)
        values = {
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
        with environment(_ENV, values):
            yield endpoint
    finally:
        stop(proc)


_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ALLOW_HTTP",
)


@pytest.fixture
def s3_lake(s3_server: str) -> str:
    """A fresh `s3://` lake URI (its own bucket) on the test server."""
    import boto3

    bucket = "mixlake-" + uuid.uuid4().hex[:10]
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/lake"


def bucket_objects(uri: str) -> dict[str, bytes]:
    """Every object of the lake's bucket, key → bytes."""
    import boto3

    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def leaked_keys(uri: str, *folders: Path, texts: tuple[str, ...] = ()) -> list[str]:
    """Where the access key id or the secret appear.

    Searches bucket objects, files under `folders` (a run folder, say) and `texts` (a command's
    output); places are named as `s3://…`, paths or `text N`.
    """
    keys = (SECRET.encode(), KEY_ID.encode())
    found = [f"s3://{k}" for k, body in bucket_objects(uri).items() if any(x in body for x in keys)]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and any(x in path.read_bytes() for x in keys):
                found.append(str(path))
    found += [f"text {i}" for i, t in enumerate(texts) if any(x.decode() in t for x in keys)]
    return found
