"""Token counts with the tokenizer of the model to be trained.

`n_tokens` and, for chat and preference rows, `n_prompt_tokens` + `n_completion_tokens`.

Chat rows are counted as the trainer sees them: the conversation rendered with the tokenizer's
chat template and encoded once. The completion is the last assistant reply as the loss scores
it (`chat_loss_spans`): the reply and its end-of-turn token, not the header before it nor the
template's whitespace after it. The prompt is every token before the reply. A conversation
without an assistant turn has no completion: its prompt is the whole row and its completion 0
(the trainer excludes such rows under completion-only loss). `n_tokens − n_prompt_tokens −
n_completion_tokens` is the template's trailing whitespace (one newline for SmolLM2). A tokenizer
without a chat template counts the turn contents joined by blank lines instead (the `template`
parameter says which was used).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.errors import CurationError
from curation.models import SMOLLM2, load_tokenizer
from curation.steps.registry import register_step

Turns = list[dict[str, str]]
Render = Callable[[Sequence[dict[str, str]], bool], str]
"""Renders chat turns (with the generation prompt when the flag is set) to text."""

_PROBE = "\ue000mixlake-reply\ue000"


def chat_loss_spans(
    render: Render, messages: Sequence[dict[str, str]]
) -> tuple[str, list[tuple[int, int]]]:
    r"""The rendered chat and the character span of each assistant turn that carries loss.

    A span starts at the reply (after the template's `<|im_start|>assistant\n` header) and ends
    after the turn's end-of-turn token (`<|im_end|>`); the whitespace the template writes after
    that token (SmolLM2's newline) is not part of it: the model never generates it, it stops
    at the end-of-turn token. The reply's start is found by rendering the turn with a probe
    string as its content, so a turn at the very start (the template's default system prompt
    before it) is found too. A turn whose rendering is not a prefix of the full chat is skipped.

    Args:
        render: renders turns to text; `render(turns, True)` adds the generation prompt.
        messages: the conversation.

    Returns:
        `(text, spans)`; no spans when the conversation has no assistant turn.
    """
    turns = list(messages)
    full = render(turns, False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(turns):
        if m["role"] != "assistant":
            continue
        probe = render([*turns[:i], {**m, "content": _PROBE}], False)
        at = probe.find(_PROBE)
        if at >= 0:
            # one render per turn: the turn is the probe's text with the reply in its place
            turn = probe[:at] + str(m["content"]) + probe[at + len(_PROBE) :]
            if full.startswith(turn):
                end = len(turn.rstrip())
                if end > at:
                    spans.append((at, end))
                continue
        upto = render(turns[: i + 1], False)
        start: int | None = at if at >= 0 and upto.startswith(probe[:at]) else None
        if start is None and i:
            before = render(turns[:i], True)
            start = len(before) if upto.startswith(before) else None
        end = len(upto.rstrip())
        if start is not None and full.startswith(upto) and end > start:
            spans.append((start, end))
    return full, spans


@dataclass(frozen=True)
class TokenParams:
    """Parameters of `tokens_v2`.

    Attributes:
        tokenizer: `smollm2` or a local Hugging Face tokenizer folder.
    """

    tokenizer: str = SMOLLM2


@register_step(
    "tokens_v2",
    command="tokens",
    help="Count tokens: n_tokens, plus n_prompt_tokens/n_completion_tokens for chat rows.",
)
class TokenCountStep:
    """`n_tokens`, `n_prompt_tokens`, `n_completion_tokens` with one tokenizer.

    Args:
        tokenizer: `smollm2` (the shipped model's tokenizer) or a local Hugging Face folder.
    """

    name = "tokens_v2"
    input_columns: tuple[str, ...] = ("kind", "text", "messages")
    model_step = True
    Params = TokenParams

    def __init__(self, tokenizer: str = SMOLLM2) -> None:
        self.tokenizer_name = (
            tokenizer if tokenizer == SMOLLM2 else str(Path(tokenizer).expanduser().resolve())
        )
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    def params(self) -> dict[str, Any]:
        """The tokenizer and how chat rows are rendered."""
        template = "chat_template" if self.tokenizer.chat_template else "joined_contents"
        return {"tokenizer": self.tokenizer_name, "template": template}

    def output_schema(self) -> pa.Schema:
        """Three int32 columns; the prompt/completion ones are null for plain text rows."""
        return pa.schema(
            [
                pa.field("n_tokens", pa.int32()),
                pa.field("n_prompt_tokens", pa.int32()),
                pa.field("n_completion_tokens", pa.int32()),
            ]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Count tokens for a batch: one batched encode of the texts and one of the chats."""
        kinds = batch.column("kind").to_pylist()
        texts = batch.column("text").to_pylist()
        messages = batch.column("messages").to_pylist()
        total: list[int] = [0] * batch.num_rows
        prompt_n: list[int | None] = [None] * batch.num_rows
        completion_n: list[int | None] = [None] * batch.num_rows
        plain_rows = [
            i for i, (k, m) in enumerate(zip(kinds, messages, strict=True)) if k == "text" or not m
        ]
        plain_set = set(plain_rows)
        chat_rows = [i for i in range(batch.num_rows) if i not in plain_set]
        for i, n in zip(
            plain_rows, self._lengths([texts[i] or "" for i in plain_rows]), strict=True
        ):
            total[i] = n
        rendered = [self._render(messages[i]) for i in chat_rows]
        for i, counts in zip(chat_rows, self._chat_counts(rendered), strict=True):
            total[i], prompt_n[i], completion_n[i] = counts
        return pa.RecordBatch.from_arrays(
            [pa.array(c, pa.int32()) for c in (total, prompt_n, completion_n)],
            schema=self.output_schema(),
        )

    def _render(self, turns: Turns) -> tuple[str, tuple[int, int] | None]:
        """The chat's text and the character span of its last reply (None: no assistant turn)."""
        if not self.tokenizer.chat_template:
            last = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
            head = "\n\n".join(t["content"] for t in (turns if last is None else turns[:last]))
            full = "\n\n".join(t["content"] for t in turns)
            return full, None if last is None else (len(head), len(full))

        def render(chat: Sequence[dict[str, str]], generation_prompt: bool) -> str:
            return str(
                self.tokenizer.apply_chat_template(
                    list(chat), tokenize=False, add_generation_prompt=generation_prompt
                )
            )

        try:
            full, spans = chat_loss_spans(render, turns)
        except Exception as e:  # jinja raises its own errors for roles a template refuses
            raise CurationError(
                f"tokenizer {self.tokenizer_name}: chat template failed on a conversation with "
                f"roles {[t['role'] for t in turns]}: {str(e).splitlines()[0][:200]}"
            ) from e
        return full, spans[-1] if spans else None

    def _lengths(self, texts: list[str]) -> list[int]:
        """Token counts of plain texts, with the tokenizer's own special tokens."""
        if not texts:
            return []
        encoded = self.tokenizer(texts, return_attention_mask=False, return_token_type_ids=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def _chat_counts(
        self, rendered: list[tuple[str, tuple[int, int] | None]]
    ) -> list[tuple[int, int, int]]:
        """(all, prompt, completion) token counts of rendered chats, one encode of each.

        A token belongs to the completion when it starts inside the reply's span, to the
        prompt when it starts before it.
        """
        if not rendered:
            return []
        texts = [text for text, _ in rendered]
        if not getattr(self.tokenizer, "is_fast", False):
            return [self._slow_counts(text, span) for text, span in rendered]
        encoded = self.tokenizer(
            texts,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        out = []
        for (_, span), offsets in zip(rendered, encoded["offset_mapping"], strict=True):
            n = len(offsets)
            if span is None:
                out.append((n, n, 0))
                continue
            a, b = span
            prompt = sum(1 for start, _ in offsets if start < a)
            completion = sum(1 for start, _ in offsets if a <= start < b)
            out.append((n, prompt, completion))
        return out

    def _slow_counts(self, text: str, span: tuple[int, int] | None) -> tuple[int, int, int]:
        def count(piece: str) -> int:
            return len(self.tokenizer(piece, add_special_tokens=False)["input_ids"])

        n = count(text)
        if span is None:
            return n, n, 0
        return n, count(text[: span[0]]), count(text[span[0] : span[1]])
