"""Which record ids each evaluation covered: the `eval_ids` table.

A per-row column `eval_<target>_<suite>_<metric>` holds one value per record, whichever mix or
eval set it was evaluated on, and mixes over the same records share test ids (a record's split
is a hash of its id). So "the rows of mix M that have a value" is not "the rows evaluated on
M": `--limit` takes only the first N, and another mix's evaluation fills in others. Each
evaluation therefore records its ids, keyed like its `evals` rows (`run_id, suite, mix, split,
at`), and `compare` pairs exactly the ids both targets were evaluated on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import lance
import pyarrow as pa

from curation.lake import Lake
from curation.sqltext import in_list

EVAL_IDS_TABLE = "eval_ids"
EVAL_IDS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string()),
        pa.field("suite", pa.string()),
        pa.field("mix", pa.string()),
        pa.field("split", pa.string()),
        pa.field("at", pa.timestamp("us", tz="UTC")),
        pa.field("ids", pa.list_(pa.string())),
    ]
)

EvalKey = tuple[str, str, str | None, str | None, dt.datetime]
"""(run_id, suite, mix, split, at): one evaluation, as in its `evals` rows."""


def append_evaluated_ids(
    lake: Lake,
    label: str,
    suite: str,
    mix: str | None,
    split: str | None,
    at: dt.datetime,
    ids: Iterable[str],
) -> None:
    """Record the distinct ids one evaluation covered (repeats of a row count once)."""
    row = {"run_id": label, "suite": suite, "mix": mix, "split": split, "at": at}
    table = pa.Table.from_pylist([{**row, "ids": sorted(set(ids))}], schema=EVAL_IDS_SCHEMA)
    mode = "append" if lake.has_table(EVAL_IDS_TABLE) else "create"
    lance.write_dataset(table, lake.table_uri(EVAL_IDS_TABLE), mode=mode)


def read_evaluated_ids(lake: Lake, labels: Sequence[str]) -> dict[EvalKey, frozenset[str]]:
    """The ids of every recorded evaluation of these targets.

    Evaluations written before ids were recorded are absent: callers fall back to the mix.
    """
    if not labels or not lake.has_table(EVAL_IDS_TABLE):
        return {}
    table = lake.dataset(EVAL_IDS_TABLE).to_table(filter=in_list("run_id", labels))
    return {
        (r["run_id"], r["suite"], r["mix"], r["split"], r["at"]): frozenset(r["ids"])
        for r in table.to_pylist()
    }
