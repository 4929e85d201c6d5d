"""Test helpers shipped with the package: a tiny random Llama and a toy chat mix.

The Llama's tokenizer is trained on the fly, so the real code path (bnb 4-bit + peft + trl)
runs in seconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for m in messages %}< {{ m['role'] }} > {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}< assistant > {% endif %}"
)
COLORS = ("red", "blue", "green", "yellow", "black", "white", "orange", "purple")
THINGS = ("apple", "sky", "grass", "sun", "night", "snow", "carrot", "plum")


def toy_chat_rows(n: int = 8) -> list[dict[str, Any]]:
    """`n` short chat records with a learnable pattern (thing → color)."""
    rows = []
    for i in range(n):
        thing, color = THINGS[i % len(THINGS)], COLORS[i % len(COLORS)]
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"what color is the {thing} number {i} ?"},
                    {"role": "assistant", "content": f"the {thing} is {color} ."},
                ]
            }
        )
    return rows


def train_tokenizer(texts: Iterable[str]) -> Any:
    """A word-level fast tokenizer trained on `texts`, with a simple chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [*texts, "< user > < assistant > < system > ? . , ! :"]
    tok.train_from_iterator(
        corpus, trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"])
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_tiny_llama(
    folder: Path,
    texts: Sequence[str],
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    tokenizer: Any = None,
) -> Path:
    """Save a random tiny Llama and its tokenizer into `folder`.

    Args:
        folder: Where `save_pretrained` writes the model and the tokenizer.
        texts: The texts a word-level tokenizer is trained on (unless `tokenizer` is given).
        hidden_size: The model width (4 attention heads, 2 key/value heads).
        layers: Decoder layers.
        seed: Seeds torch, so the same arguments give the same weights.
        tokenizer: A tokenizer to use instead of training one.

    Returns:
        `folder`, loadable as a base model (`TrainConfig.base_model`).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if tokenizer is None:
        tokenizer = train_tokenizer(texts)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def texts_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every string in chat/prompt/text rows (the tokenizer's training corpus)."""
    out = []
    for row in rows:
        for m in row.get("messages") or []:
            out.append(m["content"])
        for key in ("text", "prompt", "completion"):
            if row.get(key):
                out.append(str(row[key]))
    return out


def toy_spec(
    name: str = "toy", rows: int = 8, splits: str = "{train: 1.0}", source: str = "toy"
) -> str:
    """The YAML of a one-component chat mix over `source` (the tests' standard toy mix)."""
    return (
        f"name: {name}\nrecords: latest\nseed: 3\ntotal_rows: {rows}\ncomponents:\n"
        f"  - name: all\n    sql: source = '{source}'\n    weight: 1.0\n"
        f"splits: {splits}\nformat: {{template: chat}}\n"
    )
