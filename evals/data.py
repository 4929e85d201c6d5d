"""What a suite evaluates: examples from a mix split or from an eval set (a lake source).

A mix split comes rendered by `queries.open_mix(lake, name).examples(split)`; an eval set is the
rows of `records` with `source = NAME`. Both become `EvalExample`s: the text to score, the
prompt to answer and its reference, and (for multiple choice) the options.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from curation.lake import Lake
from curation.sqltext import equals
from evals.errors import EvalError

Message = dict[str, str]
REFERENCE_FIELDS = ("canonical_solution", "reference", "answer", "target", "completion", "output")
CHOICE_FIELDS = ("choices", "options")


@dataclass(frozen=True)
class EvalExample:
    """One row to evaluate.

    Attributes:
        id: the record id (the key the per-row metrics are written back under).
        messages: a chat (loss on assistant turns; the last assistant turn is the reference).
        prompt: a prompt string, with `completion` as the scored part / reference.
        completion: the completion of `prompt`.
        text: plain text (loss on every token; no reference).
        reference: an explicit reference answer (e.g. from a meta field), overriding the above.
        choices: options of a multiple-choice question, with `answer` the right one's index.
    """

    id: str
    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    completion: str | None = None
    text: str | None = None
    reference: str | None = None
    choices: tuple[str, ...] | None = None
    answer: int | None = None

    def prompt_and_reference(self) -> tuple[list[Message] | str, str | None]:
        """The prompt to answer and its reference answer.

        The prompt is the chat turns before the last assistant turn, or a string; the
        reference is None when the example has none.
        """
        if self.messages:
            last = max(
                (i for i, m in enumerate(self.messages) if m["role"] == "assistant"), default=None
            )
            if last is None:
                return list(self.messages), self.reference
            ref = self.reference if self.reference is not None else self.messages[last]["content"]
            return list(self.messages[:last]), ref
        if self.prompt is not None:
            return self.prompt, self.reference if self.reference is not None else self.completion
        return self.text or "", self.reference


def from_rendered(rows: Iterable[Mapping[str, Any]]) -> list[EvalExample]:
    """Examples from rendered mix examples (`id` plus `messages` | `prompt`+`completion` | `text`)."""
    out = []
    for row in rows:
        messages = row.get("messages")
        out.append(
            EvalExample(
                id=str(row["id"]),
                messages=tuple(_message(m) for m in messages) if messages else None,
                prompt=row.get("prompt"),
                completion=row.get("completion"),
                text=row.get("text"),
            )
        )
    return out


def from_records(rows: Iterable[Mapping[str, Any]]) -> list[EvalExample]:
    """Examples from `records` rows (`id, kind, text, messages, meta`) of an eval set.

    References come from a meta field (`canonical_solution`, `reference`, `answer`, …) when one
    is there, else from the last assistant turn; options from meta `choices`/`options` with
    `answer` an index, a letter or the option's text.
    """
    out = []
    for row in rows:
        meta = orjson.loads(row["meta"]) if row.get("meta") else {}
        choices = next((meta[k] for k in CHOICE_FIELDS if isinstance(meta.get(k), list)), None)
        reference = next(
            (str(meta[k]) for k in REFERENCE_FIELDS if meta.get(k) not in (None, "")), None
        )
        messages = row.get("messages")
        answer = _answer_index(meta.get("answer"), choices) if choices else None
        if messages:
            out.append(
                EvalExample(
                    id=row["id"],
                    messages=tuple(_message(m) for m in messages),
                    reference=None if choices else reference,
                    choices=tuple(map(str, choices)) if choices else None,
                    answer=answer,
                )
            )
        else:
            out.append(
                EvalExample(
                    id=row["id"],
                    prompt=row["text"],
                    # heldout scores the reference as the completion of the prompt
                    completion=None if choices else reference,
                    reference=None if choices else reference,
                    choices=tuple(map(str, choices)) if choices else None,
                    answer=answer,
                )
            )
    return out


def mix_examples(
    lake: Lake, mix: str, split: str, version: int | None = None, limit: int | None = None
) -> tuple[list[EvalExample], dict[str, Any]]:
    """The rendered examples of a mix split, and the mix's identity.

    The mix is `NAME`, `NAME@VERSION`, or `NAME` with `version`; its identity is its name,
    version, checksum and records version.

    Raises:
        EvalError: the mix does not exist or the split is empty.
    """
    try:
        import queries
        from queries.errors import QueryError

        opened = queries.open_mix(lake, mix, version)
        rows = list(itertools.islice(opened.examples(split), limit))
    except QueryError as e:
        raise EvalError(f"mix {mix!r}: {e}") from None
    if not rows:
        raise EvalError(f"mix {mix!r} has no rows in split {split!r}; pick another --split")
    info = {
        "mix": opened.name,
        "mix_version": opened.version,
        "mix_checksum": opened.checksum,
        "records_version": opened.records_version,
    }
    return from_rendered(rows), info


def eval_set_examples(
    lake: Lake, name: str, limit: int | None = None
) -> tuple[list[EvalExample], dict[str, Any]]:
    """The rows of eval set `name`, read at the latest version.

    They are the source registered under that name in `eval_sets` (by `mixlake
    decontaminate`), else the records with `source = NAME`.

    Raises:
        EvalError: no record has that source.
    """
    registered = registered_eval_sets(lake)
    source = registered.get(name, name)
    ds = lake.records()
    rows = ds.to_table(
        columns=["id", "kind", "text", "messages", "meta"],
        filter=equals("source", source),
        limit=limit,
    ).to_pylist()
    if not rows:
        sources = sorted(set(ds.to_table(columns=["source"]).column("source").to_pylist()))
        raise EvalError(
            f"no eval set {name!r}: no records with source = {source!r} (registered eval sets: "
            f"{', '.join(registered) or 'none'}; sources: {', '.join(sources[:10]) or 'none'}); "
            f"ingest it with `mixlake ingest … --source {name}`"
        )
    info = {"mix": f"eval-set:{name}", "mix_checksum": None, "records_version": int(ds.version)}
    return from_records(rows), info


def registered_eval_sets(lake: Lake) -> dict[str, str]:
    """Eval set name → source, as registered in `eval_sets` (by `mixlake decontaminate`)."""
    from curation.steps.decontam import eval_sets

    return {e.name: e.source for e in eval_sets(lake)}


def _message(m: Mapping[str, Any]) -> Message:
    return {"role": str(m["role"]), "content": str(m["content"])}


def _answer_index(answer: Any, choices: list[Any]) -> int | None:
    if isinstance(answer, int) and 0 <= answer < len(choices):
        return answer
    if isinstance(answer, str):
        text = answer.strip()
        if len(text) == 1 and text.upper() in "ABCDEFGHIJ"[: len(choices)]:
            return "ABCDEFGHIJ".index(text.upper())
        if text in map(str, choices):
            return [str(c) for c in choices].index(text)
        if text.isdigit() and int(text) < len(choices):
            return int(text)
    return None
