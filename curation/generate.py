"""Greedy batched generation with a causal LM, the one such helper in mixlake.

The judge step, the trainer's `chat` command and the eval suites all use it.

Prompts are chat turns (rendered with the tokenizer's chat template and the generation prompt)
or strings. Rows are sorted by length and left-padded per batch, so padding stays small;
answers come back in input order, decoded without special tokens and stripped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Prompt = Sequence[Mapping[str, str]] | str
"""Chat turns (`{role, content}` dicts) or a plain string."""


def render_chat(
    tokenizer: Any, messages: Sequence[Mapping[str, str]], generation_prompt: bool
) -> str:
    """Render chat turns with the tokenizer's chat template.

    A tokenizer without a template gets `role: content` lines (and `assistant: ` as the
    generation prompt).

    Args:
        tokenizer: a Hugging Face tokenizer.
        messages: the turns.
        generation_prompt: end with the start of an assistant turn.

    Returns:
        The rendered text.
    """
    if getattr(tokenizer, "chat_template", None):
        return str(
            tokenizer.apply_chat_template(
                [dict(m) for m in messages],
                tokenize=False,
                add_generation_prompt=generation_prompt,
            )
        )
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if generation_prompt else "")


def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    max_new_tokens: int,
    batch_size: int = 4,
    max_length: int | None = None,
    add_special_tokens: bool = True,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy answers to `prompts`, in input order.

    Args:
        model: a causal LM (`generate` is called with `do_sample=False`).
        tokenizer: its tokenizer (the pad token, else EOS, pads on the left).
        prompts: chat turns or strings.
        max_new_tokens: tokens generated per answer at most.
        batch_size: prompts per `generate` call.
        max_length: prompt tokens kept (from the end); None keeps all.
        add_special_tokens: whether string prompts get the tokenizer's special tokens
            (False for an already rendered template); chat prompts never do.
        progress: called with the number of prompts just answered.

    Returns:
        One stripped answer per prompt.
    """
    import torch

    texts = [p if isinstance(p, str) else render_chat(tokenizer, p, True) for p in prompts]
    special = [add_special_tokens and isinstance(p, str) for p in prompts]
    encoded = [
        list(tokenizer(t, add_special_tokens=s)["input_ids"])
        for t, s in zip(texts, special, strict=True)
    ]
    if max_length is not None:
        encoded = [e[-max_length:] for e in encoded]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    pad = pad_id(tokenizer)
    out = [""] * len(encoded)
    device = model_device(model)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i], dtype=torch.long)
                mask[row, width - len(encoded[i]) :] = 1
            generated = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
            for row, i in enumerate(chunk):
                out[i] = tokenizer.decode(generated[row, width:], skip_special_tokens=True).strip()
            if progress:
                progress(len(chunk))
    return out


def pad_id(tokenizer: Any) -> int:
    """The id batches are padded with: the pad token, else EOS, else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def model_device(model: Any) -> Any:
    """The device of the model's first parameter (`cpu` for a model without any)."""
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return "cpu"
