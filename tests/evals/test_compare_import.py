"""`compare` on written-back results, and importing results computed elsewhere."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from curation import Lake
from curation.steps.base import apply
from evals import EvalError, EvalResult, write_back
from evals.compare import compare
from evals.compare_plot import plot_comparison
from evals.remote import evaluate_export, import_results
from queries import export_mix, materialize_mix, parse_spec
from tests.evals.test_evaluate import MIX_SPEC


def _result(
    label: str, ids: list[str], losses: list[float], mix: str, checksum: str | None
) -> EvalResult:
    return EvalResult(
        target=label,
        suite="heldout",
        split=None if mix.startswith("eval-set:") else "test",
        mix=mix,
        mix_checksum=checksum,
        records_version=3,
        run_level={"loss": sum(losses) / len(losses)},
        columns=(),
        version=None,
        ids=ids,
        per_row={"loss": list(losses), "perplexity": [2.0**v for v in losses]},
    )


class _ClusterAndQuality:
    """Test step: cluster 0/1 by source, quality 0.9 for chat and 0.1 otherwise."""

    name = "cluster"
    input_columns = ("source",)

    def params(self) -> dict[str, object]:
        return {}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("cluster", pa.int32()), ("quality_heuristic_v1", pa.float64())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        chat = [s == "chat" for s in batch.column("source").to_pylist()]
        return pa.RecordBatch.from_arrays(
            [
                pa.array([0 if c else 1 for c in chat], pa.int32()),
                pa.array([0.9 if c else 0.1 for c in chat]),
            ],
            schema=self.output_schema(),
        )


def _ids(lake: Lake, where: str) -> list[str]:
    return sorted(lake.sql(f"SELECT id FROM records WHERE {where}")["id"].to_pylist())


def test_compare_side_by_side_with_wins_losses_and_breakdown(
    eval_lake: Lake, tmp_path: Path
) -> None:
    apply(_ClusterAndQuality(), eval_lake)
    # B is better (lower loss) on every chat row, worse on the qa rows
    chat, qa = _ids(eval_lake, "source = 'chat'"), _ids(eval_lake, "source = 'qa'")
    for source, ids, tuned in (("chat", chat, 1.0), ("qa", qa, 2.5)):
        mix = f"eval-set:{source}"
        write_back(eval_lake, _result("base_m", ids, [2.0] * len(ids), mix, None))
        write_back(eval_lake, _result("r1234abcd", ids, [tuned] * len(ids), mix, None))
    c = compare(eval_lake, "base_m", "r1234abcd", top=3, resamples=200)
    assert (c.suite, c.metric, c.lower_is_better) == ("heldout", "loss", True)
    rows = {m.mix: m for m in c.metrics if m.metric == "loss"}
    assert (rows["eval-set:chat"].a, rows["eval-set:chat"].b) == (2.0, 1.0)
    assert rows["eval-set:qa"].delta == pytest.approx(0.5)
    chat_ci, qa_ci = rows["eval-set:chat"].ci, rows["eval-set:qa"].ci
    assert chat_ci is not None and (chat_ci.n, chat_ci.value) == (6, -1.0)
    assert qa_ci is not None and (qa_ci.n, qa_ci.value) == (3, 0.5)
    assert len(c.deltas) == 9
    assert len(c.wins) == 3 and all(w.id in set(chat) and w.delta == -1.0 for w in c.wins)
    assert len(c.losses) == 3 and all(w.id in set(qa) and w.delta == 0.5 for w in c.losses)
    groups = {(g.by, g.group): g for g in c.breakdown}
    assert groups[("source", "chat")].b_wins == 6 and groups[("source", "chat")].delta == -1.0
    assert groups[("source", "qa")].b_wins == 0 and groups[("source", "qa")].rows == 3
    assert groups[("cluster", "0")].rows == 6 and groups[("cluster", "1")].delta == 0.5
    assert groups[("quality", "0.75–1.00")].rows == 6 and groups[("quality", "0.00–0.25")].rows == 3
    png = plot_comparison(c, tmp_path / "cmp.png")
    assert png.stat().st_size > 1000
    scoped = compare(eval_lake, "base_m", "r1234abcd", mix="eval-set:qa")
    assert {(g.by, g.group) for g in scoped.breakdown} == {
        ("source", "qa"),
        ("cluster", "1"),
        ("quality", "0.00–0.25"),
    }
    assert [(m.mix, m.metric) for m in scoped.metrics] == [("eval-set:qa", "loss")]
    with pytest.raises(EvalError, match="no eval results"):
        compare(eval_lake, "base_m", "smollm2")
    with pytest.raises(EvalError, match="no per-row metric"):
        compare(eval_lake, "base_m", "r1234abcd", metric="bleu")


def test_import_writes_back_and_refuses_a_mismatched_checksum(
    eval_lake: Lake, tmp_path: Path
) -> None:
    mix = materialize_mix(eval_lake, parse_spec(MIX_SPEC))
    ids = mix.rows("test")["id"].to_pylist()
    good = _result("r9999aaaa", ids, [1.0] * len(ids), "chat-eval", mix.checksum)
    path = good.write_jsonl(tmp_path / "results.jsonl")
    bad = _result("r9999aaaa", ids, [1.0] * len(ids), "chat-eval", "0" * 64)
    bad_path = bad.write_jsonl(tmp_path / "bad.jsonl")
    version = eval_lake.latest_version()
    with pytest.raises(EvalError, match="matches no version of mix chat-eval"):
        import_results(eval_lake, bad_path)
    lines = path.read_bytes().splitlines()
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_bytes(b"\n".join([*lines, orjson.dumps({"id": "ab" * 16, "loss": 1.0})]))
    with pytest.raises(EvalError, match=rf"unknown.jsonl:{len(lines) + 1}: record abab"):
        import_results(eval_lake, unknown)
    typo = tmp_path / "typo.jsonl"
    typo.write_bytes(b"\n".join([lines[0], orjson.dumps({"id": ids[0], "los": 1.0})]))
    with pytest.raises(EvalError, match=r"typo.jsonl:2: unknown key\(s\) \['los'\]"):
        import_results(eval_lake, typo)
    assert eval_lake.latest_version() == version  # nothing written by the refused imports
    done = import_results(eval_lake, path)
    assert done.version == version + 1 and done.rows == len(ids)
    got = eval_lake.sql("SELECT count(eval_r9999aaaa_heldout_loss) AS n FROM records")
    assert got["n"][0].as_py() == len(ids)
    assert import_results(eval_lake, path).version is None  # same file again: no-op
    runs = eval_lake.sql("SELECT DISTINCT run_id, mix_checksum FROM evals").to_pylist()
    assert runs == [{"run_id": "r9999aaaa", "mix_checksum": mix.checksum}]


def test_evaluate_an_export_away_from_the_lake_then_import(
    eval_lake: Lake, tiny_llama: Path, tmp_path: Path
) -> None:
    mix = materialize_mix(eval_lake, parse_spec(MIX_SPEC))
    exported = tmp_path / "chat-eval.jsonl"
    export_mix(eval_lake, "chat-eval", "jsonl", exported)
    result = evaluate_export(exported, str(tiny_llama), "heldout", run_id="r5555bbbb")
    assert result.mix_checksum == mix.checksum and result.rows == mix.count("test")
    imported = import_results(eval_lake, result.write_jsonl(tmp_path / "res.jsonl"))
    assert imported.target == "r5555bbbb" and imported.version is not None
