"""How a component takes its rows, and the split of each id.

Targets come from weights, then rows are taken in random, top-N or stratified order, with
upsampling up to `max_repeats`.
"""

from __future__ import annotations

import hashlib
import math
import zlib

import numpy as np
import pyarrow as pa

from queries.candidates import Candidates
from queries.spec import MixSpec


def targets(spec: MixSpec, cands: list[Candidates]) -> list[int]:
    """Per-component target rows (largest remainder, so they sum exactly) or tokens."""
    weights = np.array([c.spec.weight for c in cands], dtype=np.float64)
    shares = weights / weights.sum()
    total = spec.total_rows if spec.total_rows is not None else spec.total_tokens
    assert total is not None
    exact = shares * total
    base = np.floor(exact).astype(np.int64)
    rest = int(total - base.sum())
    if spec.total_rows is not None and rest > 0:
        order = np.argsort(-(exact - base), kind="stable")[:rest]
        base[order] += 1
    return [int(x) for x in base]


def take_order(spec: MixSpec, c: Candidates) -> np.ndarray:
    """Candidate indices in the order the component takes them."""
    if c.spec.order_by:
        return np.arange(c.rows)
    rng = np.random.default_rng([spec.seed, zlib.crc32(c.spec.name.encode())])
    if not c.spec.stratify_by:
        return rng.permutation(c.rows)
    return _balanced(rng, c.strata)


def _balanced(rng: np.random.Generator, strata: pa.Array) -> np.ndarray:
    """Round-robin over strata (each shuffled), as even across strata as the data allows.

    Every stratum gets an equal share until it runs out.
    """
    n = len(strata)
    labels: dict[str | None, int] = {}
    keys = np.fromiter(
        (labels.setdefault(v, len(labels)) for v in strata.to_pylist()), dtype=np.int64, count=n
    )
    shuffled = rng.permutation(n)
    stratum = keys[shuffled]
    # rank of each row inside its stratum, in shuffled order
    sort = np.argsort(stratum, kind="stable")
    boundaries = np.r_[0, np.flatnonzero(np.diff(stratum[sort])) + 1]
    counts = np.diff(np.r_[boundaries, n])
    ranks = np.empty(n, dtype=np.int64)
    ranks[sort] = np.arange(n) - np.repeat(boundaries, counts)
    # which stratum goes first in each round: a seeded order, not the order of first sight
    tiebreak = rng.permutation(len(labels))[stratum]
    return shuffled[np.lexsort((tiebreak, ranks))]


def take_rows(
    spec: MixSpec, c: Candidates, order: np.ndarray, target: int, has_tokens: bool
) -> tuple[np.ndarray, np.ndarray, str | None, str | None]:
    """(candidate index per taken row, repeat number, note, problem)."""
    comp = c.spec
    empty = np.zeros(0, dtype=np.int64)
    if c.rows == 0:
        return empty, empty, None, "selects no rows (after exclude and earlier components)"
    capacity = c.rows * comp.max_repeats
    expanded = np.tile(order, comp.max_repeats)
    tokens = c.tokens[expanded] if has_tokens else None
    note = None
    if spec.total_rows is not None:
        want = target
        if comp.max_rows is not None and comp.max_rows < want:
            want, note = comp.max_rows, f"capped by max_rows {comp.max_rows}"
        k = min(want, capacity)
        if tokens is not None and comp.max_tokens is not None:
            within = int(np.searchsorted(np.cumsum(tokens), comp.max_tokens, side="right"))
            if within < k:
                k, note = within, f"capped by max_tokens {comp.max_tokens}"
    else:
        assert tokens is not None
        want = target
        if comp.max_tokens is not None and comp.max_tokens < want:
            want, note = comp.max_tokens, f"capped by max_tokens {comp.max_tokens}"
        cum = np.cumsum(tokens)
        # smallest prefix reaching the target: overshoots by less than one row
        k = min(int(np.searchsorted(cum, want, side="left")) + 1, capacity)
        if comp.max_rows is not None and comp.max_rows < k:
            k, note = comp.max_rows, f"capped by max_rows {comp.max_rows}"
        if cum[-1] < want and note is None:
            return (
                expanded,
                np.repeat(np.arange(comp.max_repeats), c.rows),
                None,
                _short(spec, c, f"{want} tokens", f"{int(c.tokens.sum())} tokens"),
            )
    if spec.total_rows is not None and k < want and note is None:
        return (
            expanded[:k],
            np.arange(k) // c.rows,
            None,
            _short(spec, c, f"{want} rows", f"{c.rows} rows"),
        )
    return expanded[:k], np.arange(k) // c.rows, note, None


def _short(spec: MixSpec, c: Candidates, want: str, have: str) -> str:
    share = c.spec.weight / sum(x.weight for x in spec.components)
    if c.spec.max_repeats > 1:
        fix = f"raise max_repeats above {c.spec.max_repeats}, lower its weight or the total"
    else:
        need = want.split()[0]
        have_n = have.split()[0]
        reps = math.ceil(int(need) / max(int(have_n), 1))
        fix = f"lower its weight or the total, or allow upsampling with max_repeats: {reps}"
    return (
        f"weight {c.spec.weight:g} ({share:.0%}) needs {want} but it has {have} "
        f"(x{c.spec.max_repeats} repeats); {fix}"
    )


def assign_splits(ids: pa.Array, splits: tuple[tuple[str, float], ...]) -> pa.Array:
    """Split of each id, from a hash of the id alone.

    So a record keeps its split in every mix that uses the same split fractions.
    """
    names = [n for n, _ in splits]
    if len(names) == 1:
        return pa.array([names[0]] * len(ids), pa.string())
    bounds = np.cumsum([f for _, f in splits])[:-1]
    values = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "big") / 2.0**64
            for i in ids.to_pylist()
        ),
        dtype=np.float64,
        count=len(ids),
    )
    which = np.searchsorted(bounds, values, side="right")
    return pa.array(names, pa.string()).take(pa.array(which, pa.int64()))
