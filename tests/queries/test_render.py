"""Rendering records into chat, instruction, prompt and text examples."""

from __future__ import annotations

from typing import Any

import pytest

from queries import FormatSpec, QueryError, render

CHAT: dict[str, Any] = {
    "id": "abc",
    "kind": "chat",
    "text": "Hi\n\nHello!\n\nPrice?\n\nTwelve.",
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Price?"},
        {"role": "assistant", "content": "Twelve."},
    ],
    "meta": '{"price": 12.4, "title": "Mug"}',
    "source": "shop",
}


def test_chat_keeps_messages_and_adds_system() -> None:
    assert render(CHAT, FormatSpec("chat")) == {"messages": CHAT["messages"]}
    out = render(CHAT, FormatSpec("chat", system="Be brief."))
    assert out["messages"][0] == {"role": "system", "content": "Be brief."}
    assert out["messages"][1:] == CHAT["messages"]


def test_instruction_prompt_is_everything_before_the_last_answer() -> None:
    out = render(CHAT, FormatSpec("instruction"))
    assert out == {
        "prompt": "### Instruction:\nHi\n\n### Response:\nHello!\n\n"
        "### Instruction:\nPrice?\n\n### Response:\n",
        "completion": "Twelve.",
    }


def test_prompt_template_fields_from_columns_meta_and_turns() -> None:
    fmt = FormatSpec(
        "prompt",
        prompt="Q: How much is the {title} from {source}? Asked: {user}\nAnswer: $",
        completion="{price:.0f}",
    )
    assert render(CHAT, fmt) == {
        "prompt": "Q: How much is the Mug from shop? Asked: Hi\nAnswer: $",
        "completion": "12",
    }
    assert render(CHAT, FormatSpec("prompt", prompt="{assistant}", completion=""))["prompt"] == (
        "Twelve."
    )


def test_missing_prompt_field_names_row_and_field() -> None:
    fmt = FormatSpec("prompt", prompt="{text}", completion=" {weight}")
    with pytest.raises(QueryError, match=r"record abc: prompt field \{weight\} is missing"):
        render(CHAT, fmt)


def test_text_and_errors() -> None:
    assert render(CHAT, FormatSpec("text")) == {"text": CHAT["text"]}
    plain = {"id": "t1", "kind": "text", "text": "just text", "messages": None}
    with pytest.raises(QueryError, match="record t1: template chat needs messages"):
        render(plain, FormatSpec("chat"))
    one_sided = {**CHAT, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(QueryError, match="record abc: template instruction needs an assistant"):
        render(one_sided, FormatSpec("instruction"))
