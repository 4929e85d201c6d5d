"""Fixtures for the eval tests.

A tiny random Llama with a word-level tokenizer, and a lake with chat, prompt/completion,
numeric and multiple-choice eval sets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import Lake
from curation.testing import make_lake

CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)

CHATS = [
    {
        "messages": [
            {"role": "user", "content": f"hello number {i} how are you"},
            {"role": "assistant", "content": f"fine thanks number {i}"},
        ]
    }
    for i in range(6)
]
QA = [
    {"prompt": "what is the capital of france", "completion": "paris"},
    {"prompt": "what colour is the sky", "completion": "blue"},
    {"prompt": "name a fruit", "completion": "apple"},
]
PRICES = [
    {"prompt": f"price of item {i} in dollars", "completion": f"${(i + 1) * 10}.00"}
    for i in range(4)
]
QUIZ = [
    {"text": "the sky is", "choices": ["blue", "green", "paris"], "answer": 0},
    {"text": "capital of france is", "choices": ["apple", "paris"], "answer": "B"},
]
PLAIN = [{"text": "just some words without any answer"}]
CODE = [{"text": "def add(a, b):\n", "canonical_solution": "return a + b", "task_id": "t/0"}]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random Llama and a word-level tokenizer trained on the test texts."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from training.testing import make_tiny_llama

    torch.set_num_threads(1)  # tiny matmuls: threads only contend on a shared 2-core box
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    texts = [m["content"] for r in CHATS for m in r["messages"]]
    texts += [r["prompt"] + " " + r["completion"] for r in QA + PRICES]
    texts += [r["text"] + " " + " ".join(r["choices"]) for r in QUIZ] + [PLAIN[0]["text"]]
    texts += [r["text"] + r["canonical_solution"] for r in CODE]
    words = " ".join([*texts, "<user> <assistant> <system>", "$10.00 10 20 30 40"])
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(
        [words], trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "</s>", "<s>"])
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="<s>",
    )
    fast.chat_template = CHAT_TEMPLATE
    # the model itself is training's shipped test helper; only the tokenizer is eval-specific
    return make_tiny_llama(folder, [], hidden_size=32, tokenizer=fast)


@pytest.fixture
def eval_lake(tmp_path: Path) -> Lake:
    """A lake with the sources chat, qa, prices, quiz, plain and code."""
    sources = {"chat": CHATS, "qa": QA, "prices": PRICES, "quiz": QUIZ, "plain": PLAIN}
    return make_lake(tmp_path, {**sources, "code": CODE})
