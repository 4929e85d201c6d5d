"""The one greedy generate (`curation.generate`) and its three callers.

They agree with each other and with a greedy loop written out by hand, batched or not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from curation.generate import greedy_generate, render_chat
from curation.steps.judge import PREFILL, RUBRIC, JudgeQualityStep
from evals.models import load_model
from evals.suites import EvalOptions, answer
from evals.targets import Target
from training.models import generate as chat_generate

CHATS = [
    [{"role": "user", "content": "hello number 1 how are you"}],
    [{"role": "user", "content": "name a fruit"}],
    [{"role": "user", "content": "what colour is the sky and what is the capital of france"}],
]


@pytest.fixture(scope="module")
def loaded(tiny_llama: Path) -> tuple[Any, Any]:
    return load_model(Target("t", str(tiny_llama)))


def _by_hand(model: Any, tokenizer: Any, text: str, new_tokens: int) -> str:
    import torch

    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    start = ids.shape[1]
    with torch.inference_mode():
        for _ in range(new_tokens):
            nxt = model(input_ids=ids).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
            if int(nxt) == tokenizer.eos_token_id:
                break
    return str(tokenizer.decode(ids[0, start:], skip_special_tokens=True)).strip()


def test_trainer_chat_and_eval_answers_are_the_same_greedy_answers(loaded: tuple[Any, Any]) -> None:
    model, tok = loaded
    expected = [_by_hand(model, tok, render_chat(tok, c, True), 6) for c in CHATS]
    assert [chat_generate(model, tok, c, 6) for c in CHATS] == expected
    batched = answer(model, tok, CHATS, EvalOptions(max_new_tokens=6, batch_size=3))
    assert batched == expected  # left padding in a batch changes nothing
    assert any(expected)  # the random model does answer something


def test_the_judge_step_generates_through_the_same_helper(
    tiny_llama: Path, loaded: tuple[Any, Any]
) -> None:
    model, tok = loaded
    step = JudgeQualityStep(model=str(tiny_llama), max_new_tokens=4)
    samples = ["the sky is blue", "just some words without any answer and more words"]
    replies = step.generate(samples)
    prompts = [
        render_chat(tok, [{"role": "user", "content": RUBRIC.format(sample=s)}], True) + PREFILL
        for s in samples
    ]
    one_by_one = [
        greedy_generate(model, tok, [p], max_new_tokens=4, add_special_tokens=False)[0]
        for p in prompts
    ]
    assert replies == one_by_one == [_by_hand(model, tok, p, 4) for p in prompts]
