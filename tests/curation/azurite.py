"""A real Azure Blob API on 127.0.0.1 for the tests: Azurite, Microsoft's local emulator.

The npm package `azurite` is installed once, with `npm ci` from the lock in `azurite_lock/`
(every package pinned), into a cache folder (`MIXLAKE_AZURITE_CACHE`, default
`~/.cache/mixlake/azurite-<version>-<lock hash>`), then
started in memory on a free port by the `az_server` fixture. It serves a random account and
key made for the session (so a test can look for the key) and Azurite's well-known
development account. Lance and the lake's lease both talk to it over HTTP. The tests skip
only when node or npm is missing; a failed install fails them.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import environment, free_port, stop, wait_for_port

AZURITE_VERSION = "3.37.0"
ACCOUNT = "mixlake" + uuid.uuid4().hex[:8]
SECRET = base64.b64encode(b"mixlake-test-secret-" + uuid.uuid4().hex.encode()).decode()
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_ENV = (
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ENDPOINT",
    "AZURE_ALLOW_HTTP",
    "AZURE_STORAGE_USE_EMULATOR",
    "AZURITE_BLOB_STORAGE_URL",
)


LOCK = Path(__file__).with_name("azurite_lock")
"""`package.json` and `package-lock.json` pinning Azurite and every package it pulls in."""


def azurite_bin() -> Path:
    """The `azurite-blob` executable, installed with `npm ci` from the lock on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run Azurite, the local Azure Blob API")
    digest = hashlib.sha256((LOCK / "package-lock.json").read_bytes()).hexdigest()[:12]
    default = Path.home() / ".cache" / "mixlake" / f"azurite-{AZURITE_VERSION}-{digest}"
    cache = Path(os.environ.get("MIXLAKE_AZURITE_CACHE") or default)
    exe = cache / "node_modules" / ".bin" / "azurite-blob"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".install.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one install at a time (parallel test sessions)
        if not exe.exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(LOCK / name, cache / name)
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=cache,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0 and exe.exists(), f"npm ci azurite: {done.stderr}"
    return exe


@pytest.fixture(scope="session")
def az_server() -> Iterator[str]:
    """The blob endpoint of an Azurite server (`http://127.0.0.1:PORT`).

    The AZURE_* variables point every client at it with the session's account and key.
    """
    exe = azurite_bin()
    port = free_port()
    workspace = tempfile.mkdtemp(prefix="mixlake-azurite-")
    args = [str(exe), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    args += ["--inMemoryPersistence", "--silent", "--disableTelemetry", "--skipApiVersionCheck"]
    accounts = f"{ACCOUNT}:{SECRET};{EMULATOR_ACCOUNT}:{EMULATOR_KEY}"
    env = {**os.environ, "AZURITE_ACCOUNTS": accounts}
    log = Path(workspace) / "azurite.log"
    with log.open("wb") as out:  # the child keeps its own handle
        proc = subprocess.Popen(args, stdout=out, stderr=out, env=env, cwd=workspace)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(
            proc,
            port,
            "azurite",
            timeout=60,
            details=lambda: ": " + log.read_text(errors="replace")[-800:],
        )
        values = {
            "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": SECRET,
            "AZURE_STORAGE_ENDPOINT": f"{endpoint}/{ACCOUNT}",
            "AZURE_ALLOW_HTTP": "true",
        }
        with environment(_ENV, values):
            yield endpoint
    finally:
        stop(proc)
        shutil.rmtree(workspace, ignore_errors=True)


def container_client(endpoint: str, container: str, account: str = ACCOUNT) -> Any:
    """An azure-storage-blob `ContainerClient` on the test server."""
    from azure.storage.blob import BlobServiceClient

    key = SECRET if account == ACCOUNT else EMULATOR_KEY
    service = BlobServiceClient(
        account_url=f"{endpoint}/{account}",
        credential={"account_name": account, "account_key": key},
    )
    return service.get_container_client(container)


@pytest.fixture
def az_lake(az_server: str) -> str:
    """A fresh `az://` lake URI (its own container) on the test server."""
    container = "mixlake-" + uuid.uuid4().hex[:10]
    container_client(az_server, container).create_container()
    return f"az://{container}/lake"


def container_blobs(uri: str) -> dict[str, bytes]:
    """Every blob of the lake's container, name → bytes."""
    container = uri.removeprefix("az://").split("/", 1)[0]
    endpoint = os.environ["AZURE_STORAGE_ENDPOINT"].rsplit("/", 1)[0]
    client = container_client(endpoint, container)
    names = [b.name for b in client.list_blobs()]
    return {n: client.download_blob(n).readall() for n in names}


def leaked_keys(uri: str, *folders: Path, texts: tuple[str, ...] = ()) -> list[str]:
    """Where the session's account key appears: blobs, files under `folders`, `texts`."""
    key = SECRET.encode()
    found = [f"az://{n}" for n, body in container_blobs(uri).items() if key in body]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and key in path.read_bytes():
                found.append(str(path))
    found += [f"text {i}" for i, t in enumerate(texts) if SECRET in t]
    return found
