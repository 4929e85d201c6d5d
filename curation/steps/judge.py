"""`quality_judge_v1`: a local chat model grades each record 1–5 against a fixed rubric.

Greedy decoding, so a rerun gives the same reply. The raw reply is kept in
`quality_judge_v1_reply` (the step's first column, so a row whose reply could not be parsed
counts as computed and is not asked again); `quality_judge_v1` is the parsed score, or null
when the reply holds no digit 1–5. The judge is slow on CPU: limit it with `where`.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from curation.errors import CurationError
from curation.models import SMOLLM2, load_causal_lm, load_tokenizer, resolve_model
from curation.steps.registry import register_step

RUBRIC = (
    "Here is a sample of chat training data:\n\n{sample}\n\n"
    "Rate the quality of this sample from 1 to 5: 1 = spam, gibberish or harmful; "
    "2 = mostly unhelpful or hard to follow; 3 = acceptable but shallow; 4 = good with small "
    "flaws; 5 = helpful, clear and well written. Reply with one digit."
)
PREFILL = "Rating: "
"""Appended after the generation prompt: small models then answer with the digit first."""
RUBRIC_DIGEST = hashlib.blake2b((RUBRIC + PREFILL).encode(), digest_size=6).hexdigest()
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.]\d)")


def parse_score(reply: str | None) -> int | None:
    """The judge's score: the first number in the reply that lies in [1, 5], rounded, else None.

    "Score: **4**", "4/5", "I'd say 3 out of 5" give 4, 4, 3; a decimal such as "4.3" rounds
    (half up) to 4; numbers outside the scale are skipped ("10/10, so 5" gives 5), and a reply
    with none in range ("0.5", "7 stars", "excellent") gives None.
    """
    if not reply:
        return None
    for match in _NUMBER.finditer(reply):
        value = float(match.group(0))
        if 1.0 <= value <= 5.0:
            return int(value + 0.5)
    return None


@register_step("quality_judge_v1", group="score")
class JudgeQualityStep:
    """Scores rows 1–5 with a local chat model (default: the shipped SmolLM2).

    Args:
        model: `smollm2` or a local Hugging Face chat-model folder.
        max_chars: the sample is cut to this many characters before prompting.
        max_new_tokens: reply length limit.
    """

    name = "quality_judge_v1"
    input_columns: tuple[str, ...] = ("text",)
    model_step = True
    batch_size = 32
    """Rows per `generate` call (and per `apply` batch: small batches make `where` scans slow)."""

    @dataclass(frozen=True)
    class Params:
        """Parameters of `quality_judge_v1`.

        Attributes:
            model: Judge model: `smollm2` or a local chat-model folder.
            max_chars: The sample is cut to this many characters before prompting.
            max_new_tokens: Reply length limit (tokens).
        """

        model: str = SMOLLM2
        max_chars: int = 1500
        max_new_tokens: int = 8

    def __init__(self, model: str = SMOLLM2, max_chars: int = 1500, max_new_tokens: int = 8):
        if max_chars < 1 or max_new_tokens < 1:
            raise CurationError("max_chars and max_new_tokens must be positive")
        self.model_name = model if model == SMOLLM2 else str(resolve_model(model).resolve())
        self.max_chars = max_chars
        self.max_new_tokens = max_new_tokens
        self.parse_failures = 0
        self._model: Any = None
        self._tokenizer: Any = None

    def params(self) -> dict[str, Any]:
        """Model, rubric digest and generation limits."""
        return {
            "model": self.model_name,
            "rubric": RUBRIC_DIGEST,
            "max_chars": self.max_chars,
            "max_new_tokens": self.max_new_tokens,
            "decoding": "greedy",
        }

    def output_schema(self) -> pa.Schema:
        """The raw reply (always set once computed) and the parsed score (null if unparsed)."""
        return pa.schema(
            [pa.field(f"{self.name}_reply", pa.string()), pa.field(self.name, pa.int8())]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Ask the model about every row of the batch, in one padded generate call."""
        replies = self.generate([t or "" for t in batch.column("text").to_pylist()])
        scores = [parse_score(r) for r in replies]
        self.parse_failures += sum(s is None for s in scores)
        return pa.RecordBatch.from_arrays(
            [pa.array(replies, pa.string()), pa.array(scores, pa.int8())],
            schema=self.output_schema(),
        )

    def generate(self, samples: list[str]) -> list[str]:
        """The model's replies to the rubric for each sample (greedy, one padded batch)."""
        from curation.generate import greedy_generate

        tokenizer, model = self._load()
        prompts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": RUBRIC.format(sample=s[: self.max_chars])}],
                tokenize=False,
                add_generation_prompt=True,
            )
            + PREFILL
            for s in samples
        ]
        return greedy_generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=self.max_new_tokens,
            batch_size=max(1, len(prompts)),
            add_special_tokens=False,
        )

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            folder = str(resolve_model(self.model_name))
            tokenizer = copy.deepcopy(load_tokenizer(folder))  # padding set below is ours
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"
            if not tokenizer.chat_template:
                raise CurationError(f"judge model {self.model_name} has no chat template")
            self._tokenizer = tokenizer
            self._model = load_causal_lm(folder, dtype="float32")
        return self._tokenizer, self._model
