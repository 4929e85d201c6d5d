"""Object-storage settings: `--storage-option KEY=VALUE` and `Lake(uri, storage_options=…)`.

Lance, boto3 and azure-storage-blob (the lake's lease on S3 and on Azure Blob) and every
library mixlake hands a lake URI to read the usual environment variables
(`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `AZURE_STORAGE_ACCOUNT_NAME`, …).
Options given on the command line or in Python are set there for the running process, so
every part of mixlake sees the same settings and no option has to be threaded through every
call. They are never written anywhere: not into the lake, the journal, a run folder or a log.
"""

from __future__ import annotations

import os

from curation.errors import CurationError

_ENV = {
    "endpoint": "AWS_ENDPOINT_URL",
    "endpoint_url": "AWS_ENDPOINT_URL",
    "aws_endpoint": "AWS_ENDPOINT_URL",
    "allow_http": "AWS_ALLOW_HTTP",
    "region": "AWS_DEFAULT_REGION",
    "aws_region": "AWS_DEFAULT_REGION",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "virtual_hosted_style_request": "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "service_account": "GOOGLE_SERVICE_ACCOUNT",
    "google_service_account": "GOOGLE_SERVICE_ACCOUNT",
    "account_name": "AZURE_STORAGE_ACCOUNT_NAME",
    "azure_storage_account_name": "AZURE_STORAGE_ACCOUNT_NAME",
    "account_key": "AZURE_STORAGE_ACCOUNT_KEY",
    "azure_storage_account_key": "AZURE_STORAGE_ACCOUNT_KEY",
    "sas_token": "AZURE_STORAGE_SAS_TOKEN",
    "azure_storage_sas_token": "AZURE_STORAGE_SAS_TOKEN",
    "use_emulator": "AZURE_STORAGE_USE_EMULATOR",
    "azure_storage_use_emulator": "AZURE_STORAGE_USE_EMULATOR",
    "azure_endpoint": "AZURE_STORAGE_ENDPOINT",
    "azure_storage_endpoint": "AZURE_STORAGE_ENDPOINT",
}
_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_", "AZURITE_")


def parse_storage_options(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` items as a dict.

    Raises:
        CurationError: an item without `=` or an empty key.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CurationError(
                f"bad --storage-option {item.split('=')[0]!r}: write KEY=VALUE, e.g. "
                "endpoint=http://127.0.0.1:9000"
            )
        out[key.strip()] = value
    return out


def apply_storage_options(options: dict[str, str]) -> None:
    """Set the environment variables that carry `options` for this process.

    Keys are Lance's object-store option names (`endpoint`, `allow_http`, `region`,
    `aws_access_key_id`, …) or the variables themselves (`AWS_…`, `GOOGLE_…`, `AZURE_…`, `AZURITE_…`).

    Raises:
        CurationError: a key mixlake does not know how to pass on.
    """
    for key, value in options.items():
        name = _ENV.get(key.lower()) or (key.upper() if key.upper().startswith(_PREFIXES) else None)
        if name is None:
            known = ", ".join(sorted(_ENV))
            raise CurationError(f"unknown storage option {key!r}; known: {known}, or AWS_…")
        os.environ[name] = value
        if name == "AWS_DEFAULT_REGION":
            os.environ["AWS_REGION"] = value
        if name == "AWS_ALLOW_HTTP":  # Lance's Azure store reads its own variable
            os.environ["AZURE_ALLOW_HTTP"] = value
