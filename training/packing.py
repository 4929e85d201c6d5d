"""The collator: padded batches whose packed examples cannot attend to each other.

Each training item is one example or several packed ones. The collator gives every example its
own position ids (0, 1, … restarting at each example) and passes no 2-D attention mask;
transformers then builds a block-diagonal causal mask from the position ids
(`masking_utils.find_packed_sequence_indices`) for the sdpa and eager kernels on CPU and GPU,
and flash-attention's varlen kernels read the same boundaries. Right padding is a block of its
own, so no real token ever attends to it, and its labels are ignored. transformers only reads
the boundaries when the forward has no KV cache, so the training model runs with
`use_cache=False` (`no_kv_cache`). Together with the ignored
label on the first token of each packed example (`training.data`), a packed example's loss is
its loss alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from training.data import IGNORE


def no_kv_cache(model: Any) -> Any:
    """Turn the KV cache off for training forwards (with one, the packed mask is not built)."""
    config = getattr(model, "config", None)
    if config is not None:
        config.use_cache = False
    return model


def position_ids(lengths: Sequence[int], width: int) -> list[int]:
    """Positions restarting at each example, then the padding as one more block, to `width`.

    Example:
        >>> position_ids([3, 2], 7)
        [0, 1, 2, 0, 1, 0, 1]
    """
    out = [p for n in lengths for p in range(n)]
    return out + list(range(width - len(out)))


@dataclass(frozen=True)
class PackedCollator:
    """Pads items (`input_ids`, `labels`, `seq_lengths`) to the batch's longest one.

    Args:
        pad_token_id: the id written in the padding.
    """

    pad_token_id: int

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """A batch: `input_ids`, `labels` (IGNORE on padding) and `position_ids`."""
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        ids, labels, positions = [], [], []
        for e in examples:
            pad = width - len(e["input_ids"])
            lengths = e.get("seq_lengths") or [len(e["input_ids"])]
            ids.append([*e["input_ids"], *[self.pad_token_id] * pad])
            labels.append([*e["labels"], *[IGNORE] * pad])
            positions.append(position_ids(lengths, width))
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "position_ids": torch.tensor(positions, dtype=torch.long),
        }


def padding_waste(lengths: Sequence[Sequence[int]], micro_batch: int) -> float:
    """The share of padded positions when items of these member lengths are batched in order.

    Args:
        lengths: per item, the lengths of the examples packed in it.
        micro_batch: items per forward pass.
    """
    real = padded = 0
    totals = [sum(item) for item in lengths]
    for lo in range(0, len(totals), micro_batch):
        chunk = totals[lo : lo + micro_batch]
        real += sum(chunk)
        padded += max(chunk) * len(chunk)
    return 1.0 - real / padded if padded else 0.0
