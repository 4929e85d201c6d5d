"""The chitchat-dataset package's conversations (`pkg:chitchat`) as chat rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from curation.errors import CurationError
from curation.ingest.inputs import BadRow, Progress, Row


def read_chitchat(p: Path, progress: Progress) -> Iterator[Row]:
    """The chitchat-dataset package's JSON: {conversation_id: {messages: [[utterance…]…]}}.

    Each inner list is one turn (consecutive utterances of one sender). The first sender
    becomes `user`, the other `assistant`; utterances of a turn are joined by newlines.
    """
    with open(p, "rb") as f:
        raw = f.read()
    progress(p.stat().st_size)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CurationError(
            f"{p}: not a chitchat file (not one JSON object of conversations); "
            "for other files drop --format chitchat or pick their format"
        ) from None
    if not isinstance(data, dict):
        raise CurationError(f"{p}: not a chitchat file (expected an object of conversations)")
    for number, (conv_id, conv) in enumerate(data.items(), start=1):
        try:
            turns = conv["messages"]
            first = turns[0][0]["sender"]
            messages = [
                {
                    "role": "user" if turn[0]["sender"] == first else "assistant",
                    "content": "\n".join(u["text"] for u in turn),
                }
                for turn in turns
            ]
        except (KeyError, IndexError, TypeError) as e:
            yield number, BadRow(f"conversation {conv_id} is malformed ({e!r})", str(conv)[:10_000])
            continue
        extra = {k: v for k, v in conv.items() if k != "messages"}
        yield number, {"messages": messages, "conversation_id": conv_id, **extra}
