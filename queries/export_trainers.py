"""Exports shaped for other trainers: LLaMA-Factory, trl, Axolotl.

Each format takes one exported row (`id`, `split`, `component`, the rendered example, and the
record's `kind`, `rejected`, `meta`, with message fields restored) and returns the row in that
trainer's documented schema, or a reason it cannot be written:

- `sharegpt` / `alpaca`: LLaMA-Factory's two dataset formats, with their entries merged into
  `dataset_info.json` beside the files. Its converter drops a conversation that does not
  alternate user and assistant turns after an optional leading system turn, or that does not
  end on the assistant; such rows are written (the file is valid) and counted in
  `trainer_drops`, unless `trim_trailing_user` drops trailing user turns first.
- `trl-sft`: trl's SFT shapes (`messages`, or `prompt` + `completion`, or `text`).
- `trl-dpo`: trl's conversational preference shape (`prompt` messages, `chosen` and
  `rejected` as one assistant message each); rows that are not preference pairs are skipped.
- `axolotl`: `messages` for Axolotl's `chat_template` type, with `STEM.axolotl.yaml` holding
  the dataset block.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from queries.errors import QueryError
from queries.export_formats import Converted, ExportFormat, Row, register_format
from queries.manifest import export_stem, stem_path

SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


def _turns(row: Row, trim: bool) -> tuple[str | None, list[Row]]:
    """(system prompt, the other messages), trailing user turns trimmed if asked."""
    messages = list(row.get("messages") or [])
    if not messages and "prompt" in row:
        messages = [
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["completion"]},
        ]
    system = None
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    if trim:
        while messages and messages[-1]["role"] != "assistant":
            messages.pop()
    return system, messages


def llamafactory_problem(messages: list[Row]) -> str | None:
    """Why LLaMA-Factory's converter would drop these turns (system already split off)."""
    if not messages:
        return "no conversation turns"
    for i, m in enumerate(messages):
        want = ("user", "tool") if i % 2 == 0 else ("assistant",)
        if m["role"] not in want:
            return "turns do not alternate user/assistant"
    if len(messages) % 2:
        return "does not end on an assistant turn"
    return None


def to_sharegpt(row: Row, trim: bool) -> Converted:
    """The row as LLaMA-Factory's ShareGPT shape (`conversations` of `from`/`value`).

    A text row is skipped. Extra message fields are kept on each turn; the system prompt
    becomes `system`. `trim` drops trailing user turns first.
    """
    if "text" in row and "messages" not in row:
        return None, "a text example has no conversation", None
    system, messages = _turns(row, trim)
    out: Row = {
        "conversations": [
            {"from": SHAREGPT_ROLES.get(m["role"], m["role"]), "value": m["content"]}
            | {k: v for k, v in m.items() if k not in ("role", "content")}
            for m in messages
        ]
    }
    if system is not None:
        out["system"] = system
    return {"id": row["id"]} | out, None, llamafactory_problem(messages)


def to_alpaca(row: Row, trim: bool) -> Converted:
    """The row as LLaMA-Factory's Alpaca shape: the last exchange, earlier ones as `history`.

    A text row, or turns LLaMA-Factory would drop, are skipped (the pairs cannot be formed).
    `trim` drops trailing user turns first.
    """
    if "text" in row and "messages" not in row:
        return None, "a text example has no instruction", None
    system, messages = _turns(row, trim)
    problem = llamafactory_problem(messages)
    if problem is not None:  # no pairs to write
        return None, f"cannot be written as alpaca: {problem}", problem
    pairs = [
        [messages[i]["content"], messages[i + 1]["content"]] for i in range(0, len(messages), 2)
    ]
    out: Row = {"id": row["id"], "instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if system is not None:
        out["system"] = system
    if len(pairs) > 1:
        out["history"] = pairs[:-1]
    return out, None, None


def to_trl_sft(row: Row, trim: bool) -> Converted:
    """The row in trl's SFT shape: `messages`, else `prompt` + `completion`, else `text`.

    `trim` is unused: trl trains on whatever turns it is given.
    """
    for keys in (("messages",), ("prompt", "completion"), ("text",)):
        if all(k in row for k in keys):
            return {k: row[k] for k in keys}, None, None
    return None, "no messages, prompt/completion or text", None


def to_trl_dpo(row: Row, trim: bool) -> Converted:
    """A preference pair in trl's conversational DPO shape; other rows are skipped.

    `prompt` is every turn but the last, `chosen` the last (assistant) turn and `rejected`
    the pair's other answer, each as a one-message list. `trim` is unused.
    """
    if row.get("kind") != "preference" or not row.get("messages"):
        return None, "not a preference pair", None
    *prompt, chosen = row["messages"]
    out = {
        "prompt": prompt,
        "chosen": [chosen],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
    }
    return out, None, None


def to_axolotl(row: Row, trim: bool) -> Converted:
    """The row's `messages` for Axolotl's `chat_template` type; a text row is skipped.

    `trim` is unused.
    """
    if "messages" not in row:
        return None, "the chat_template type needs messages", None
    return {"messages": row["messages"]}, None, None


def llamafactory_entry(fmt: str, file_name: str) -> Row:
    """A `dataset_info.json` entry for one exported file (LLaMA-Factory's documented keys)."""
    if fmt == "sharegpt":
        return {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "assistant_tag": "gpt",
                "observation_tag": "observation",
                "system_tag": "system",
            },
        }
    return {
        "file_name": file_name,
        "formatting": "alpaca",
        "columns": {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "system": "system",
            "history": "history",
        },
    }


def axolotl_config(folder: str, files: dict[str, str]) -> str:
    """The `datasets:` (train) and `test_datasets:` (other splits) block of an Axolotl config."""

    def block(split: str, name: str) -> Row:
        return {
            "path": folder,
            "ds_type": "json",
            "data_files": [name],
            "split": "train",  # each file is its own dataset: its rows load as `train`
            "type": "chat_template",
            "field_messages": "messages",
            "message_property_mappings": {"role": "role", "content": "content"},
        }

    out: Row = {"datasets": [block(s, f) for s, f in files.items() if s == "train"]}
    tests = [block(s, f) for s, f in files.items() if s != "train"]
    if tests:
        out["test_datasets"] = tests
    text: str = yaml.safe_dump(out, sort_keys=False)
    return text


def update_dataset_info(out: Path, fmt: str, files: dict[str, str]) -> None:
    """Merge this export's entries (`STEM_SPLIT`) into `dataset_info.json` in its folder.

    Raises:
        QueryError: the folder's `dataset_info.json` is not a JSON object.
    """
    path = out.with_name("dataset_info.json")
    info: Row = {}
    if path.exists():
        try:
            info = dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as e:
            raise QueryError(f"{path}: not a LLaMA-Factory dataset_info.json ({e})") from None
    stem = export_stem(out)
    for split, name in files.items():
        info[f"{stem}_{split}"] = llamafactory_entry(fmt, name)
    path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")


class _LlamaFactory(ExportFormat):
    """LLaMA-Factory's formats: counted drops, `dataset_info.json` beside the files."""

    must_fit = True

    def write_sidecars(self, out: Path, files: dict[str, str]) -> None:
        """Merge the export's entries into `dataset_info.json`."""
        update_dataset_info(out, self.name, files)


@register_format
class ShareGptFormat(_LlamaFactory):
    """LLaMA-Factory's ShareGPT shape (`conversations` of `from`/`value`)."""

    name = "sharegpt"
    description = "LLaMA-Factory sharegpt rows + dataset_info.json"

    def convert(self, row: Row, trim: bool) -> Converted:
        """See `to_sharegpt`."""
        return to_sharegpt(row, trim)


@register_format
class AlpacaFormat(_LlamaFactory):
    """LLaMA-Factory's Alpaca shape (`instruction`, `input`, `output`, `history`)."""

    name = "alpaca"
    description = "LLaMA-Factory alpaca rows + dataset_info.json"

    def convert(self, row: Row, trim: bool) -> Converted:
        """See `to_alpaca`."""
        return to_alpaca(row, trim)


@register_format
class TrlSftFormat(ExportFormat):
    """trl's SFT shapes."""

    name = "trl-sft"
    description = "trl SFT rows (messages | prompt+completion | text)"
    must_fit = True

    def convert(self, row: Row, trim: bool) -> Converted:
        """See `to_trl_sft`."""
        return to_trl_sft(row, trim)


@register_format
class TrlDpoFormat(ExportFormat):
    """trl's conversational DPO shape; rows that are not preference pairs are skipped."""

    name = "trl-dpo"
    description = "trl conversational DPO rows (prompt, chosen, rejected)"
    must_fit = True

    def convert(self, row: Row, trim: bool) -> Converted:
        """See `to_trl_dpo`."""
        return to_trl_dpo(row, trim)


@register_format
class AxolotlFormat(ExportFormat):
    """`messages` for Axolotl's `chat_template` type, with `STEM.axolotl.yaml`."""

    name = "axolotl"
    description = "Axolotl chat_template rows + STEM.axolotl.yaml"
    must_fit = True

    def convert(self, row: Row, trim: bool) -> Converted:
        """See `to_axolotl`."""
        return to_axolotl(row, trim)

    def write_sidecars(self, out: Path, files: dict[str, str]) -> None:
        """Write `STEM.axolotl.yaml`, the dataset blocks of an Axolotl config."""
        stem_path(out, ".axolotl.yaml").write_text(axolotl_config(str(out.parent.resolve()), files))
