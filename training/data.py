"""The data path: a mix split → per-epoch order → lazy tokenization → (packed) training items.

Epoch 0 reads the split in mix order; epoch e ≥ 1 reads a permutation seeded from
`[mix seed, e]`. Rows are fetched by index in chunks (random access), tokenized only when the
trainer asks for them, and every item remembers which records it holds, so the exposure
ledger and per-row losses are exact. Resuming at optimizer step s starts at item
`s × per_device_train_batch_size × gradient_accumulation_steps` without reading the rows
before it (with packing, the rows of the current epoch before it are re-tokenized, not read
by the model).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.sources import Example, ExampleSource

IGNORE = -100
CHUNK = 64


@dataclass(frozen=True)
class Encoded:
    """One tokenized example: ids and labels (IGNORE where no loss)."""

    input_ids: list[int]
    labels: list[int]

    @property
    def loss_tokens(self) -> int:
        """Tokens that carry loss (shifted labels: the first one never does)."""
        return sum(1 for x in self.labels[1:] if x != IGNORE)


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

    Chat rows use the tokenizer's chat template; the spans are the assistant turns. Prompt +
    completion rows put the loss on the completion.
    """
    if example.get("messages"):
        messages = example["messages"]
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        spans = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            before = tokenizer.apply_chat_template(
                messages[:i], tokenize=False, add_generation_prompt=True
            )
            upto = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
            if full.startswith(upto) and upto.startswith(before):
                spans.append((len(before), len(upto)))
        return full, spans or None
    if example.get("prompt") is not None and example.get("completion") is not None:
        prompt = str(example["prompt"])
        text = prompt + str(example["completion"])
        return text, [(len(prompt), len(text))]
    return str(example.get("text") or ""), None


def encode(
    example: Example, tokenizer: Any, max_length: int, completion_only: bool = True
) -> Encoded:
    """Tokenize one rendered example; truncate to `max_length`; ends with EOS for non-chat rows."""
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
    if completion_only and spans:
        labels = [
            t if any(a <= start < b for a, b in spans) else IGNORE
            for t, (start, _) in zip(ids, offsets, strict=True)
        ]
    else:
        labels = list(ids)
    return Encoded(ids[:max_length], labels[:max_length])


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
    ) -> None:
        self.source = source
        self.split = split
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.packing = packing
        self.completion_only = completion_only
        self.total_items = total_items
        self.start_item = start_item
        self.ids = source.ids(split)
        self.positions = source.positions(split)
        self.seed = source.info.seed
        self.produced: dict[int, Item] = {}
        """Items handed out, by index (the trainer may read ahead, or peek at the first one)."""

    @property
    def rows(self) -> int:
        """Rows in the split."""
        return len(self.ids)

    def items_per_epoch(self) -> int:
        """Items one epoch makes (with packing this tokenizes the whole split once)."""
        if not self.packing:
            return self.rows
        return sum(1 for _ in self._epoch_items(0, 0))

    def _examples(self, epoch: int, start: int) -> Iterator[tuple[int, Encoded, Member]]:
        order = epoch_order(self.rows, epoch, self.seed)
        for lo in range(start, self.rows, CHUNK):
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

    def __iter__(self) -> Iterator[Item]:
        index = self.start_item
        per_epoch = self.rows if not self.packing else None
        epoch, skip = 0, index
        if per_epoch:
            epoch, skip = divmod(index, per_epoch)
        while index < self.total_items and self.rows:
            if self.packing:
                made = list(self._epoch_items(epoch, 0)) if skip else None
                if made is not None and skip >= len(made):
                    skip -= len(made)
                    epoch += 1
                    continue
                items = iter(made[skip:]) if made is not None else self._epoch_items(epoch, 0)
            else:
                items = self._epoch_items(epoch, skip)
            for ids, labels, members in items:
                if index >= self.total_items:
                    return
                item = Item(index, ids, labels, members)
                self.produced[item.index] = item
                yield item
                index += 1
            epoch, skip = epoch + 1, 0

    def examples(self) -> Iterator[dict[str, Any]]:
        """Items as the trl collator wants them (`input_ids`, `labels`)."""
        for item in self:
            yield {"input_ids": item.input_ids, "labels": item.labels}


def eval_examples(
    source: ExampleSource,
    split: str,
    tokenizer: Any,
    max_length: int,
    completion_only: bool,
    limit: int = 256,
) -> list[dict[str, Any]]:
    """Up to `limit` tokenized examples of the eval split, in mix order."""
    n = min(len(source.ids(split)), limit)
    rows = source.fetch(split, list(range(n)))
    out = []
    for row in rows:
        enc = encode(row, tokenizer, max_length, completion_only)
        if enc.loss_tokens:
            out.append({"input_ids": enc.input_ids, "labels": enc.labels})
    return out
