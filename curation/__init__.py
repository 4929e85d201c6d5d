"""The lake: the versioned `records` table, ingest, history, SQL and (later) enrichment steps."""

from curation.errors import CurationError
from curation.history import delete, diff, gc, rollback
from curation.ingest import IngestReport, ingest, list_rejects
from curation.lake import Lake, VersionEntry
from curation.query import sql
from curation.stats import stats

__all__ = [
    "CurationError",
    "IngestReport",
    "Lake",
    "VersionEntry",
    "delete",
    "diff",
    "gc",
    "ingest",
    "list_rejects",
    "rollback",
    "sql",
    "stats",
]
