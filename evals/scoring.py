"""Model passes shared by the suites: masked token loss and option likelihood.

Greedy generation is `curation.generate.greedy_generate` (one for the whole project);
`render_chat` is re-exported from there.

Everything runs batched under `torch.inference_mode()`. Rows are sorted by length before
batching so padding stays small; results come back in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from curation.generate import model_device, pad_id, render_chat
from curation.steps.tokens import chat_loss_spans
from evals.data import EvalExample, Message

Progress = Callable[[int], None]
"""Called with the number of rows just finished."""

Span = tuple[int, int]


@dataclass(frozen=True)
class Scored:
    """Summed token loss over the scored span(s) of one text, and how many tokens it covers."""

    loss_sum: float
    tokens: int

    @property
    def mean_loss(self) -> float | None:
        """Mean token loss, or None when no scored token survived truncation."""
        return self.loss_sum / self.tokens if self.tokens else None


def loss_text(tokenizer: Any, ex: EvalExample) -> tuple[str, list[Span] | None, bool]:
    """The text of an example, its scored character spans, and whether to add special tokens.

    The spans are None when every token is scored; special tokens are not added to
    chat-rendered text.

    Chats are scored on their assistant replies as training puts loss on them
    (`curation.steps.tokens.chat_loss_spans`: the reply and its end-of-turn token, not the
    template's newline after it); a chat without an assistant turn gets no span (nothing is
    scored: see `has_reply`). Prompt/completion examples are scored on the completion, plain
    text on every token.
    """
    if ex.messages:

        def render(turns: Sequence[Message], generation_prompt: bool) -> str:
            return render_chat(tokenizer, turns, generation_prompt)

        full, spans = chat_loss_spans(render, ex.messages)
        return full, spans, False
    if ex.prompt is not None and ex.completion:
        return (
            ex.prompt + ex.completion,
            [(len(ex.prompt), len(ex.prompt) + len(ex.completion))],
            True,
        )
    return ex.text if ex.text is not None else (ex.prompt or ""), None, True


def scored_tokens(tokenizer: Any, ex: EvalExample, max_length: int) -> int:
    """How many tokens of `ex` the heldout loss covers after truncation to `max_length`.

    The count `score_texts` reaches for the same example (next-token targets marked scored),
    computed with the tokenizer alone, so rows whose scored tokens truncation cut can be left
    out, and the token-weighted loss rebuilt, without the model.
    """
    text, spans, special = loss_text(tokenizer, ex)
    _, keep = _encode(tokenizer, text, spans, special, max_length)
    return sum(keep[1:])


def has_reply(ex: EvalExample) -> bool:
    """Whether a loss can be scored on the example: a chat needs an assistant turn."""
    return not ex.messages or any(m["role"] == "assistant" for m in ex.messages)


def score_texts(
    model: Any,
    tokenizer: Any,
    items: Sequence[tuple[str, list[Span] | None, bool]],
    *,
    batch_size: int = 4,
    max_length: int = 512,
    progress: Progress | None = None,
) -> list[Scored]:
    """Summed next-token loss over the scored spans of each text (truncated to `max_length`)."""
    encoded = [
        _encode(tokenizer, text, spans, special, max_length) for text, spans, special in items
    ]
    return score_encoded(model, tokenizer, encoded, batch_size=batch_size, progress=progress)


def score_encoded(
    model: Any,
    tokenizer: Any,
    encoded: Sequence[tuple[list[int], list[bool]]],
    *,
    batch_size: int = 4,
    progress: Progress | None = None,
) -> list[Scored]:
    """Summed next-token loss of the tokens marked True in each `(ids, scored)` pair."""
    import torch

    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    pad = pad_id(tokenizer)
    out: list[Scored | None] = [None] * len(encoded)
    device = model_device(model)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encoded[i][0]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            scored = torch.zeros((len(chunk), width), dtype=torch.bool)
            for row, i in enumerate(chunk):
                tokens, keep = encoded[i]
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
                scored[row, : len(tokens)] = torch.tensor(keep)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            # cross-entropy only where it counts (e.g. assistant tokens), not over every position
            positions = scored[:, 1:].to(device)
            rows = torch.nonzero(positions, as_tuple=True)[0]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1][positions].float(),
                ids[:, 1:].to(device)[positions],
                reduction="none",
            )
            sums = torch.zeros(len(chunk), device=device).index_add_(0, rows, losses).tolist()
            counts = positions.sum(dim=1).tolist()
            for row, i in enumerate(chunk):
                out[i] = Scored(float(sums[row]), int(counts[row]))
            if progress:
                progress(len(chunk))
    return [s for s in out if s is not None]


def option_items(
    tokenizer: Any, prompt: list[Message] | str, options: Sequence[str]
) -> list[tuple[str, str, bool]]:
    """One `(context, continuation, add_special_tokens)` request per option.

    They are built as lm-evaluation-harness builds them.

    A text prompt is followed by `" " + option` (the separating space belongs to the
    continuation, where byte-level BPE puts it: `" Paris"` is one token); whitespace the prompt
    ends with moves into the continuation too. A chat prompt is rendered with the generation
    prompt and the option is the start of the reply.
    """
    if isinstance(prompt, list):
        head = render_chat(tokenizer, prompt, True)
        return [(head, opt, False) for opt in options]
    context = prompt.rstrip()
    tail = prompt[len(context) :] or " "
    return [(context, tail + opt, True) for opt in options]


def encode_continuation(
    tokenizer: Any, context: str, continuation: str, special: bool, max_length: int
) -> tuple[list[int], list[bool]]:
    """Token ids of context + continuation and which of them are the continuation's.

    As lm-evaluation-harness does: the whole text is encoded once, the context on its own, and
    the continuation is the tokens after the context's; truncation drops tokens from the left
    so the continuation is kept.
    """
    whole = list(tokenizer(context + continuation, add_special_tokens=special)["input_ids"])
    head = list(tokenizer(context, add_special_tokens=special)["input_ids"])
    # where they diverge (a tokenizer that appends EOS ends the context with it)
    n_context = next(
        (i for i, (a, b) in enumerate(zip(head, whole, strict=False)) if a != b), len(head)
    )
    n_context = min(n_context, len(whole))
    keep = [False] * n_context + [True] * (len(whole) - n_context)
    return whole[-max_length:], keep[-max_length:]


def _encode(
    tokenizer: Any, text: str, spans: list[Span] | None, special: bool, max_length: int
) -> tuple[list[int], list[bool]]:
    enc = tokenizer(
        text,
        add_special_tokens=special,
        return_offsets_mapping=spans is not None,
        truncation=True,
        max_length=max_length,
    )
    ids = list(enc["input_ids"])
    if spans is None:
        return ids, [True] * len(ids)
    keep = [
        end > begin and any(a <= begin < b for a, b in spans)
        for begin, end in enc["offset_mapping"]
    ]
    return ids, keep
