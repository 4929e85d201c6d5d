"""The data path: a mix split → per-epoch order → lazy tokenization → (packed) training items.

Epoch 0 reads the split in mix order; epoch e ≥ 1 reads a permutation seeded from
`[mix seed, e]`. Rows are fetched by index in chunks (random access), tokenized only when the
trainer asks for them, and every item remembers which records it holds, so the exposure
ledger and per-row losses are exact. Resuming at optimizer step s starts at item
`s × per_device_train_batch_size × gradient_accumulation_steps` without reading the rows
before it (with packing, the rows of the current epoch before it are re-tokenized, not read
by the model). Under a launcher each rank produces only its own items of that one sequence
(`training.distributed.rank_of_item`) and reads only their rows.

Rows that cannot carry loss are never trained on: under completion-only loss a conversation
without an assistant turn (`no_assistant_turn`), and any row that keeps no loss token after
truncation to `max_length` (`no_loss_token_after_truncation`). They are counted by reason
(`TokenStream.report()`), left out of every epoch, and so never reach the exposure ledger or
the per-row losses. Finding them tokenizes the split once before training.

Loss sits on the assistant replies as `curation.steps.tokens.chat_loss_spans` finds them: the
reply and its end-of-turn token, not the header before it, not the template's newline after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curation.steps.tokens import chat_loss_spans
from training.distributed import rank_of_item
from training.sources import Example, ExampleSource

IGNORE = -100
CHUNK = 64
NO_ASSISTANT = "no_assistant_turn"
TRUNCATED_AWAY = "no_loss_token_after_truncation"


@dataclass(frozen=True)
class Encoded:
    """One tokenized example: ids and labels (IGNORE where no loss)."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False
    """Whether `max_length` cut tokens off the end."""
    no_assistant: bool = False
    """A conversation without an assistant turn under completion-only loss (no loss at all)."""

    @property
    def loss_tokens(self) -> int:
        """Tokens that carry loss (shifted labels: the first one never does)."""
        return sum(1 for x in self.labels[1:] if x != IGNORE)

    @property
    def excluded(self) -> str | None:
        """Why this example cannot be trained on (None: it can)."""
        if self.no_assistant:
            return NO_ASSISTANT
        if self.loss_tokens == 0:
            return TRUNCATED_AWAY
        return None


@dataclass(frozen=True)
class RowReport:
    """What a split holds for training: rows, rows left out (by reason), rows truncated."""

    rows: int
    excluded: dict[str, int] = field(default_factory=dict)
    truncated: int = 0

    @property
    def trained(self) -> int:
        """Rows that carry loss (each is trained on)."""
        return self.rows - sum(self.excluded.values())

    def as_metrics(self) -> dict[str, Any]:
        """The report as run metrics (`rows_*` keys)."""
        return {
            "rows_in_split": self.rows,
            "rows_trained": self.trained,
            "rows_excluded": dict(sorted(self.excluded.items())),
            "rows_truncated": self.truncated,
        }


@dataclass(frozen=True)
class Member:
    """One record inside a training item."""

    record_id: str
    position: int
    """The row's position in the mix (over all splits)."""
    epoch: int
    length: int


@dataclass(frozen=True)
class Item:
    """One training sequence (one example, or several packed) as the trainer receives it."""

    index: int
    input_ids: list[int]
    labels: list[int]
    members: tuple[Member, ...]


def render_text(example: Example, tokenizer: Any) -> tuple[str, list[tuple[int, int]] | None]:
    """The text of an example and the character spans that carry loss (None: all of it).

    Chat rows use the tokenizer's chat template; the spans are the assistant replies (an empty
    list: the conversation has none). Prompt + completion rows put the loss on the completion.
    """
    if example.get("messages"):

        def render(turns: Sequence[dict[str, str]], generation_prompt: bool) -> str:
            return str(
                tokenizer.apply_chat_template(
                    list(turns), tokenize=False, add_generation_prompt=generation_prompt
                )
            )

        return chat_loss_spans(render, example["messages"])
    if example.get("prompt") is not None and example.get("completion") is not None:
        prompt = str(example["prompt"])
        text = prompt + str(example["completion"])
        return text, [(len(prompt), len(text))]
    return str(example.get("text") or ""), None


def encode(
    example: Example, tokenizer: Any, max_length: int, completion_only: bool = True
) -> Encoded:
    """Tokenize one rendered example; truncate to `max_length`; ends with EOS for non-chat rows.

    Args:
        example: A rendered example (`messages`, `prompt` + `completion`, or `text`).
        tokenizer: The run's tokenizer (its chat template renders `messages`).
        max_length: Tokens kept at most.
        completion_only: Loss only on assistant replies and completions; a conversation
            without an assistant turn then gets no loss token (and `no_assistant` set).
            Without it, every token carries loss.
    """
    text, spans = render_text(example, tokenizer)
    enc = tokenizer(
        text, add_special_tokens=not example.get("messages"), return_offsets_mapping=True
    )
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    end = len(text)
    eos = tokenizer.eos_token_id
    if not example.get("messages") and eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
        offsets.append((end, end + 1))
        spans = [(a, b + 1 if b == end else b) for a, b in spans] if spans else spans
    if completion_only and spans is not None:
        labels = [
            t if any(a <= start < b for a, b in spans) else IGNORE
            for t, (start, _) in zip(ids, offsets, strict=True)
        ]
    else:
        labels = list(ids)
    no_assistant = completion_only and spans == [] and bool(example.get("messages"))
    return Encoded(ids[:max_length], labels[:max_length], len(ids) > max_length, no_assistant)


def epoch_order(n: int, epoch: int, seed: int) -> np.ndarray:
    """Indices of the split in the order epoch `epoch` reads them."""
    if epoch == 0:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


class TokenStream:
    """The training items of a split, from a start item, tokenized lazily.

    Args:
        source: the mix rows.
        split: which split.
        tokenizer: the model's tokenizer.
        max_length: tokens per example, or per packed sequence.
        packing: concatenate consecutive examples (within an epoch) up to `max_length`.
        completion_only: loss on assistant turns / completions only.
        total_items: items to produce in all (from item 0); epochs repeat as needed.
        start_item: the first item to produce (resume).
        micro_batch: items per forward pass of one rank.
        rank: this process's rank; it produces only its items (`rank_of_item`).
        world_size: processes training together (1: every item is this one's).
    """

    def __init__(
        self,
        source: ExampleSource,
        split: str,
        tokenizer: Any,
        max_length: int,
        packing: bool,
        completion_only: bool,
        total_items: int,
        start_item: int = 0,
        micro_batch: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.source = source
        self.split = split
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.packing = packing
        self.completion_only = completion_only
        self.total_items = total_items
        self.start_item = start_item
        self.micro_batch = micro_batch
        self.rank = rank
        self.world_size = world_size
        self.ids = source.ids(split)
        self.positions = source.positions(split)
        self.seed = source.info.seed
        self.produced: dict[int, Item] = {}
        """Items handed out, by index (the trainer may read ahead, or peek at the first one)."""
        self._trainable: np.ndarray | None = None
        self._report: RowReport | None = None

    @property
    def rows(self) -> int:
        """Rows in the split."""
        return len(self.ids)

    def report(self) -> RowReport:
        """Rows of the split trained on, left out (by reason) and truncated (tokenizes once)."""
        self._scan()
        assert self._report is not None
        return self._report

    def _scan(self) -> np.ndarray:
        """A mask over the split: which rows carry loss (computed once, by tokenizing them)."""
        if self._trainable is None:
            keep = np.zeros(self.rows, dtype=bool)
            excluded: Counter[str] = Counter()
            truncated = 0
            for lo in range(0, self.rows, CHUNK):
                chunk = list(range(lo, min(lo + CHUNK, self.rows)))
                for idx, example in zip(chunk, self.source.fetch(self.split, chunk), strict=True):
                    enc = encode(example, self.tokenizer, self.max_length, self.completion_only)
                    reason = enc.excluded
                    keep[idx] = reason is None
                    truncated += enc.truncated
                    if reason is not None:
                        excluded[reason] += 1
            self._trainable = keep
            self._report = RowReport(self.rows, dict(excluded), truncated)
        return self._trainable

    @property
    def trainable_rows(self) -> int:
        """Rows that carry loss (the items of one epoch without packing)."""
        return int(self._scan().sum())

    def items_per_epoch(self) -> int:
        """Items one epoch makes (with packing this tokenizes the whole split once more)."""
        if not self.packing:
            return self.trainable_rows
        return sum(1 for _ in self._epoch_items(0, 0))

    def _examples(self, epoch: int, start: int) -> Iterator[tuple[int, Encoded, Member]]:
        order = epoch_order(self.rows, epoch, self.seed)
        order = order[self._scan()[order]]
        for lo in range(start, len(order), CHUNK):
            chunk = [int(i) for i in order[lo : lo + CHUNK]]
            for idx, example in zip(chunk, self.source.fetch(self.split, chunk), strict=True):
                enc = encode(example, self.tokenizer, self.max_length, self.completion_only)
                yield (
                    idx,
                    enc,
                    Member(self.ids[idx], self.positions[idx], epoch, len(enc.input_ids)),
                )

    def _epoch_items(
        self, epoch: int, skip: int
    ) -> Iterator[tuple[list[int], list[int], tuple[Member, ...]]]:
        """Items of one epoch, skipping the first `skip` (without tokenizing them if unpacked)."""
        if not self.packing:
            for _, enc, member in self._examples(epoch, skip):
                yield enc.input_ids, enc.labels, (member,)
            return
        ids: list[int] = []
        labels: list[int] = []
        members: list[Member] = []
        made = 0
        for _, enc, member in self._examples(epoch, 0):
            if members and len(ids) + len(enc.input_ids) > self.max_length:
                if made >= skip:
                    yield ids, labels, tuple(members)
                made += 1
                ids, labels, members = [], [], []
            ids = ids + enc.input_ids
            # The first token of a packed example must not be predicted from the one before.
            labels = [*labels, IGNORE, *enc.labels[1:]] if labels else list(enc.labels)
            members.append(member)
        if members and made >= skip:
            yield ids, labels, tuple(members)

    def mine(self, index: int) -> bool:
        """Whether item `index` of the run's global sequence is this rank's."""
        return rank_of_item(index, self.micro_batch, self.world_size) == self.rank

    def __iter__(self) -> Iterator[Item]:
        """This rank's items, from `start_item` on, each recorded in `produced`."""
        if not self.trainable_rows:
            return
        items = self._packed() if self.packing else self._unpacked()
        for item in items:
            self.produced[item.index] = item
            yield item

    def _unpacked(self) -> Iterator[Item]:
        """This rank's items from `start_item` on, reading and tokenizing only those rows."""
        per_epoch = self.trainable_rows
        index = self.start_item
        while index < self.total_items:
            epoch = index // per_epoch
            end = min(self.total_items, (epoch + 1) * per_epoch)
            order = epoch_order(self.rows, epoch, self.seed)
            order = order[self._scan()[order]]
            wanted = [i for i in range(index, end) if self.mine(i)]
            for lo in range(0, len(wanted), CHUNK):
                chunk = wanted[lo : lo + CHUNK]
                rows = [int(order[i - epoch * per_epoch]) for i in chunk]
                fetched = self.source.fetch(self.split, rows)
                for i, idx, example in zip(chunk, rows, fetched, strict=True):
                    enc = encode(example, self.tokenizer, self.max_length, self.completion_only)
                    member = Member(self.ids[idx], self.positions[idx], epoch, len(enc.input_ids))
                    yield Item(i, enc.input_ids, enc.labels, (member,))
            index = end

    def _packed(self) -> Iterator[Item]:
        """This rank's packed items from `start_item` on (each epoch is packed whole)."""
        index, skip, epoch = self.start_item, self.start_item, 0
        while index < self.total_items:
            for ids, labels, members in self._epoch_items(epoch, 0):
                if skip:
                    skip -= 1
                    continue
                if index >= self.total_items:
                    return
                if self.mine(index):
                    yield Item(index, ids, labels, members)
                index += 1
            epoch += 1

    def examples(self) -> Iterator[dict[str, Any]]:
        """Items as `training.packing.PackedCollator` wants them (ids, labels, member lengths)."""
        for item in self:
            yield {
                "input_ids": item.input_ids,
                "labels": item.labels,
                "seq_lengths": [m.length for m in item.members],
            }


def eval_examples(
    source: ExampleSource,
    split: str,
    tokenizer: Any,
    max_length: int,
    completion_only: bool,
    limit: int = 256,
) -> list[dict[str, Any]]:
    """Up to `limit` tokenized examples of the eval split, in mix order.

    Rows that carry no loss are left out (see `Encoded.excluded`).

    Returns:
        Dicts of `input_ids`, `labels` and `seq_lengths`, as the trainer's collator takes.
    """
    n = min(len(source.ids(split)), limit)
    rows = source.fetch(split, list(range(n)))
    out = []
    for row in rows:
        enc = encode(row, tokenizer, max_length, completion_only)
        if enc.excluded is None:
            out.append(
                {
                    "input_ids": enc.input_ids,
                    "labels": enc.labels,
                    "seq_lengths": [len(enc.input_ids)],
                }
            )
    return out
