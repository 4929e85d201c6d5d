"""Fixtures shared by the curation tests.

A real S3 API and a real Azure Blob API (Azurite) for the object-storage lake, and a two-node
Ray cluster on this machine for the distributed engine (`ray_address`, in tests/conftest.py:
one cluster for the whole session, shared with the eval tests).
"""

from tests.curation.azurite import az_lake, az_server
from tests.curation.s3server import s3_lake, s3_server

__all__ = ["az_lake", "az_server", "s3_lake", "s3_server"]
