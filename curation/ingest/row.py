"""Turn one raw row (a dict from any reader) into the core record columns.

One row-wise code path for every input shape, so every rejection has an exact row and reason.
Recognised shapes, in the order they are tried:

- preference: `chosen` + `rejected` (+ `prompt`, a string or a message list)
- chat: `messages` as [{role, content}], or ShareGPT `conversations` as [{from, value}]
- instruction: `instruction` + `output` (+ `input`, `system`), Alpaca style
- prompt/completion: `prompt` + `completion` (or `response`)
- text: `text`

Everything not consumed by the shape goes to `meta` as a JSON object (`curation.lossless`:
big integers exact, NaN tagged), and so do the fields of a message other than the role and
content it was read from (`tool_calls`, `name`, …: under `lossless.MESSAGE_FIELDS_KEY`, a
list aligned with the messages). A field whose value is null counts as absent (as a null cell
in Parquet or an empty one in CSV does), and so does a null `role`/`content` of a message
next to its ShareGPT `from`/`value`. Nothing is dropped silently: a `--map` onto a field the
row already has, a reserved key, or a value that cannot be stored exactly rejects the row.

This row path is the definition of a record; `bulk.normalize_table` is a bulk fast path
held to the same results.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from curation.errors import CurationError
from curation.lossless import MESSAGE_FIELDS_KEY, Unrepresentable, dumps

ROLE_ALIASES = {
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
MAP_TARGETS = (
    "text",
    "messages",
    "conversations",
    "instruction",
    "input",
    "output",
    "system",
    "prompt",
    "completion",
    "chosen",
    "rejected",
)
KIND_HINTS = ("auto", "text", "chat", "preference")
LIST_FIELDS = ("messages", "conversations")
STRING_FIELDS = tuple(f for f in (*MAP_TARGETS, "response") if f not in LIST_FIELDS)
"""The input fields the shapes read as strings; `LIST_FIELDS` are read as message lists."""


class Normalized(NamedTuple):
    """The core columns of one record, before id and provenance are added.

    A NamedTuple rather than a frozen dataclass: one is built per input row, and this is
    the ingest hot path (construction is about 3x cheaper).
    """

    kind: str
    text: str
    messages: tuple[tuple[str, str], ...] | None
    rejected: str | None
    meta: str | None


class RowRejected(ValueError):
    """A row that cannot become a record; the message is the reason."""


def normalize_row(
    row: Any, mapping: dict[str, str] | None = None, kind_hint: str = "auto"
) -> Normalized:
    """Normalise one raw row; raise RowRejected with the reason if it cannot be.

    Args:
        row: one parsed input row (anything; only a dict can succeed).
        mapping: core field → input field renames applied first, e.g. {"text": "body"}.
        kind_hint: `auto`, or the kind the row must turn out to be.

    Returns:
        The record's kind, text, messages, rejected answer and meta (JSON of extra fields).

    Raises:
        RowRejected: the row has no recognised shape or a field of the wrong type or empty.
    """
    if not isinstance(row, dict):
        raise RowRejected(f"expected a JSON object, got {_type_name(row)}")
    obj: dict[str, Any] = row
    nulls: list[str] = []
    if None in obj.values():  # a null field is an absent one, in every format
        nulls = [k for k, v in obj.items() if v is None]
        obj = {k: v for k, v in obj.items() if v is not None}
    if mapping:
        obj = dict(obj)  # the caller's row is never modified
        for target, field in mapping.items():
            if field in obj and field != target:
                if target in obj:
                    raise RowRejected(
                        f"--map {target}={field} would overwrite the row's own {target!r} field"
                    )
                obj[target] = obj.pop(field)
    if MESSAGE_FIELDS_KEY in obj:
        raise RowRejected(f"field {MESSAGE_FIELDS_KEY!r} is reserved for mixlake")
    used: tuple[str, ...]
    messages: list[tuple[str, str]] | None
    fields: list[dict[str, Any] | None] | None = None
    rejected: str | None = None
    if "chosen" in obj and "rejected" in obj:
        kind, (messages, fields, rejected) = "preference", _preference(obj)
        used = _USED_PREFERENCE if not isinstance(obj.get("prompt"), list) else _USED_PAIR
    elif "messages" in obj:
        kind, used = "chat", _USED_MESSAGES
        messages, fields = _messages(obj["messages"], "messages")
    elif "conversations" in obj:
        kind, used = "chat", _USED_CONVERSATIONS
        messages, fields = _messages(obj["conversations"], "conversations")
    elif "instruction" in obj and "output" in obj:
        kind, messages, used = "chat", _instruction(obj), _USED_INSTRUCTION
    elif "prompt" in obj and ("completion" in obj or "response" in obj):
        answer_key = "completion" if "completion" in obj else "response"
        kind = "chat"
        messages = [
            *_system(obj),
            ("user", _text(obj, "prompt")),
            ("assistant", _text(obj, answer_key)),
        ]
        used = ("prompt", answer_key, "system")
    elif "text" in obj:
        kind, messages, used = "text", None, _USED_TEXT
    else:
        for key in nulls:
            if key in _SHAPE_FIELDS or key in (mapping or {}).values():
                raise RowRejected(f"field {key!r} is null")
        found = ", ".join(sorted(map(str, obj))) or "none"
        raise RowRejected(
            f"no recognised fields (has: {found}); map one with e.g. --map text=FIELD"
        )
    if kind_hint != "auto" and kind != kind_hint:
        raise RowRejected(f"expected a {kind_hint} record, found {kind} fields")
    turns: tuple[tuple[str, str], ...] | None = None
    if messages is None:
        text = _text(obj, "text")
    else:
        # A tuple of (str, str) tuples is left alone by the cyclic GC once seen, which keeps
        # the 8k rows an ingest batch holds from being traversed again and again.
        turns = tuple(messages)
        text = "\n\n".join([c for _, c in turns])
    extra = {k: v for k, v in obj.items() if k not in used}
    if fields is not None:
        extra[MESSAGE_FIELDS_KEY] = fields
    return Normalized(kind, text, turns, rejected, _meta_json(extra) if extra else None)


def _meta_json(extra: dict[str, Any]) -> str:
    """Extra fields as exact JSON with sorted keys (see `curation.lossless`)."""
    try:
        return dumps(extra, refuse_tags=True)
    except Unrepresentable as e:
        raise RowRejected(str(e)) from None


def parse_mapping(items: list[str]) -> dict[str, str]:
    """Parse `--map TARGET=FIELD` options into {target: field}.

    Raises:
        CurationError: a malformed item, a target given twice, or a field mapped onto two
            targets (the second would find nothing: a silent choice either way).
    """
    out: dict[str, str] = {}
    for item in items:
        target, sep, source_field = item.partition("=")
        target, source_field = target.strip(), source_field.strip()
        if not sep or not target or not source_field:
            raise CurationError(f"bad --map {item!r}: write it as TARGET=FIELD, e.g. text=body")
        if target in out:
            raise CurationError(
                f"--map {target}= is given twice ({out[target]} and {source_field}); "
                "map each target once"
            )
        out[target] = source_field
    check_mapping(out)
    return out


def check_mapping(mapping: dict[str, str] | None) -> None:
    """Refuse a mapping that sends one input field to two targets.

    Raises:
        CurationError: naming the field and both targets.
    """
    seen: dict[str, str] = {}
    for target, field in (mapping or {}).items():
        if field in seen:
            raise CurationError(
                f"--map {seen[field]}={field} and --map {target}={field} map one field twice"
            )
        seen[field] = target


_SHAPE_FIELDS = frozenset((*MAP_TARGETS, "response"))
_USED_PREFERENCE = ("prompt", "chosen", "rejected", "system")
_USED_PAIR = ("prompt", "chosen", "rejected")  # a message-list prompt: `system` stays in meta
_USED_MESSAGES = ("messages",)
_USED_CONVERSATIONS = ("conversations",)
_USED_INSTRUCTION = ("instruction", "input", "output", "system")
_USED_TEXT = ("text",)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise RowRejected(f"field {key!r} must be a string, got {_type_name(value)}")
    if not value or value.isspace():
        raise RowRejected(f"field {key!r} is empty")
    return value


def _system(obj: dict[str, Any]) -> list[tuple[str, str]]:
    value = obj.get("system")
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise RowRejected(f"field 'system' must be a string, got {_type_name(value)}")
    return [("system", value)]


def _messages(
    value: Any, key: str
) -> tuple[list[tuple[str, str]], list[dict[str, Any] | None] | None]:
    """(role, content) turns, and each message's other fields (None if no message has any)."""
    if not isinstance(value, list):
        raise RowRejected(f"field {key!r} must be a list of messages, got {_type_name(value)}")
    if not value:
        raise RowRejected(f"field {key!r} is empty")
    out = []
    fields: list[dict[str, Any] | None] | None = None
    aliases = ROLE_ALIASES
    blank = True
    for i, message in enumerate(value):
        if type(message) is not dict:
            raise RowRejected(f"{key}[{i}] must be an object, got {_type_name(message)}")
        role_key, content_key = "role", "content"
        role = message.get("role")
        if role is None:
            role_key, role = "from", message.get("from")
        content = message.get("content")
        if content is None:
            content_key, content = "value", message.get("value")
        canonical = aliases.get(role.lower()) if isinstance(role, str) else None
        if canonical is None:
            raise RowRejected(f"{key}[{i}] has an unknown role {role!r}")
        if not isinstance(content, str):
            raise RowRejected(f"{key}[{i}].content must be a string, got {_type_name(content)}")
        if blank and content and not content.isspace():
            blank = False
        out.append((canonical, content))
        if len(message) > 2 or role_key not in message or content_key not in message:
            extra = {
                k: v
                for k, v in message.items()
                if k != role_key and k != content_key and v is not None
            }
            if extra:
                if fields is None:
                    fields = [None] * len(value)
                fields[i] = extra
    if blank:
        raise RowRejected(f"field {key!r} has no non-empty message")
    return out, fields


def _instruction(obj: dict[str, Any]) -> list[tuple[str, str]]:
    prompt = _text(obj, "instruction")
    extra_input = obj.get("input")
    if extra_input not in (None, ""):
        if not isinstance(extra_input, str):
            raise RowRejected(f"field 'input' must be a string, got {_type_name(extra_input)}")
        prompt = f"{prompt}\n\n{extra_input}"
    return [*_system(obj), ("user", prompt), ("assistant", _text(obj, "output"))]


def _preference(
    obj: dict[str, Any],
) -> tuple[list[tuple[str, str]], list[dict[str, Any] | None] | None, str]:
    prompt = obj.get("prompt")
    fields: list[dict[str, Any] | None] | None = None
    if isinstance(prompt, list):
        turns, fields = _messages(prompt, "prompt")
    elif prompt is None:
        turns = []
    else:
        turns = [*_system(obj), ("user", _text(obj, "prompt"))]
    chosen, chosen_fields = _answer(obj, "chosen")
    rejected, rejected_fields = _answer(obj, "rejected")
    if not turns:
        raise RowRejected("preference row has no 'prompt'")
    if rejected_fields:
        names = ", ".join(sorted(rejected_fields))
        raise RowRejected(f"the rejected message has fields mixlake cannot keep ({names})")
    if chosen_fields:
        fields = (fields or [None] * len(turns)) + [chosen_fields]
    elif fields is not None:
        fields.append(None)
    return [*turns, ("assistant", chosen)], fields, rejected


def _answer(obj: dict[str, Any], key: str) -> tuple[str, dict[str, Any] | None]:
    """The answer of `chosen`/`rejected`: a string, or a list of exactly one assistant message."""
    value = obj.get(key)
    if isinstance(value, list):
        turns, fields = _messages(value, key)
        if len(turns) != 1 or turns[0][0] != "assistant":
            raise RowRejected(
                f"field {key!r} must hold one assistant message (has {len(turns)} "
                "message(s)); put the conversation before it in 'prompt'"
            )
        return turns[0][1], fields[0] if fields else None
    return _text(obj, key), None
