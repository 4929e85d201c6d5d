"""The optional `judge` suite: a local chat model grades the target's answers 1–5.

The target answers each prompt greedily; then the judge (default: the shipped SmolLM2) reads
the question, the reference when there is one, and the answer, under a fixed rubric, and
replies with a digit. The score parser and the "Rating: " prefill are the enrichment judge's
(`curation.steps.judge`), so both judges read replies the same way.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from curation.errors import CurationError
from curation.generate import greedy_generate
from curation.steps.judge import PREFILL, parse_score
from evals.data import EvalExample, Message
from evals.errors import EvalError
from evals.scoring import Progress, render_chat
from evals.suite_base import EvalOptions, PerRow, Suite, answer

RUBRIC = (
    "You are grading an assistant's answer.\n\nQuestion:\n{question}\n\n{reference}"
    "Answer:\n{answer}\n\nRate the answer from 1 to 5: 1 = wrong, off-topic or harmful; "
    "2 = mostly wrong or unhelpful; 3 = partly right; 4 = right with small flaws; "
    "5 = fully right, clear and helpful. Reply with one digit."
)
MAX_CHARS = 1500


def judge_prompt(question: list[Message] | str, answer: str, reference: str | None) -> str:
    """The rubric filled in for one answer (the question is the last user turn of a chat)."""
    if isinstance(question, list):
        users = [m["content"] for m in question if m["role"] == "user"]
        question = users[-1] if users else ""
    ref = f"Reference answer:\n{reference[:MAX_CHARS]}\n\n" if reference else ""
    return RUBRIC.format(question=question[:MAX_CHARS], reference=ref, answer=answer[:MAX_CHARS])


class Judge(Suite):
    """Answers graded 1–5 by a local judge model (per row: `parsed`, `score`)."""

    name = "judge"
    metrics = ("parsed", "score")
    answers = True
    shaping_options = ("max_length", "max_new_tokens", "judge_model")

    def check(self, options: EvalOptions) -> None:
        """The judge model must be `smollm2` or an existing folder (checked without loading)."""
        from curation.models import SMOLLM2, resolve_model

        if options.judge_model != SMOLLM2:
            try:
                resolve_model(options.judge_model)
            except CurationError as e:
                raise EvalError(f"suite judge: {e}") from None

    def compute(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> PerRow:
        """Generate answers with the target, then grade them with the judge."""
        pairs = [ex.prompt_and_reference() for ex in examples]
        answers = answer(model, tokenizer, [p for p, _ in pairs], options)
        judge_model, judge_tok = _load_judge(options.judge_model)
        prompts = [
            render_chat(judge_tok, [{"role": "user", "content": judge_prompt(p, a, r)}], True)
            + PREFILL
            for (p, r), a in zip(pairs, answers, strict=True)
        ]
        replies = greedy_generate(
            judge_model,
            judge_tok,
            prompts,
            max_new_tokens=8,
            batch_size=options.batch_size,
            max_length=options.max_length * 2,
            progress=progress,
            add_special_tokens=False,
        )
        scores = [parse_score(r) for r in replies]
        return {
            "parsed": [float(s is not None) for s in scores],
            "score": [None if s is None else float(s) for s in scores],
            "answer": answers,
        }

    def aggregate(
        self,
        examples: Sequence[EvalExample],
        per_row: PerRow,
        options: EvalOptions,
        tokenizer: Any,
    ) -> dict[str, float]:
        """The share of replies that held a score, and the mean score of those."""
        parsed = [float(s) for s in per_row["score"] if s is not None]
        return {
            "parsed_rate": float(np.mean(per_row["parsed"])),
            "rows": float(len(per_row["parsed"])),
            **({"mean_score": float(np.mean(parsed))} if parsed else {}),
        }


@functools.lru_cache(maxsize=1)
def _load_judge(name: str) -> tuple[Any, Any]:
    from curation.models import load_causal_lm, load_tokenizer

    try:
        tokenizer = copy.deepcopy(load_tokenizer(name))
        judge = load_causal_lm(name, dtype="float32")
    except CurationError as e:
        raise EvalError(f"suite judge: {e}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return judge, tokenizer
