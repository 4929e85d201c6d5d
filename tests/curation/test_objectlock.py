"""The object-store lease's refusals that need no server: each is one line naming the fix.

The lease against real APIs is tested in test_s3.py (moto_server) and test_az.py (Azurite).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from curation.errors import CurationError
from curation.objectlock import ObjectStoreLock

_AZURE = (
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_USE_EMULATOR",
    "AZURE_STORAGE_ENDPOINT",
)


@pytest.fixture
def no_azure(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Azure settings in the environment."""
    for name in _AZURE:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_an_az_lake_needs_its_account(no_azure: pytest.MonkeyPatch) -> None:
    lease = ObjectStoreLock("az://container/lake", "ingest")
    with pytest.raises(CurationError, match="AZURE_STORAGE_ACCOUNT_NAME") as raised:
        lease.acquire(0, None)
    assert "\n" not in str(raised.value)


def test_an_az_lake_needs_a_credential(no_azure: pytest.MonkeyPatch) -> None:
    no_azure.setenv("AZURE_STORAGE_ACCOUNT_NAME", "someaccount")
    no_azure.setitem(sys.modules, "azure.identity", None)  # not installed
    lease = ObjectStoreLock("az://container/lake", "ingest")
    with pytest.raises(CurationError, match=r"^writing to an az:// lake needs credentials"):
        lease.acquire(0, None)


def test_schemes_without_a_lease_are_refused() -> None:
    for uri in ("gs://bucket/lake", "hf://datasets/x"):
        with pytest.raises(CurationError, match="MIXLAKE_SINGLE_WRITER=1"):
            ObjectStoreLock(uri, "ingest")


def test_a_bad_ttl_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXLAKE_LOCK_TTL", "soon")
    with pytest.raises(CurationError, match="MIXLAKE_LOCK_TTL='soon' is not a number"):
        ObjectStoreLock("az://container/lake", "ingest")


def test_the_cli_names_what_is_missing(no_azure: pytest.MonkeyPatch) -> None:
    """`mixlake init --lake az://…` without an account: one line, exit 2, nothing written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    done = subprocess.run(
        [sys.executable, "-m", "mixlake", "init", "--lake", "az://container/lake"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: writing to an az:// lake needs its storage account: set "
        "AZURE_STORAGE_ACCOUNT_NAME (or --storage-option account_name=NAME)"
    ]
