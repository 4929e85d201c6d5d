"""Mix specs: a frozen dataclass that maps 1:1 onto the YAML a researcher writes.

```yaml
name: chitchat-curated
records: latest            # version number, tag, or latest (resolved when materialized)
seed: 7
total_rows: 2000           # or total_tokens (needs the n_tokens column)
exclude: [is_dup]          # SQL boolean expressions over records, applied to every component
on_contaminated: warn      # warn | fail | exclude (only checked when `contaminated` exists)
components:
  - name: good
    sql: source = 'chitchat' AND quality_heuristic_v1 > 0.6   # a predicate or a full SELECT
    weight: 1.0
splits: {train: 0.9, val: 0.1}
format: {template: chat}
```
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from queries.errors import QueryError

TEMPLATES = ("chat", "instruction", "prompt", "text")
ON_CONTAMINATED = ("warn", "fail", "exclude")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_TOP_KEYS = {
    "name",
    "description",
    "records",
    "seed",
    "total_rows",
    "total_tokens",
    "exclude",
    "on_contaminated",
    "components",
    "splits",
    "format",
}
_COMPONENT_KEYS = {
    "name",
    "sql",
    "weight",
    "max_rows",
    "max_tokens",
    "order_by",
    "stratify_by",
    "max_repeats",
}
_FORMAT_KEYS = {"template", "system", "prompt", "completion"}


@dataclass(frozen=True)
class ComponentSpec:
    """One source of rows in a mix.

    Attributes:
        name: unique within the spec; stored in the mix's `component` column.
        sql: DuckDB SQL over `records`: a full `SELECT … FROM records …` returning `id`, or just
            a WHERE predicate such as `source = 'chitchat' AND n_tokens < 512`.
        weight: share of the total (weights are normalised to sum to 1).
        max_rows: cap on the rows this component contributes.
        max_tokens: cap on the `n_tokens` this component contributes.
        order_by: SQL ORDER BY expression over `records`: take the top rows instead of a random
            sample (e.g. `quality_heuristic_v1 DESC`).
        stratify_by: SQL expression over `records` (e.g. `cluster`, `source`): sample evenly
            across its values, so small groups are not drowned by large ones.
        max_repeats: how many times one record may appear (1 = no upsampling).
    """

    name: str
    sql: str
    weight: float = 1.0
    max_rows: int | None = None
    max_tokens: int | None = None
    order_by: str | None = None
    stratify_by: str | None = None
    max_repeats: int = 1


@dataclass(frozen=True)
class FormatSpec:
    """How a record becomes a training example.

    Attributes:
        template: `chat` (messages; the trainer applies the tokenizer's chat template),
            `instruction` (prompt = the conversation up to the last answer, completion = that
            answer), `prompt` (named-field templates below) or `text` (plain LM text).
        system: optional system message added to chat/instruction examples that have none.
        prompt: for `template: prompt`, e.g. `"Question: How much? Content: {text} Answer:"`;
            fields come from core columns, enrichment columns, keys of `meta`, and `user` /
            `assistant` (first user turn, last assistant turn).
        completion: for `template: prompt`, e.g. `" {price}"`; the loss is on this part.
    """

    template: str = "chat"
    system: str | None = None
    prompt: str | None = None
    completion: str | None = None

    def fields(self) -> tuple[str, ...]:
        """Named fields used by the prompt/completion templates, in order of first use."""
        out: list[str] = []
        for tpl in (self.prompt, self.completion):
            for _, name, _, _ in string.Formatter().parse(tpl or ""):
                if name and name not in out:
                    out.append(name)
        return tuple(out)


@dataclass(frozen=True)
class MixSpec:
    """A training mix: which rows, how many, in which splits, rendered how.

    Attributes:
        name: mix name (letters, digits, `.`, `-`, `_`); the table is `mix__<name>`.
        components: where rows come from, with their weights.
        records: records version to pin: a number, a tag, or `latest`.
        seed: seeds every random choice; same spec + same version ⇒ same mix.
        total_rows: rows in the mix (exactly one of total_rows/total_tokens).
        total_tokens: `n_tokens` in the mix.
        exclude: SQL predicates; rows matching any are left out of every component.
        on_contaminated: what to do with rows flagged `contaminated`: warn, fail or exclude.
        splits: split name → fraction (must sum to 1); assigned by a hash of the id.
        format: how rows render for training.
        description: free text.
        path: the file the spec came from (not part of the YAML; used in messages).
        text: the YAML text as written (stored with the mix; hashed into `spec_hash`).
    """

    name: str
    components: tuple[ComponentSpec, ...]
    records: int | str = "latest"
    seed: int = 0
    total_rows: int | None = None
    total_tokens: int | None = None
    exclude: tuple[str, ...] = ()
    on_contaminated: str = "warn"
    splits: tuple[tuple[str, float], ...] = (("train", 1.0),)
    format: FormatSpec = field(default_factory=FormatSpec)
    description: str | None = None
    path: str | None = field(default=None, compare=False)
    text: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Refuse a spec with a problem `spec_problems` finds, naming the first."""
        problems = spec_problems(self)
        if problems:
            raise QueryError(problems[0])

    @property
    def where(self) -> str:
        """Prefix for messages: the spec file, or the mix name."""
        return self.path or f"mix {self.name}"

    @property
    def spec_hash(self) -> str:
        """sha256 of the spec's YAML text (or of its canonical dump when built in Python)."""
        return hashlib.sha256((self.text or self.to_yaml()).encode()).hexdigest()

    def component(self, name: str) -> ComponentSpec:
        """The component called `name`."""
        for c in self.components:
            if c.name == name:
                return c
        raise QueryError(f"{self.where}: no component {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The spec as the plain dict its YAML holds (defaults left out)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out |= {"records": self.records, "seed": self.seed}
        for key in ("total_rows", "total_tokens"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.exclude:
            out["exclude"] = list(self.exclude)
        if self.on_contaminated != "warn":
            out["on_contaminated"] = self.on_contaminated
        out["components"] = [_component_dict(c) for c in self.components]
        out["splits"] = dict(self.splits)
        out["format"] = {k: v for k, v in vars(self.format).items() if v is not None}
        return out

    def to_yaml(self) -> str:
        """The spec as YAML (round-trips through `parse_spec`)."""
        text: str = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        return text


def _component_dict(c: ComponentSpec) -> dict[str, Any]:
    defaults = ComponentSpec(name=c.name, sql=c.sql)
    return {k: v for k, v in vars(c).items() if k in ("name", "sql") or v != getattr(defaults, k)}


def load_spec(path: str | Path) -> MixSpec:
    """Read and validate a mix spec YAML file.

    Raises:
        QueryError: unreadable file, bad YAML, unknown keys or bad values; the message names
            the file, the component and the key.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise QueryError(f"{p}: cannot read the spec ({e.strerror or e})") from None
    return parse_spec(text, str(p))


def parse_spec(text: str, path: str | None = None) -> MixSpec:
    """Parse a mix spec from YAML text (see `load_spec`)."""
    where = path or "<spec>"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        reason = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise QueryError(f"{where}{line}: bad YAML: {reason}") from None
    if not isinstance(raw, dict):
        raise QueryError(f"{where}: a mix spec is a YAML mapping with name, components, …")
    _no_unknown(raw, _TOP_KEYS, where)
    for key in ("name", "components"):
        if key not in raw:
            raise QueryError(f"{where}: missing required key {key!r}")
    comps = raw["components"]
    if not isinstance(comps, list) or not comps:
        raise QueryError(f"{where}: components must be a non-empty list")
    return MixSpec(
        name=_typed(raw, "name", str, where),
        description=raw.get("description"),
        records=_records_ref(raw.get("records", "latest"), where),
        seed=_typed(raw, "seed", int, where, 0),
        total_rows=_typed(raw, "total_rows", int, where, None),
        total_tokens=_typed(raw, "total_tokens", int, where, None),
        exclude=tuple(_str_list(raw.get("exclude"), "exclude", where)),
        on_contaminated=_typed(raw, "on_contaminated", str, where, "warn"),
        components=tuple(_component(c, i, where) for i, c in enumerate(comps)),
        splits=_splits(raw.get("splits", {"train": 1.0}), where),
        format=_format(raw.get("format", {"template": "chat"}), where),
        path=path,
        text=text,
    )


def spec_problems(spec: MixSpec) -> list[str]:
    """Problems a spec has on its own, before looking at any data."""
    w = spec.where
    out: list[str] = []
    if not NAME_RE.match(spec.name):
        out.append(f"{w}: bad mix name {spec.name!r}: use letters, digits, '.', '-' or '_'")
    if (spec.total_rows is None) == (spec.total_tokens is None):
        out.append(f"{w}: give exactly one of total_rows or total_tokens")
    for key in ("total_rows", "total_tokens"):
        value = getattr(spec, key)
        if value is not None and value <= 0:
            out.append(f"{w}: {key} must be positive, got {value}")
    if spec.on_contaminated not in ON_CONTAMINATED:
        out.append(f"{w}: on_contaminated must be one of {', '.join(ON_CONTAMINATED)}")
    names = [c.name for c in spec.components]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"{w}: component name {dup!r} is used twice")
    for c in spec.components:
        out += [f"{w}: component {c.name!r}: {p}" for p in _component_problems(c)]
    total = sum(f for _, f in spec.splits)
    if abs(total - 1.0) > 1e-6:
        shown = ", ".join(f"{n}: {f:g}" for n, f in spec.splits)
        out.append(f"{w}: splits must sum to 1, got {total:g} ({shown})")
    for name, frac in spec.splits:
        if frac < 0 or not NAME_RE.match(name):
            out.append(f"{w}: bad split {name!r}: {frac:g}")
    out += [f"{w}: format: {p}" for p in _format_problems(spec.format)]
    return out


def _component_problems(c: ComponentSpec) -> list[str]:
    out = []
    if not NAME_RE.match(c.name):
        out.append("bad name: use letters, digits, '.', '-' or '_'")
    if not c.sql.strip():
        out.append("sql is empty")
    if not c.weight > 0:
        out.append(f"weight must be positive, got {c.weight:g}")
    if c.max_repeats < 1:
        out.append(f"max_repeats must be at least 1, got {c.max_repeats}")
    for key in ("max_rows", "max_tokens"):
        value = getattr(c, key)
        if value is not None and value <= 0:
            out.append(f"{key} must be positive, got {value}")
    if c.order_by and c.stratify_by:
        out.append("order_by and stratify_by cannot be combined (take the top, or sample evenly)")
    return out


def _format_problems(f: FormatSpec) -> list[str]:
    if f.template not in TEMPLATES:
        return [f"unknown template {f.template!r}; use one of {', '.join(TEMPLATES)}"]
    if f.template == "prompt":
        if not f.prompt or f.completion is None:
            return ["template prompt needs both `prompt` and `completion` strings"]
        try:
            f.fields()
        except ValueError as e:
            return [f"bad template braces: {e}"]
    elif f.prompt or f.completion:
        return [f"`prompt`/`completion` only apply to template prompt, not {f.template}"]
    return []


def _no_unknown(raw: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(map(str, raw)) - known)
    if unknown:
        raise QueryError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _typed(raw: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in raw or raw[key] is None:
        if default is ...:
            raise QueryError(f"{where}: missing required key {key!r}")
        return default
    value = raw[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise QueryError(
            f"{where}: {key} must be {kind.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _records_ref(value: Any, where: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise QueryError(f"{where}: records must be a version number, a tag or latest")
    return value


def _str_list(value: Any, key: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QueryError(f"{where}: {key} must be a list of SQL predicates")
    return value


def _component(raw: Any, index: int, where: str) -> ComponentSpec:
    if not isinstance(raw, dict):
        raise QueryError(f"{where}: components[{index}] must be a mapping with name and sql")
    label = f"{where}: component {raw.get('name', index)!r}"
    _no_unknown(raw, _COMPONENT_KEYS, label)
    return ComponentSpec(
        name=str(_typed(raw, "name", str, label)),
        sql=_typed(raw, "sql", str, label),
        weight=_typed(raw, "weight", float, label, 1.0),
        max_rows=_typed(raw, "max_rows", int, label, None),
        max_tokens=_typed(raw, "max_tokens", int, label, None),
        order_by=_typed(raw, "order_by", str, label, None),
        stratify_by=_typed(raw, "stratify_by", str, label, None),
        max_repeats=_typed(raw, "max_repeats", int, label, 1),
    )


def _splits(raw: Any, where: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, dict) or not raw:
        raise QueryError(f"{where}: splits must be a mapping like {{train: 0.9, val: 0.1}}")
    out = []
    for name, frac in raw.items():
        if isinstance(frac, bool) or not isinstance(frac, int | float):
            raise QueryError(f"{where}: split {name!r} must be a fraction, got {frac!r}")
        out.append((str(name), float(frac)))
    return tuple(out)


def _format(raw: Any, where: str) -> FormatSpec:
    if isinstance(raw, str):
        raw = {"template": raw}
    if not isinstance(raw, dict):
        raise QueryError(f"{where}: format must be a mapping like {{template: chat}}")
    _no_unknown(raw, _FORMAT_KEYS, f"{where}: format")
    return FormatSpec(
        template=_typed(raw, "template", str, f"{where}: format", "chat"),
        system=_typed(raw, "system", str, f"{where}: format", None),
        prompt=_typed(raw, "prompt", str, f"{where}: format", None),
        completion=_typed(raw, "completion", str, f"{where}: format", None),
    )
