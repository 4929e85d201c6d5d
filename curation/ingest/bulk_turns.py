"""Turns of chat records in bulk: message lists flattened, then assembled into core columns.

Every record shape is assembled into the core columns with one gather (see `assemble`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from curation.ingest.bulk_arrow import STRING, blank, take_rows, to_np, valid
from curation.ingest.row import LIST_FIELDS, ROLE_ALIASES
from curation.schema import CORE_SCHEMA, MESSAGE_TYPE, MESSAGES_TYPE


class Turns:
    """The turns of a list-of-messages column, flattened, with their canonical roles.

    Attributes:
        lists: the list-of-messages column it was read from (one entry per row).
        roles: per turn, the canonical role (`ROLE_ALIASES`), null when not recognised.
        content: per turn, the message text (`content`, else `value`).
        bad: per turn, whether the message is null or lacks a known role or its content.
        parents: per turn, the index of its row in `lists`.
        nonblank: per turn, whether the content is not empty or all whitespace.
        counts: per row, its number of turns (0 for a null list).
        extra: per turn, whether it has a field besides the role and content it was read
            from; None when no turn can have one.
    """

    def __init__(
        self,
        lists: pa.Array,
        roles: pa.Array,
        content: pa.Array,
        bad: npt.NDArray[np.bool_],
        parents: npt.NDArray[np.int64],
        nonblank: npt.NDArray[np.bool_],
        counts: npt.NDArray[np.int64],
        extra: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        self.lists, self.roles, self.content = lists, roles, content
        self.bad, self.parents, self.nonblank, self.counts = bad, parents, nonblank, counts
        self.extra = extra  # per turn: has a field besides the role and content it was read from

    @classmethod
    def of(cls, lists: pa.Array) -> Turns:
        """Flatten `lists` (`role`/`content` or ShareGPT's `from`/`value`) into its turns."""
        flat = pc.list_flatten(lists)
        parents = to_np(pc.list_parent_indices(lists)).astype(np.int64)
        counts = to_np(pc.fill_null(pc.list_value_length(lists), 0)).astype(np.int64)
        names = {flat.type.field(i).name for i in range(flat.type.num_fields)}

        def child(key: str) -> pa.Array:
            return flat.field(key) if key in names else pa.nulls(len(flat), STRING)

        role = pc.coalesce(child("role"), child("from"))
        content = pc.coalesce(child("content"), child("value"))
        extra: np.ndarray | None = None
        others = sorted(names - {"role", "content", "from", "value"})
        if others or {"role", "from"} <= names or {"content", "value"} <= names:
            extra = np.zeros(len(flat), dtype=bool)
            for key in others:
                extra |= valid(flat.field(key))
            for a, b in (("role", "from"), ("content", "value")):
                if a in names and b in names:
                    extra |= valid(flat.field(a)) & valid(flat.field(b))
        unique = pc.unique(pc.drop_null(role)).to_pylist()
        canonical = pa.array([ROLE_ALIASES.get(r.lower()) for r in unique], STRING)
        roles = canonical.take(pc.index_in(role, value_set=pa.array(unique, STRING)))
        bad = ~to_np(flat.is_valid()) | ~valid(roles) | ~valid(content)
        empty = blank(content)
        return cls(lists, roles, content, bad, parents, ~empty, counts, extra)

    def bad_rows(self, n: int) -> np.ndarray:
        """Rows with no turns, a malformed turn, or only blank turns."""
        bad = np.bincount(self.parents, weights=self.bad, minlength=n) > 0
        nonblank = np.bincount(self.parents, weights=self.nonblank, minlength=n)
        # numpy's stubs type `ndarray == x` as Any; these are boolean masks
        all_blank: npt.NDArray[np.bool_] = nonblank == 0
        no_turns: npt.NDArray[np.bool_] = self.counts == 0
        return bad | all_blank | no_turns

    def extra_rows(self, n: int) -> np.ndarray:
        """Rows with a message that has fields besides its role and content."""
        if self.extra is None:
            return np.zeros(n, dtype=bool)
        return np.bincount(self.parents, weights=self.extra, minlength=n) > 0


SHAPES = ("text", "messages", "conversations", "instruction", "prompt", "preference")
_KINDS = pa.array(["text", "chat", "chat", "chat", "chat", "preference"], STRING)
_SLOT_ROLES = pa.array(["system", "user", "assistant"], STRING)


def assemble(
    idx: np.ndarray,
    shapes: dict[str, np.ndarray],
    cols: dict[str, pa.Array],
    has: dict[str, np.ndarray],
    turns: dict[str, Turns],
) -> pa.Table:
    """The core columns of the rows `idx` (ascending), whatever their shapes, in that order.

    Every turn of every row is gathered with one `take` from a pool of the source columns
    (message lists flattened, system, user prompt, answer), its index worked out in NumPy;
    no per-shape tables to concatenate and reorder.
    """
    k, n = len(idx), len(shapes["text"])
    if k == 0:
        return CORE_SCHEMA.empty_table()
    code = np.zeros(n, dtype=np.int8)
    for c, shape in enumerate(SHAPES):
        code[shapes[shape]] = c
    code = code[idx]

    def col(name: str) -> pa.Array:
        return cols[name] if name in cols else pa.nulls(n, STRING)

    system = col("system")
    has_system = has["system"] & to_np(pc.fill_null(pc.not_equal(system, ""), False))
    with_input = to_np(pc.fill_null(pc.not_equal(col("input"), ""), False)) & has["input"]
    user_instruction = col("instruction")
    if with_input.any():
        joined = pc.binary_join_element_wise(user_instruction, col("input"), "\n\n")
        user_instruction = pc.if_else(pa.array(with_input), joined, user_instruction)
    # The pool: (name, content array, role array or None for slot turns)
    pool: list[tuple[str, pa.Array, pa.Array | None]] = []
    for f in LIST_FIELDS:
        if f in turns:
            pool.append((f, turns[f].content, turns[f].roles))
    for name, values in (
        ("system", system),
        ("instruction", user_instruction),
        ("output", col("output")),
        ("prompt", col("prompt")),
        ("completion", col("completion")),
        ("response", col("response")),
        ("chosen", col("chosen")),
    ):
        pool.append((name, values, None))
    base: dict[str, int] = {}
    at_base = 0
    for name, values, _ in pool:
        base[name] = at_base
        at_base += len(values)

    is_slot = code >= 3
    hs = has_system[idx].astype(np.int64)
    counts = np.zeros(k, dtype=np.int64)
    starts = np.zeros(k, dtype=np.int64)
    for c, f in ((1, "messages"), (2, "conversations")):
        if f in turns:
            rows = code == c
            full_starts = np.concatenate([[0], np.cumsum(turns[f].counts)[:-1]])
            counts[rows] = turns[f].counts[idx[rows]]
            starts[rows] = full_starts[idx[rows]] + base[f]
    counts[is_slot] = 2 + hs[is_slot]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    row = np.repeat(np.arange(k), counts)
    t = np.arange(offsets[-1]) - offsets[row]
    source = idx[row]
    content_at = starts[row] + t  # right for list turns; slot turns are set below
    slot = t + 1 - hs[row]
    on_slot = is_slot[row]
    rc = code[row]
    answer = np.where(
        rc == 3,
        base["output"],
        np.where(
            rc == 5,
            base["chosen"],
            np.where(has["completion"][source], base["completion"], base["response"]),
        ),
    )
    user = np.where(rc == 3, base["instruction"], base["prompt"])
    slot_base = np.where(slot == 0, base["system"], np.where(slot == 1, user, answer))
    content_at = np.where(on_slot, slot_base + source, content_at)
    contents = pa.concat_arrays([values for _, values, _ in pool]).take(pa.array(content_at))

    role_pool = [r for _, _, r in pool if r is not None] + [_SLOT_ROLES]
    role_at = content_at.copy()  # list turns: the roles sit where their contents do
    role_at[on_slot] = sum(len(r) for r in role_pool[:-1]) + slot[on_slot]
    roles = pa.concat_arrays(role_pool).take(pa.array(role_at))

    offsets32 = pa.array(offsets.astype(np.int32), pa.int32())
    is_text = pa.array(code == 0)
    messages = pa.ListArray.from_arrays(
        offsets32,
        pa.StructArray.from_arrays([roles, contents], fields=list(MESSAGE_TYPE)),
        type=MESSAGES_TYPE,
        mask=is_text,
    )
    joined_text = pc.binary_join(pa.ListArray.from_arrays(offsets32, contents), "\n\n")
    text = (
        pc.if_else(is_text, take_rows(col("text"), idx), joined_text)
        if (code == 0).any()
        else joined_text
    )
    rejected = col("rejected").take(pa.array(np.where(code == 5, idx, 0), mask=code != 5))
    kind = _KINDS.take(pa.array(code))
    return pa.table([kind, text, messages, rejected, pa.nulls(k, STRING)], schema=CORE_SCHEMA)
