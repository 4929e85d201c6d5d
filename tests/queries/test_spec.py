"""Spec parsing: the YAML maps 1:1 onto MixSpec; every shipped spec loads and checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curation import Lake
from curation.steps.base import apply
from curation.testing import make_lake
from queries import MixSpec, QueryError, check_mix, load_spec, parse_spec
from tests.queries.conftest import FakeEnrich, chat_rows

MIXES = Path(__file__).resolve().parents[2] / "queries" / "mixes"
SHIPPED = sorted(MIXES.glob("*.yaml"))

BASE = """
name: t
total_rows: 10
components:
  - name: a
    sql: source = 'chat'
"""


def test_shipped_specs_exist() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"chitchat-random", "chitchat-curated", "price-prompt"} <= names


def _pad(i: int) -> int:
    """Extra words so n_tokens (words) spreads over short, 150..157 and long rows."""
    own = 6 + i % 17 + i % 23  # words chat_rows already gives row i
    return (40, 150 + i % 8 - own, 300)[i % 3]


@pytest.fixture(scope="module")
def catalog_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Chitchat-like rows with prices and every enrichment column the shipped specs use."""
    tmp = tmp_path_factory.mktemp("catalog")
    rows = [
        {**r, "messages": [{"role": "user", "content": "hi " * _pad(i)}, *r["messages"]]}
        for i, r in enumerate(chat_rows(600, "item"))
    ]
    lake = make_lake(tmp, {"chitchat": rows})
    apply(FakeEnrich(), lake)
    apply(FakeEvalLoss(), lake)
    return lake


class FakeEvalLoss:
    """Per-row eval columns as `mixlake eval` writes them: a base model and one run."""

    name = "fake_eval_v1"
    input_columns: tuple[str, ...] = ("id",)

    def params(self) -> dict[str, str]:
        return {}

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("eval_base_smollm2_heldout_loss", pa.float64()),
                pa.field("eval_r0a1b2c3d_heldout_loss", pa.float64()),
            ]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        ids = batch.column("id").to_pylist()
        base = [1.0 + int(i[:4], 16) / 65535 * 3 for i in ids]
        run = [b - (0.8 if int(i[4], 16) < 8 else 0.1) for b, i in zip(base, ids, strict=True)]
        return pa.RecordBatch.from_pydict(
            {"eval_base_smollm2_heldout_loss": base, "eval_r0a1b2c3d_heldout_loss": run},
            schema=self.output_schema(),
        )


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_spec_loads_and_checks(path: Path, catalog_lake: Lake) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert parse_spec(spec.to_yaml()) == spec
    scaled = parse_spec(spec.to_yaml().replace(f"total_rows: {spec.total_rows}", "total_rows: 20"))
    plan = check_mix(catalog_lake, scaled)
    assert plan.problems == ()
    assert plan.rows == 20


def test_defaults_and_types() -> None:
    spec = parse_spec(BASE, "x.yaml")
    assert spec.records == "latest" and spec.seed == 0
    assert spec.splits == (("train", 1.0),)
    assert spec.format.template == "chat"
    assert spec.components[0].weight == 1.0 and spec.components[0].max_repeats == 1
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_spec_hash_follows_text() -> None:
    a, b = parse_spec(BASE), parse_spec(BASE + "\n# comment\n")
    assert a == b and a.spec_hash != b.spec_hash


def test_load_spec_missing_file(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match=r"nope\.yaml: cannot read"):
        load_spec(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [", r"x.yaml:\d+: bad YAML"),
        ("- a\n- b", "a YAML mapping"),
        (BASE + "colour: red\n", "unknown key.*colour"),
        ("total_rows: 3\ncomponents: []", "missing required key 'name'"),
        ("name: t\ntotal_rows: 3\ncomponents: []", "non-empty list"),
        (BASE.replace("total_rows: 10", "total_rows: 10\ntotal_tokens: 5"), "exactly one of"),
        (BASE.replace("total_rows: 10", ""), "exactly one of"),
        (BASE.replace("total_rows: 10", "total_rows: ten"), "total_rows must be int"),
        (BASE.replace("total_rows: 10", "total_rows: -1"), "must be positive"),
        (BASE + "splits: {train: 0.8, val: 0.1}\n", "splits must sum to 1, got 0.9"),
        (BASE + "splits: {train: yes}\n", "must be a fraction"),
        (BASE + "format: {template: poem}\n", "unknown template 'poem'"),
        (BASE + "format: {template: prompt, prompt: 'Q {text}'}\n", "needs both"),
        (BASE + "format: {template: chat, prompt: 'Q'}\n", "only apply to template prompt"),
        (BASE + "format: {template: prompt, prompt: 'Q {text', completion: x}\n", "braces"),
        (BASE + "on_contaminated: ignore\n", "on_contaminated must be one of"),
        (BASE.replace("name: t", "name: bad name"), "bad mix name"),
        (BASE + "  - name: a\n    sql: 'true'\n", "component name 'a' is used twice"),
        (BASE + "    weight: 0\n", "component 'a': weight must be positive"),
        (BASE + "    max_repeats: 0\n", "max_repeats must be at least 1"),
        (BASE + "    wieght: 2\n", "component 'a'.*unknown key.*wieght"),
        (BASE + "    order_by: x\n    stratify_by: y\n", "cannot be combined"),
        (BASE + "records: [1]\n", "records must be a version number"),
    ],
)
def test_bad_specs_name_file_and_reason(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as info:
        parse_spec(text, "x.yaml")
    assert str(info.value).startswith("x.yaml")


def test_python_built_spec_validates() -> None:
    from queries import ComponentSpec

    with pytest.raises(QueryError, match="exactly one of"):
        MixSpec(name="m", components=(ComponentSpec("a", "true"),))
    spec = MixSpec(name="m", components=(ComponentSpec("a", "true"),), total_rows=5)
    assert parse_spec(spec.to_yaml()) == spec


def test_price_prompt_renders_question_content_answer(catalog_lake: Lake) -> None:
    from queries import materialize_mix

    spec = load_spec(MIXES / "price-prompt.yaml")
    scaled = parse_spec(spec.to_yaml().replace("total_rows: 2000", "total_rows: 20"))
    examples = list(materialize_mix(catalog_lake, scaled).examples())
    assert len(examples) == 20
    for ex in examples:
        assert ex["prompt"].startswith("Question: How much does this cost to the nearest dollar?")
        assert ex["prompt"].endswith("\n\nAnswer: $")
        assert ex["completion"].isdigit()
