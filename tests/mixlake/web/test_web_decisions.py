"""The pages a curator decides on, and the guards on acting on them.

Eval compare in each metric's direction, rollback and delete previews that list what is lost
beyond rows, and the DNS-rebinding / token guards.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from curation import Lake
from curation.testing import make_lake
from mixlake.web import create_app
from mixlake.web.history import Confirmer
from mixlake.web.metrics import direction, parse_eval_column
from mixlake.web.sample import RUN_ID, build_sample_lake

LOCAL = "http://127.0.0.1"


@pytest.fixture
def loss_lake(tmp_path: Path) -> Lake:
    """16 rows with base and tuned heldout loss/perplexity; the tuned loss is lower on every row."""
    from curation.steps.values import write_values

    lake = make_lake(tmp_path, {"web": [{"text": f"row {i} " * (i + 1)} for i in range(16)]})
    ids = lake.sql("SELECT id FROM records ORDER BY id").column("id").to_pylist()
    base = [2.0 + i / 10 for i in range(16)]
    tuned = [b - 0.5 - i / 100 for i, b in enumerate(base)]
    for label, losses in (("base_smollm2", base), ("r1", tuned)):
        table = pa.table(
            {
                "id": ids,
                f"eval_{label}_heldout_loss": losses,
                f"eval_{label}_heldout_perplexity": [2.718**x for x in losses],
            }
        )
        write_values(lake, table, name=f"eval_{label}_heldout", params={"suite": "heldout"})
    return lake


def test_lower_is_better_metrics_count_improvements_as_wins(loss_lake: Lake) -> None:
    client = TestClient(create_app(loss_lake.uri), raise_server_exceptions=False, base_url=LOCAL)
    got = client.get(
        "/api/compare",
        params={"base": "eval_base_smollm2_heldout_loss", "tuned": "eval_r1_heldout_loss"},
    ).json()
    assert got["direction"] == "lower"
    assert (got["wins"], got["losses"], got["ties"]) == (16, 0, 0)
    assert got["biggest_losses"] == []
    gains = [r["gain"] for r in got["biggest_wins"]]
    assert gains == sorted(gains, reverse=True) and all(g > 0 for g in gains)
    assert all(r["delta"] < 0 for r in got["biggest_wins"])
    page = client.get("/evals").text
    assert "16 wins" in page and "0 losses" in page and "lower is better" in page


def test_compare_never_pairs_different_metrics(loss_lake: Lake) -> None:
    client = TestClient(create_app(loss_lake.uri), raise_server_exceptions=False, base_url=LOCAL)
    mixed = client.get(
        "/api/compare",
        params={"base": "eval_base_smollm2_heldout_loss", "tuned": "eval_r1_heldout_perplexity"},
    )
    assert mixed.status_code == 400 and "same suite and metric" in mixed.json()["error"]
    cols = {c["column"]: c for c in client.get("/api/evals").json()["columns"]}
    assert cols["eval_r1_heldout_perplexity"]["metric"] == "perplexity"
    assert cols["eval_base_smollm2_heldout_loss"]["target"] == "base_smollm2"
    page = client.get("/evals").text
    # the default pair is base loss vs tuned loss (one metric), selected in both dropdowns
    assert 'value="eval_base_smollm2_heldout_loss" data-metric="heldout/loss" selected' in page
    assert 'value="eval_r1_heldout_loss" data-metric="heldout/loss" selected' in page
    refused = client.get(
        "/evals",
        params={"base": "eval_base_smollm2_heldout_loss", "tuned": "eval_r1_heldout_perplexity"},
    )
    assert refused.status_code == 200 and 'id="compare-notice"' in refused.text


def test_direction_table_agrees_with_the_eval_suites() -> None:
    from evals.registry import SUITES

    for suite in SUITES.values():
        for metric in suite.metrics:
            if metric in suite.lower_is_better:
                assert direction(metric) == "lower", (suite.name, metric)
            elif direction(metric) != "unknown":
                assert direction(metric) == "higher", (suite.name, metric)
    assert direction("accuracy") == "higher" and direction("mae") == "lower"
    col = parse_eval_column(pa.field("eval_base_x_gen_rouge_l", pa.float64()))
    assert col and (col.target, col.suite, col.metric) == ("base_x", "gen", "rouge_l")


@pytest.fixture
def sample(tmp_path: Path) -> Lake:
    return build_sample_lake(tmp_path, rows_per_source=12)


def test_rollback_preview_lists_columns_indexes_mixes_and_runs_lost(sample: Lake) -> None:
    from curation.search import ensure_fts_index

    ensure_fts_index(sample)
    client = TestClient(
        create_app(sample.uri, allow_writes=True), raise_server_exceptions=False, base_url=LOCAL
    )
    p = client.get("/api/confirm/rollback", params={"to": 2}).json()["preview"]
    lost = {c["column"]: c for c in p["columns_lost"]}
    assert {"sample_score_v1", "is_short", "embedding"} <= set(lost)
    assert lost["eval_r0demo001_chat_rougeL"]["eval"] and not lost["sample_score_v1"]["eval"]
    assert lost["sample_score_v1"]["step"] == "sample_score_v1"
    assert [i["columns"] for i in p["indexes_lost"]] == [["text"]]
    assert [r["run_id"] for r in p["pinned_after"]["runs"]] == [RUN_ID]
    if sample.has_table("mixes"):
        assert [m["mix_version"] for m in p["pinned_after"]["mixes"]] == [1, 2]
    page = client.get("/confirm/rollback", params={"to": 2}).text
    assert 'id="columns-lost"' in page and "eval_r0demo001_chat_rougeL" in page
    assert 'id="indexes-lost"' in page and 'id="pinned-after"' in page
    # rolling back to the latest-but-one loses no column
    near = client.get("/api/confirm/rollback", params={"to": "scored"}).json()["preview"]
    assert near["columns_lost"] == [] and near["pinned_after"]["runs"] == []


def test_delete_preview_lists_the_values_that_go(sample: Lake) -> None:
    client = TestClient(
        create_app(sample.uri, allow_writes=True), raise_server_exceptions=False, base_url=LOCAL
    )
    batch = sample.sql("SELECT any_value(batch) AS b FROM records WHERE source='chat'")
    p = client.get("/api/confirm/delete", params={"batch": batch.column("b")[0].as_py()}).json()
    lost = {c["column"]: c["values"] for c in p["preview"]["values_lost"]}
    assert lost["sample_score_v1"] == 12 and lost["eval_r0demo001_chat_rougeL"] == 12


def test_record_page_says_the_version_a_column_was_made_at(sample: Lake) -> None:
    client = TestClient(create_app(sample.uri), raise_server_exceptions=False, base_url=LOCAL)
    rid = sample.sql("SELECT min(id) AS i FROM records WHERE source='web'").column("i")[0]
    cols = {c["column"]: c for c in client.get(f"/api/records/{rid.as_py()}").json()["columns"]}
    made = cols["sample_score_v1"]["provenance"]["made_at_version"]
    assert "sample_score_v1" in sample.records(made).schema.names
    assert "sample_score_v1" not in sample.records(made - 1).schema.names


def test_foreign_host_gets_421_and_no_token(sample: Lake) -> None:
    app = create_app(sample.uri, allow_writes=True, port=8765)
    evil = TestClient(app, raise_server_exceptions=False, base_url="http://evil.example:8765")
    for path in ("/api/confirm/rollback?to=2", "/records", "/confirm/rollback?to=2"):
        r = evil.get(path)
        assert r.status_code == 421, path
        assert "confirm" not in r.text and "not this server" in r.text
    posted = evil.post("/api/rollback", json={"to": "2", "confirm": "x"})
    assert posted.status_code == 421
    other_port = TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1:9999")
    assert other_port.get("/api/log").status_code == 421
    ok = TestClient(app, raise_server_exceptions=False, base_url="http://localhost:8765")
    token = ok.get("/api/confirm/rollback", params={"to": 2}).json()["confirm"]
    before = sample.latest_version()
    cross = ok.post(
        "/api/rollback",
        json={"to": "2", "confirm": token},
        headers={"Origin": "http://evil.example"},
    )
    assert cross.status_code == 403 and sample.latest_version() == before


def test_tokens_are_bound_to_action_argument_version_and_time() -> None:
    c = Confirmer(secret=b"k" * 32, max_age=60)
    token = c.token("rollback", "2", 9, now=1000)
    c.check(token, "rollback", "2", 9, now=1030)
    for action, arg, latest in (("delete", "2", 9), ("rollback", "3", 9), ("rollback", "2", 10)):
        with pytest.raises(Exception, match="does not match"):
            c.check(token, action, arg, latest, now=1030)
    with pytest.raises(Exception, match="expired"):
        c.check(token, "rollback", "2", 9, now=1100)
    with pytest.raises(Exception, match="does not match"):
        c.check("zz-" + token.split("-")[1], "rollback", "2", 9, now=1030)


def test_api_docs_page_works_offline(sample: Lake) -> None:
    client = TestClient(create_app(sample.uri), raise_server_exceptions=False, base_url=LOCAL)
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/api/records" in page.text and "/api/compare" in page.text
    assert "cdn" not in page.text.lower()
    assert 'src="http' not in page.text and 'href="http' not in page.text
