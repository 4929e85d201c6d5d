"""Rendering a record into the training example the trainer (or an exported file) sees.

A rendered example has exactly one of:
- `messages`: a list of {role, content}; the trainer applies its tokenizer's chat template;
- `prompt` + `completion`: the loss goes on the completion only;
- `text`: plain language-model text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from queries.errors import QueryError
from queries.spec import FormatSpec

DERIVED_FIELDS = ("user", "assistant")
"""Fields a prompt template can use on chat records: the first user turn, the last answer."""


def render(record: dict[str, Any], fmt: FormatSpec) -> dict[str, Any]:
    """Turn one `records` row (as a dict) into a training example.

    Args:
        record: a row with at least the columns `render_columns` names.
        fmt: the mix's format.

    Raises:
        QueryError: the record cannot take this format (e.g. a text record under `chat`, or a
            prompt field that is neither a column nor a key of `meta`); names the row id.
    """
    if fmt.template == "text":
        return {"text": record["text"]}
    if fmt.template == "prompt":
        fields = _Fields(record)
        return {
            "prompt": _fill(fmt.prompt or "", fields, record),
            "completion": _fill(fmt.completion or "", fields, record),
        }
    messages = _messages(record, fmt)
    if fmt.template == "chat":
        return {"messages": messages}
    return _instruction(messages, record)


def render_columns(fmt: FormatSpec, columns: list[str] | set[str]) -> list[str]:
    """The `records` columns `render` reads for this format."""
    if fmt.template == "text":
        return ["id", "text"]
    if fmt.template in ("chat", "instruction"):
        return ["id", "kind", "messages"]
    wanted = ["id", "kind"]
    for name in fmt.fields():
        if name in columns and name not in wanted:
            wanted.append(name)
    if "meta" in columns:
        wanted.append("meta")
    if any(f in DERIVED_FIELDS for f in fmt.fields()) and "messages" not in wanted:
        wanted.append("messages")
    return wanted


def _messages(record: dict[str, Any], fmt: FormatSpec) -> list[dict[str, str]]:
    raw = record.get("messages")
    if not raw:
        raise QueryError(
            f"record {record.get('id')}: template {fmt.template} needs messages but it is a "
            f"{record.get('kind', 'text')} record; select chat records or use template text/prompt"
        )
    out = [{"role": m["role"], "content": m["content"]} for m in raw]
    if fmt.system and out[0]["role"] != "system":
        out.insert(0, {"role": "system", "content": fmt.system})
    return out


def _instruction(messages: list[dict[str, str]], record: dict[str, Any]) -> dict[str, Any]:
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise QueryError(
            f"record {record.get('id')}: template instruction needs an assistant answer"
        )
    parts = []
    for m in messages[:last]:
        if m["role"] == "system":
            parts.append(f"{m['content']}\n\n")
        elif m["role"] == "assistant":
            parts.append(f"### Response:\n{m['content']}\n\n")
        else:
            parts.append(f"### Instruction:\n{m['content']}\n\n")
    parts.append("### Response:\n")
    return {"prompt": "".join(parts), "completion": messages[last]["content"]}


class _Fields(Mapping[str, Any]):
    """Template fields of one record: columns first, then `meta` keys, then user/assistant."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self._meta: dict[str, Any] | None = None

    def _meta_dict(self) -> dict[str, Any]:
        if self._meta is None:
            raw = self.record.get("meta")
            try:
                loaded = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                loaded = {}
            self._meta = loaded if isinstance(loaded, dict) else {}
        return self._meta

    def __getitem__(self, key: str) -> Any:
        value = self.record.get(key)
        if value is not None and key != "meta":
            return value
        meta = self._meta_dict()
        if meta.get(key) is not None:
            return meta[key]
        if key in DERIVED_FIELDS and self.record.get("messages"):
            role = key
            turns = [m["content"] for m in self.record["messages"] if m["role"] == role]
            if turns:
                return turns[0] if key == "user" else turns[-1]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.record)

    def __len__(self) -> int:
        return len(self.record)


def _fill(template: str, fields: _Fields, record: dict[str, Any]) -> str:
    try:
        return template.format_map(fields)
    except KeyError as e:
        name = e.args[0]
        raise QueryError(
            f"record {record.get('id')}: prompt field {{{name}}} is missing (not a column, "
            "not a key of meta)"
        ) from None
    except (ValueError, TypeError) as e:
        raise QueryError(f"record {record.get('id')}: cannot fill template: {e}") from None
