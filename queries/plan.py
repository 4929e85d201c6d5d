"""Selecting a mix: run each component's SQL at the pinned version, size it, sample it, split it.

Everything here reads; nothing writes. `check_mix` returns the plan with its problems;
`materialize_mix` (in `queries.materialize`) writes what `select_mix` chose.

Determinism: candidates are read in id order (or `order_by` order), every random choice comes
from a numpy Generator seeded with `[seed, crc32(component)]`, and splits come from a hash of
the id alone, so the same spec on the same version gives the same ordered ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation import CurationError, Lake
from curation.errors import one_line
from curation.query import connect
from queries.candidates import Candidates, read_candidates
from queries.errors import QueryError
from queries.sampling import assign_splits, take_order, take_rows, targets
from queries.spec import MixSpec
from queries.validate import (
    CONTAMINATED,
    TOKENS,
    field_problems,
    first_line,
    message_problems,
    static_problems,
)

_SHUFFLE_KEY = 0x6D6978  # "mix": the global-shuffle stream, apart from every component's


@dataclass(frozen=True)
class ComponentPlan:
    """What one component has and what the mix takes from it.

    Attributes:
        name: the component.
        available: rows its SQL selects after `exclude` and after rows claimed by earlier
            components.
        available_tokens: their `n_tokens` (None without the column).
        overlap: rows its SQL also selected but an earlier component claimed.
        target: rows (or tokens, for `total_tokens` mixes) its weight asks for.
        taken: rows in the mix (repeats counted).
        unique: distinct records in the mix.
        taken_tokens: `n_tokens` in the mix (None without the column).
        note: why the weight is not met, when it is not (e.g. capped by `max_rows`).
    """

    name: str
    available: int
    available_tokens: int | None
    overlap: int
    target: int
    taken: int
    unique: int
    taken_tokens: int | None
    note: str | None = None


@dataclass(frozen=True)
class MixPlan:
    """The result of checking a spec against a records version.

    Attributes:
        spec: the spec.
        records_version: the resolved version (None if it could not be resolved).
        components: one plan per component (empty when the SQL failed).
        problems: errors; materialization refuses to run while there are any.
        warnings: things worth knowing that do not stop materialization.
        splits: split → rows.
        split_tokens: split → tokens (empty without `n_tokens`).
    """

    spec: MixSpec
    records_version: int | None
    components: tuple[ComponentPlan, ...] = ()
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    splits: dict[str, int] = field(default_factory=dict)
    split_tokens: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the spec can be materialized."""
        return not self.problems

    @property
    def rows(self) -> int:
        """Rows in the mix."""
        return sum(c.taken for c in self.components)

    @property
    def tokens(self) -> int | None:
        """Tokens in the mix (None without `n_tokens`)."""
        if any(c.taken_tokens is None for c in self.components) or not self.components:
            return None
        return sum(c.taken_tokens or 0 for c in self.components)

    def raise_if_problems(self) -> None:
        """Raise QueryError listing every problem, one per line."""
        if self.problems:
            raise QueryError("\n".join(self.problems))


@dataclass(frozen=True)
class Selection:
    """The chosen rows in mix order (position = index)."""

    ids: pa.Array
    row_addr: np.ndarray
    component: pa.Array
    split: pa.Array
    repeat: np.ndarray
    tokens: np.ndarray | None
    text_hash: pa.Array

    def table(self) -> pa.Table:
        """The `mix__<name>` table."""
        n = len(self.ids)
        return pa.table(
            {
                "position": pa.array(np.arange(n, dtype=np.int64)),
                "id": self.ids,
                "row_addr": pa.array(self.row_addr, pa.uint64()),
                "component": self.component,
                "split": self.split,
                "repeat": pa.array(self.repeat, pa.int32()),
            }
        )

    def checksum(self) -> str:
        """sha256 over `id<TAB>split<TAB>component` lines in position order."""
        return mix_checksum(self.ids, self.split, self.component)


def mix_checksum(ids: pa.Array, split: pa.Array, component: pa.Array) -> str:
    r"""The checksum of a mix: sha256 over `id\tsplit\tcomponent\n` in position order."""
    h = hashlib.sha256()
    lines = pc.binary_join_element_wise(ids, split, component, "\t")
    chunk = 65536
    for start in range(0, len(lines), chunk):
        h.update(("\n".join(lines.slice(start, chunk).to_pylist()) + "\n").encode())
    return h.hexdigest()


def check_mix(lake: Lake, spec: MixSpec) -> MixPlan:
    """Validate a spec against the lake without writing anything.

    Returns the plan: per-component rows and tokens available vs. taken, rows per split,
    and every problem (unknown column, SQL error, weight that cannot be met, leakage) with
    the spec file and component name.
    """
    return select_mix(lake, spec)[0]


def select_mix(lake: Lake, spec: MixSpec) -> tuple[MixPlan, Selection | None]:
    """Plan and choose the rows of a mix; the Selection is None when there are problems."""
    try:
        version = lake.resolve(spec.records)
    except CurationError as e:
        return MixPlan(spec, None, problems=(f"{spec.where}: records: {e}",)), None
    con = connect(lake, version)
    columns = set(lake.records(version).schema.names)
    problems = static_problems(con, spec, columns)
    if problems:
        return MixPlan(spec, version, problems=tuple(problems)), None
    exclude = list(spec.exclude)
    if CONTAMINATED in columns and spec.on_contaminated == "exclude":
        exclude.append(CONTAMINATED)
    cands: list[Candidates] = []
    for comp in spec.components:
        try:
            cands.append(read_candidates(con, comp, exclude, columns))
        except duckdb.Error as e:
            problems.append(f"{spec.where}: component {comp.name!r}: SQL error: {first_line(e)}")
        except ValueError as e:
            problems.append(f"{spec.where}: component {comp.name!r}: {one_line(e)}")
    if problems:
        return MixPlan(spec, version, problems=tuple(problems)), None
    if spec.format.template == "prompt":
        problems += field_problems(con, spec, columns)
    elif spec.format.template in ("chat", "instruction"):
        problems += message_problems(con, spec, columns)
    if problems:
        return MixPlan(spec, version, problems=tuple(problems)), None
    plan, selection = _plan(spec, version, cands, TOKENS in columns, CONTAMINATED in columns)
    if selection is not None:
        selection = _with_addresses(selection, lake, version)
    return plan, selection


def _with_addresses(sel: Selection, lake: Lake, version: int) -> Selection:
    """Fill in the Lance row address of every chosen id at the pinned version."""
    addr = lake.records(version).to_table(columns=["id"], with_row_address=True)
    # hash the (smaller) chosen set and probe the table with it, then map back
    chosen = addr.filter(pc.is_in(addr.column("id"), value_set=pc.unique(sel.ids)))
    where = pc.index_in(sel.ids, value_set=chosen.column("id").combine_chunks())
    rows = chosen.column("_rowaddr").combine_chunks().take(where)
    return replace(sel, row_addr=rows.to_numpy(zero_copy_only=False).astype(np.uint64))


def _plan(
    spec: MixSpec, version: int, cands: list[Candidates], has_tokens: bool, has_contam: bool
) -> tuple[MixPlan, Selection | None]:
    w = spec.where
    problems: list[str] = []
    warnings: list[str] = []
    cands = _claim_overlaps(cands)
    for c in cands:
        if c.overlap:
            warnings.append(
                f"{w}: component {c.spec.name!r}: {c.overlap} rows also match an earlier component "
                "and count there (components claim rows in spec order)"
            )
    wanted = targets(spec, cands)
    picks: list[tuple[np.ndarray, np.ndarray]] = []
    plans: list[ComponentPlan] = []
    for c, target in zip(cands, wanted, strict=True):
        order = take_order(spec, c)
        index, repeat, note, problem = take_rows(spec, c, order, target, has_tokens)
        if problem:
            problems.append(f"{w}: component {c.spec.name!r}: {problem}")
        picks.append((index, repeat))
        taken_tokens = int(c.tokens[index].sum()) if has_tokens else None
        plans.append(
            ComponentPlan(
                name=c.spec.name,
                available=c.rows,
                available_tokens=int(c.tokens.sum()) if has_tokens else None,
                overlap=c.overlap,
                target=target,
                taken=len(index),
                unique=len(np.unique(index)),
                taken_tokens=taken_tokens,
                note=note,
            )
        )
        if has_tokens and spec.total_tokens is not None and c.null_tokens[index].any():
            problems.append(
                f"{w}: component {c.spec.name!r}: {int(c.null_tokens[index].sum())} selected "
                f"rows have no {TOKENS}; run `mixlake tokens` first"
            )
    selection = _assemble(spec, cands, picks, has_tokens)
    split_rows = _count_by(selection.split, None)
    split_tok = _count_by(selection.split, selection.tokens) if has_tokens else {}
    problems += [f"{w}: {p}" for p in _leaks(selection)]
    if has_contam and spec.on_contaminated != "exclude":
        flagged = sum(int(c.contaminated[i].sum()) for c, (i, _) in zip(cands, picks, strict=True))
        if flagged:
            line = (
                f"{flagged} selected rows are flagged contaminated (overlap with an eval set); "
                "set on_contaminated: exclude to drop them"
            )
            (problems if spec.on_contaminated == "fail" else warnings).append(f"{w}: {line}")
    plan = MixPlan(
        spec,
        version,
        tuple(plans),
        tuple(problems),
        tuple(warnings),
        split_rows,
        split_tok,
    )
    return plan, (None if problems else selection)


def _claim_overlaps(cands: list[Candidates]) -> list[Candidates]:
    out = []
    claimed: pa.Array | None = None
    for c in cands:
        if claimed is not None and c.rows:
            keep = pc.invert(pc.is_in(c.ids, value_set=claimed)).to_numpy(zero_copy_only=False)
            c = c.subset(keep)
        out.append(c)
        claimed = c.ids if claimed is None else pa.concat_arrays([claimed, c.ids])
    return out


def _assemble(
    spec: MixSpec,
    cands: list[Candidates],
    picks: list[tuple[np.ndarray, np.ndarray]],
    has_tokens: bool,
) -> Selection:
    ids = [c.ids.take(pa.array(i, pa.int64())) for c, (i, _) in zip(cands, picks, strict=True)]
    comp = [np.full(len(i), n, dtype=np.int64) for n, (i, _) in enumerate(picks)]
    names = pa.array([c.spec.name for c in cands], pa.string())
    all_ids = pa.concat_arrays(ids) if ids else pa.array([], pa.string())
    total = len(all_ids)
    perm = np.random.default_rng([spec.seed, _SHUFFLE_KEY]).permutation(total)
    take = pa.array(perm, pa.int64())
    shuffled_ids = all_ids.take(take)
    tokens = None
    if has_tokens:
        tokens = np.concatenate([c.tokens[i] for c, (i, _) in zip(cands, picks, strict=True)])[perm]
    return Selection(
        ids=shuffled_ids,
        row_addr=np.zeros(total, dtype=np.uint64),  # filled in by _with_addresses
        component=names.take(pa.array(np.concatenate(comp)[perm], pa.int64())),
        split=assign_splits(shuffled_ids, spec.splits),
        repeat=np.concatenate([r for _, r in picks]).astype(np.int32)[perm],
        tokens=tokens,
        text_hash=pa.concat_arrays(
            [
                c.text_hash.take(pa.array(i, pa.int64()))
                for c, (i, _) in zip(cands, picks, strict=True)
            ]
        ).take(take),
    )


def _count_by(labels: pa.Array, weights: np.ndarray | None) -> dict[str, int]:
    t = pa.table({"k": labels, "w": weights if weights is not None else np.ones(len(labels))})
    agg = t.group_by("k").aggregate([("w", "sum")]).to_pylist()
    return {r["k"]: int(r["w_sum"]) for r in sorted(agg, key=lambda r: str(r["k"]))}


def _leaks(sel: Selection) -> list[str]:
    """Ids or exact texts that land in two splits."""
    out = []
    for key, label in ((sel.ids, "id"), (sel.text_hash, "exact text")):
        t = pa.table({"k": key, "s": sel.split}).group_by("k").aggregate([("s", "count_distinct")])
        bad = t.filter(pc.greater(t.column("s_count_distinct"), 1))
        if bad.num_rows:
            example = bad.column("k")[0].as_py()
            out.append(
                f"leakage: {bad.num_rows} {label}(s) land in two splits (e.g. {example}); "
                "exclude duplicates (exclude: [is_dup]) or drop one copy"
            )
    return out


def describe(plan: MixPlan) -> dict[str, Any]:
    """The plan as plain data (what `mixes.components` stores)."""
    return {
        c.name: {
            "available": c.available,
            "available_tokens": c.available_tokens,
            "overlap": c.overlap,
            "target": c.target,
            "rows": c.taken,
            "unique": c.unique,
            "tokens": c.taken_tokens,
            "note": c.note,
        }
        for c in plan.components
    }
