"""The lease's conditional writes on Azure Blob Storage, through azure-storage-blob.

An upload with `overwrite=False` (`If-None-Match: *`) creates; an upload or delete with the
blob's etag and `MatchConditions.IfNotModified` (`If-Match`) replaces and deletes.

The account and credentials come from the variables Lance's Azure store reads (and
`--storage-option` sets): `AZURE_STORAGE_ACCOUNT_NAME`, then `AZURE_STORAGE_ACCOUNT_KEY`,
`AZURE_STORAGE_SAS_TOKEN` or `AZURE_STORAGE_TOKEN` (else azure-identity's default
credential, when installed); `AZURE_STORAGE_ENDPOINT` for another endpoint, and
`AZURE_STORAGE_USE_EMULATOR=true` for Azurite (`AZURITE_BLOB_STORAGE_URL`, default
`http://127.0.0.1:10000`, with its well-known development account and key).
"""

from __future__ import annotations

import os
from typing import Any

from curation.errors import CurationError

EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = (  # Azurite's published development key, not a secret
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class AzureLeaseStore:
    """The lease blob `key` in an Azure Blob container.

    `netloc` is the URI's authority: `container` (az://container/…) or
    `container@account.dfs.core.windows.net` (abfss://…).
    """

    def __init__(self, netloc: str, key: str) -> None:
        """Name the blob; the client is made on first use."""
        container, _, host = netloc.partition("@")
        self.container = container
        self.account = host.split(".", 1)[0] if host else None
        self.key = key
        self.where = f"az://{container}"
        self._blob: Any = None

    @property
    def blob(self) -> Any:
        """The lease's `BlobClient`, configured from the environment.

        Raises:
            CurationError: azure-storage-blob is missing, or no account is configured.
        """
        if self._blob is None:
            try:
                from azure.storage.blob import BlobServiceClient
            except ImportError:
                raise CurationError(
                    "writing to an az:// lake needs azure-storage-blob (`pip install "
                    "azure-storage-blob`) for its lock"
                ) from None
            url, credential = _account(self.account)
            service = BlobServiceClient(account_url=url, credential=credential)
            self._blob = service.get_blob_client(self.container, self.key)
        return self._blob

    def create(self, body: bytes) -> str | None:
        """Write the lease only if absent; its etag, or None when it exists.

        Raises:
            CurationError: the store refused for another reason.
        """
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        blob = self.blob
        try:
            out = blob.upload_blob(body, overwrite=False)
        except (ResourceExistsError, ResourceModifiedError):
            return None
        except Exception as e:
            raise CurationError(f"cannot write the lake's lock in {self.where}: {_short(e)}") from e
        return str(out["etag"])

    def read(self) -> tuple[bytes, str] | None:
        """The lease's body and etag, or None when it is absent.

        Raises:
            CurationError: the store refused the read.
        """
        from azure.core.exceptions import ResourceNotFoundError

        blob = self.blob
        try:
            got = blob.download_blob()
            return bytes(got.readall()), str(got.properties.etag)
        except ResourceNotFoundError:
            return None
        except Exception as e:
            raise CurationError(f"cannot read the lake's lock in {self.where}: {_short(e)}") from e

    def replace(self, body: bytes, etag: str) -> str | None:
        """Rewrite the lease only if unchanged; the new etag, or None when it changed.

        Raises:
            CurationError: the store refused for another reason.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        blob = self.blob
        try:
            out = blob.upload_blob(
                body, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        except Exception as e:
            raise CurationError(f"cannot renew the lake's lock in {self.where}: {_short(e)}") from e
        return str(out["etag"])

    def delete(self, etag: str) -> bool:
        """Delete the lease only if unchanged; False when it changed or is gone.

        Raises:
            CurationError: the store refused for another reason.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        blob = self.blob
        try:
            blob.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        except Exception as e:
            raise CurationError(f"cannot clear the lake's lock in {self.where}: {_short(e)}") from e
        return True


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _account(account: str | None) -> tuple[str, Any]:
    """The account URL and credential, from the variables Lance's Azure store reads."""
    emulator = (_env("AZURE_STORAGE_USE_EMULATOR") or "").lower() in ("1", "true", "yes")
    account = account or _env("AZURE_STORAGE_ACCOUNT_NAME") or (EMULATOR_ACCOUNT * emulator)
    if not account:
        raise CurationError(
            "writing to an az:// lake needs its storage account: set AZURE_STORAGE_ACCOUNT_NAME "
            "(or --storage-option account_name=NAME)"
        )
    url = _env("AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT")
    if url is None and emulator:
        url = f"{_env('AZURITE_BLOB_STORAGE_URL') or 'http://127.0.0.1:10000'}/{account}"
    url = (url or f"https://{account}.blob.core.windows.net").rstrip("/")
    key = _env("AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_MASTER_KEY")
    if key is None and emulator:
        key = EMULATOR_KEY
    if key is not None:
        return url, {"account_name": account, "account_key": key}
    sas = _env("AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_SAS_KEY")
    if sas is not None:
        from azure.core.credentials import AzureSasCredential

        return url, AzureSasCredential(sas.lstrip("?"))
    token = _env("AZURE_STORAGE_TOKEN")
    if token is not None:
        return url, _StaticToken(token)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise CurationError(
            "writing to an az:// lake needs credentials for its lock: set "
            "AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_TOKEN, or "
            "install azure-identity"
        ) from None
    return url, DefaultAzureCredential()


class _StaticToken:
    """A bearer token given as `AZURE_STORAGE_TOKEN`, as a `TokenCredential`."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, 2**31 - 1)


def _short(e: Exception) -> str:
    """The first line of an Azure error (they carry the whole XML answer)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
