"""Token counts with the tokenizer of the model to be trained: `n_tokens` and, for chat and
preference rows, `n_prompt_tokens` + `n_completion_tokens`.

Chat rows are counted as the trainer sees them: the conversation rendered with the tokenizer's
chat template. The prompt is everything before the last assistant turn, rendered with the
generation prompt; the completion is the rest. A tokenizer without a chat template counts the
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
        """Count tokens for a batch: one batched encode for all texts, prompts and full chats."""
        kinds = batch.column("kind").to_pylist()
        texts = batch.column("text").to_pylist()
        messages = batch.column("messages").to_pylist()
        plain: list[str] = []  # encoded with the tokenizer's special tokens (plain LM text)
        rendered: list[str] = []  # already contain the template's special tokens
        slots: list[tuple[int, int] | int] = []
        for kind, text, turns in zip(kinds, texts, messages, strict=True):
            if kind == "text" or not turns:
                slots.append(len(plain))
                plain.append(text or "")
            else:
                prompt, full = self._render(turns)
                slots.append((len(rendered), len(rendered) + 1))
                rendered += [prompt, full]
        plain_lengths = self._lengths(plain, special=True)
        rendered_lengths = self._lengths(rendered, special=False)
        total: list[int] = []
        prompt_n: list[int | None] = []
        completion_n: list[int | None] = []
        for slot in slots:
            if isinstance(slot, int):
                total.append(plain_lengths[slot])
                prompt_n.append(None)
                completion_n.append(None)
            else:
                p, f = rendered_lengths[slot[0]], rendered_lengths[slot[1]]
                total.append(f)
                prompt_n.append(p)
                completion_n.append(f - p)
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

    def _lengths(self, texts: list[str], *, special: bool) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(
            texts,
            add_special_tokens=special,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]
