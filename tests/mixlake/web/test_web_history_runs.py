"""The history diff, the run page and a facet's null value.

The diff names the batches and columns that changed; the run page lists the rows the run
trained on (from `exposures`, paged, with the rank that took each); a category facet's null
value matches the null rows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from curation import Lake
from mixlake.web import create_app
from mixlake.web.sample import RUN_ID, build_sample_lake

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_sample_lake(tmp_path_factory.mktemp("hist"), rows_per_source=20)


@pytest.fixture(scope="module")
def client(sample: Lake) -> TestClient:
    return TestClient(create_app(sample.uri), raise_server_exceptions=False, base_url=LOCAL)


def _batches(lake: Lake, where: str) -> dict[str, str]:
    rows = lake.sql(f"SELECT DISTINCT batch, source FROM records WHERE {where}").to_pylist()
    return {r["batch"]: r["source"] for r in rows}


def test_diff_names_batches_and_columns(client: TestClient, sample: Lake) -> None:
    got = client.get("/api/diff", params={"a": "2", "b": "scored"}).json()
    added = {b["batch"]: b["source"] for b in got["batches"] if b["change"] == "added"}
    assert added == _batches(sample, "source IN ('chat', 'instruct')")
    assert all(b["rows_a"] == 0 and b["rows_b"] == 20 for b in got["batches"])
    cols = {c["column"]: c for c in got["columns_added"]}
    assert {"sample_score_v1", "embedding", "cluster", "n_tokens"} <= set(cols)
    assert cols["sample_score_v1"]["step"] == "sample_score_v1"
    assert got["columns_removed"] == []
    assert [e["version"] for e in got["made_by"]] == list(range(3, got["b"] + 1))
    # the other way round: batches and columns removed
    back = client.get("/api/diff", params={"a": "latest", "b": "2"}).json()
    gone = {b["batch"] for b in back["batches"] if b["change"] == "removed"}
    assert gone == set(_batches(sample, "source <> 'web'"))
    assert "junk" in {b["source"] for b in back["batches"]}
    assert "sample_score_v1" in {c["column"] for c in back["columns_removed"]}
    page = client.get("/history", params={"a": "2", "b": "scored"}).text
    assert 'id="diff-batches"' in page and next(iter(added)) in page
    assert "<code>embedding</code>" in page


def test_run_page_lists_the_rows_it_trained_on(client: TestClient, sample: Lake) -> None:
    want = (
        sample.dataset("exposures")
        .to_table()
        .sort_by([("step", "ascending"), ("position", "ascending")])
        .column("record_id")
        .to_pylist()
    )
    first = client.get(f"/api/runs/{RUN_ID}/exposures", params={"limit": 7}).json()
    second = client.get(f"/api/runs/{RUN_ID}/exposures", params={"limit": 7, "offset": 7}).json()
    assert first["total"] == len(want) == 20
    assert [r["record_id"] for r in first["rows"] + second["rows"]] == want[:14]
    assert all(r["source"] == "chat" and r["in_records"] for r in first["rows"])
    assert {r["rank"] for r in first["rows"]} == {0}  # a ledger from before `rank`: one process
    assert first["rows"][0]["text"]
    assert client.get(f"/api/runs/{RUN_ID}/exposures", params={"limit": 0}).status_code == 400
    assert client.get("/api/runs/nope/exposures").status_code == 404
    page = client.get(f"/runs/{RUN_ID}", params={"limit": 5, "offset": 5}).text
    assert 'id="exposures"' in page and want[5][:12] in page and want[4][:12] not in page
    assert 'id="exposures-next"' in page and 'id="exposures-prev"' in page
    assert "rows 6–10 of 20" in page


def test_run_page_shows_the_rank_of_each_exposure(tmp_path: Path) -> None:
    from training.runs import exposures, write_exposures

    lake = build_sample_lake(tmp_path, rows_per_source=20)
    old = exposures(lake, RUN_ID)
    # the run again as two processes (rank = position % 2), through the ledger's own writer
    # (the sample's table has int64 epochs, the ledger int32: it starts afresh)
    shutil.rmtree(lake.table_uri("exposures"))
    ddp = old.set_column(
        old.schema.get_field_index("rank"),
        "rank",
        pa.array([p % 2 for p in old.column("position").to_pylist()], pa.int32()),
    )
    write_exposures(lake, RUN_ID, ddp)
    client = TestClient(create_app(lake.uri), raise_server_exceptions=False, base_url=LOCAL)
    got = client.get(f"/api/runs/{RUN_ID}/exposures", params={"limit": 20}).json()["rows"]
    assert [(r["position"], r["rank"]) for r in got] == [(p, p % 2) for p in range(20)]
    page = client.get(f"/runs/{RUN_ID}", params={"limit": 4}).text
    head = page.split('id="exposures"', 1)[1].split("</thead>", 1)[0]
    assert "<th>step</th><th>rank</th><th>position</th>" in head
    assert page.count('<td class="num rank">1</td>') == 2
    assert page.count('<td class="num rank">0</td>') == 2


def test_null_category_value_matches_null_rows(client: TestClient, sample: Lake) -> None:
    facets = client.get("/api/facets").json()["facets"]
    bucket = next(f for f in facets if f["column"] == "length_bucket")
    nulls = next(v["n"] for v in bucket["values"] if v["value"] is None)
    assert nulls == 6  # the junk batch came after the step that made the column
    only = json.dumps([{"column": "length_bucket", "op": "in", "values": [None]}])
    got = client.get("/api/records", params={"filters": only, "limit": 50}).json()
    assert got["total"] == nulls and {r["source"] for r in got["rows"]} == {"junk"}
    both = json.dumps([{"column": "length_bucket", "op": "in", "values": ["short", None]}])
    n_short = next(v["n"] for v in bucket["values"] if v["value"] == "short")
    assert client.get("/api/records", params={"filters": both}).json()["total"] == nulls + n_short
