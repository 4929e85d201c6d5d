"""Ingest: input files → new rows of `records`, committed as one version.

`run.ingest` is the entry point. Readers, one module per format family, turn a file into
(location, row) pairs or Arrow tables (`readers` resolves the input and dispatches to
`read_jsonl`, `read_csv`, `read_columnar`, `read_chitchat`; `inputs` holds what they share).
`intake` sends each file through one of two paths that must agree exactly
(`curation.testing.agreement` checks it): the row path `row.normalize_row`, which defines a
record and names every rejection's line, and the bulk path `bulk.normalize_table` (Arrow
compute, with `bulk_turns`, `bulk_meta`, `bulk_ids` and `bulk_arrow`). `pipeline.ahead`
overlaps the stages; `rejects` owns the `rejects` table.
"""

from curation.ingest.rejects import list_rejects
from curation.ingest.row import parse_mapping
from curation.ingest.run import IngestReport, ingest

__all__ = ["IngestReport", "ingest", "list_rejects", "parse_mapping"]
