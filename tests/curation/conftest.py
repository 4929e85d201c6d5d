"""Fixtures shared by the curation tests: a real S3 API for the object-storage lake."""

from tests.curation.s3server import s3_lake, s3_server

__all__ = ["s3_lake", "s3_server"]
