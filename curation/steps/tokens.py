"""Token counts with the tokenizer of the model to be trained: `n_tokens` and, for chat and
preference rows, `n_prompt_tokens` + `n_completion_tokens`.

Chat rows are counted as the trainer sees them: the conversation rendered with the tokenizer's
chat template and encoded once. The prompt is everything before the last assistant turn,
rendered with the generation prompt; the completion is the rendered text after it (the last
reply and its end token), counted on its own, and the prompt count is the full count minus it. A tokenizer without a chat template counts the
turn contents joined by blank lines instead (the `template` parameter says which was used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.errors import CurationError
from curation.models import SMOLLM2, load_tokenizer

Turns = list[dict[str, str]]


class TokenCountStep:
    """`n_tokens`, `n_prompt_tokens`, `n_completion_tokens` with one tokenizer.

    Args:
        tokenizer: `smollm2` (the shipped model's tokenizer) or a local Hugging Face folder.
    """

    name = "tokens_v1"
    input_columns: tuple[str, ...] = ("kind", "text", "messages")

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
        for i, (n_full, n_prompt) in zip(chat_rows, self._chat_lengths(rendered), strict=True):
            total[i], prompt_n[i] = n_full, n_prompt
        completion_n = [None if p is None else t - p for t, p in zip(total, prompt_n, strict=True)]
        return pa.RecordBatch.from_arrays(
            [pa.array(c, pa.int32()) for c in (total, prompt_n, completion_n)],
            schema=self.output_schema(),
        )

    def _render(self, turns: Turns) -> tuple[str, str]:
        last = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
        head = turns if last is None else turns[:last]
        if not self.tokenizer.chat_template:
            return "\n\n".join(t["content"] for t in head), "\n\n".join(t["content"] for t in turns)
        try:
            full = self.tokenizer.apply_chat_template(turns, tokenize=False)
            prompt = (
                self.tokenizer.apply_chat_template(head, tokenize=False, add_generation_prompt=True)
                if head
                else ""
            )
        except Exception as e:  # jinja raises its own errors for roles a template refuses
            raise CurationError(
                f"tokenizer {self.tokenizer_name}: chat template failed on a conversation with "
                f"roles {[t['role'] for t in turns]}: {str(e).splitlines()[0][:200]}"
            ) from e
        return prompt, full

    def _lengths(self, texts: list[str]) -> list[int]:
        """Token counts of plain texts, with the tokenizer's own special tokens."""
        if not texts:
            return []
        encoded = self.tokenizer(texts, return_attention_mask=False, return_token_type_ids=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def _chat_lengths(self, rendered: list[tuple[str, str]]) -> list[tuple[int, int]]:
        """(full, prompt) token counts of rendered chats.

        Each full chat is encoded once; the prompt count is the full count minus the count of
        the (short) completion text after the prompt, so the long prompt is not encoded twice.
        A prompt that is not a prefix of the full rendering (an unusual template) is encoded on
        its own instead.
        """
        if not rendered:
            return []
        fulls = self._encoded_lengths([full for _, full in rendered])
        prefix = [k for k, (prompt, full) in enumerate(rendered) if full.startswith(prompt)]
        other = [k for k, (prompt, full) in enumerate(rendered) if not full.startswith(prompt)]
        tails = self._encoded_lengths([rendered[k][1][len(rendered[k][0]) :] for k in prefix])
        prompts = dict(
            zip(prefix, (fulls[k] - n for k, n in zip(prefix, tails, strict=True)), strict=True)
        )
        prompts.update(
            zip(other, self._encoded_lengths([rendered[k][0] for k in other]), strict=True)
        )
        return [(fulls[k], prompts[k]) for k in range(len(rendered))]

    def _encoded_lengths(self, rendered: list[str]) -> list[int]:
        if not rendered:
            return []
        encoded = self.tokenizer(
            rendered,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]
