"""The records grid's API.

Server-side sorting, point-and-click filters, cross-filtered facets and labels saved through
`curation.labels`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from curation import Lake
from curation.labels import current_labels
from mixlake.web import create_app
from mixlake.web.sample import build_sample_lake

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_sample_lake(tmp_path_factory.mktemp("grid"), rows_per_source=20)


@pytest.fixture(scope="module")
def client(sample: Lake) -> TestClient:
    return TestClient(create_app(sample.uri), raise_server_exceptions=False, base_url=LOCAL)


def _ids(lake: Lake, query: str) -> list[str]:
    return lake.sql(query).column("id").to_pylist()


def test_sorting_is_server_side_on_any_column(client: TestClient, sample: Lake) -> None:
    got = client.get(
        "/api/records", params={"sort": "sample_score_v1", "desc": True, "limit": 25}
    ).json()
    want = _ids(
        sample, "SELECT id FROM records ORDER BY sample_score_v1 DESC NULLS LAST, id LIMIT 25"
    )
    assert [r["id"] for r in got["rows"]] == want
    assert got["sort"] == "sample_score_v1" and got["desc"] is True
    page2 = client.get(
        "/api/records", params={"sort": "text", "limit": 10, "offset": 10, "where": "kind='chat'"}
    ).json()
    want2 = _ids(
        sample, "SELECT id FROM records WHERE kind='chat' ORDER BY text, id LIMIT 10 OFFSET 10"
    )
    assert [r["id"] for r in page2["rows"]] == want2
    for bad in ("id; DROP TABLE records", "nosuch", "length(text)", "embedding"):
        r = client.get("/api/records", params={"sort": bad})
        assert r.status_code == 400 and r.json()["error"].startswith("sort:"), bad


def test_filters_are_structured_and_quoted(client: TestClient, sample: Lake) -> None:
    filters = [
        {"column": "source", "op": "in", "values": ["chat", "web"]},
        {"column": "sample_score_v1", "op": "range", "lo": 0.4, "hi": 0.8},
        {"column": "is_short", "op": "is", "values": [False]},
    ]
    got = client.get(
        "/api/records", params={"filters": json.dumps(filters), "where": "kind <> 'text'"}
    ).json()
    want = sample.sql(
        "SELECT count(*) AS n FROM records WHERE source IN ('chat','web') AND kind <> 'text' "
        "AND sample_score_v1 >= 0.4 AND sample_score_v1 < 0.8 AND is_short = false"
    )
    assert got["total"] == want.column("n")[0].as_py() > 0
    hostile = [{"column": "source", "op": "in", "values": ["x' OR '1'='1"]}]
    assert client.get("/api/records", params={"filters": json.dumps(hostile)}).json()["total"] == 0
    for bad in (
        "not json",
        json.dumps([{"column": "nosuch", "op": "in"}]),
        json.dumps([{"column": "source", "op": "like"}]),
        json.dumps([{"column": "sample_score_v1", "op": "range", "lo": "x"}]),
    ):
        r = client.get("/api/records", params={"filters": bad})
        assert r.status_code == 400 and r.json()["error"].startswith("filters:"), bad


def test_facets_cross_filter(client: TestClient, sample: Lake) -> None:
    everything = {f["column"]: f for f in client.get("/api/facets").json()["facets"]}
    assert everything["source"]["kind"] == "category"
    assert everything["is_short"]["kind"] == "flag"
    hist = everything["sample_score_v1"]
    assert hist["kind"] == "histogram" and len(hist["bins"]) == 20
    assert sum(b["n"] for b in hist["bins"]) == hist["rows"] == 60
    chat = [{"column": "source", "op": "in", "values": ["chat"]}]
    got = {
        f["column"]: f
        for f in client.get("/api/facets", params={"filters": json.dumps(chat)}).json()["facets"]
    }
    # the source facet ignores its own filter (so the other sources stay clickable) ...
    assert {v["value"] for v in got["source"]["values"]} == {"chat", "web", "instruct", "junk"}
    assert got["source"]["active"][0]["values"] == ["chat"]
    # ... and every other facet counts only chat rows
    assert got["kind"]["values"] == [{"value": "chat", "n": 20}]
    assert got["sample_score_v1"]["rows"] == 20
    brushed = [{"column": "sample_score_v1", "op": "range", "lo": 0.5, "hi": 1.0, "closed": True}]
    by_kind = {
        f["column"]: f
        for f in client.get("/api/facets", params={"filters": json.dumps(brushed)}).json()["facets"]
    }
    n = sample.sql("SELECT count(*) AS n FROM records WHERE sample_score_v1 BETWEEN 0.5 AND 1")
    assert sum(v["n"] for v in by_kind["kind"]["values"]) == n.column("n")[0].as_py()


def test_labels_from_the_ui_land_in_the_labels_table(tmp_path: Path) -> None:
    lake = build_sample_lake(tmp_path, rows_per_source=8)
    ids = _ids(lake, "SELECT id FROM records WHERE source = 'chat' ORDER BY id LIMIT 3")
    ro = TestClient(create_app(lake.uri), raise_server_exceptions=False, base_url=LOCAL)
    token = ro.get("/api/confirm/label", params={"name": "ana"}).json()["confirm"]
    refused = ro.post(
        "/api/label", json={"name": "ana", "ids": ids, "label": "good", "confirm": token}
    )
    assert refused.status_code == 403 and current_labels(lake) == {}
    rw = TestClient(
        create_app(lake.uri, allow_writes=True), raise_server_exceptions=False, base_url=LOCAL
    )
    unconfirmed = rw.post("/api/label", json={"name": "ana", "ids": ids, "label": "good"})
    assert unconfirmed.status_code == 400 and current_labels(lake) == {}
    token = rw.get("/api/confirm/label", params={"name": "ana"}).json()["confirm"]
    body = {"name": "ana", "ids": ids, "label": "good", "confirm": token}
    assert rw.post("/api/label", json=body).json()["rows"] == 3
    fix = {"name": "ana", "ids": ids[:1], "label": "bad", "confirm": token}
    assert rw.post("/api/label", json=fix).json()["total_labelled"] == 3
    assert current_labels(lake) == {ids[0]: 0, ids[1]: 1, ids[2]: 1}
    labellers = set(lake.dataset("labels").to_table().column("labeller").to_pylist())
    assert labellers == {"ui:ana"}
    stolen = {"name": "bob", "ids": ids, "label": "bad", "confirm": token}
    assert rw.post("/api/label", json=stolen).status_code == 400
    wrong = {"name": "ana", "ids": ["zz"], "label": "good", "confirm": token}
    assert rw.post("/api/label", json=wrong).status_code == 400
    rows = rw.get("/api/records", params={"where": "id IN (SELECT id FROM labels)"}).json()
    assert {r["id"]: r["label"] for r in rows["rows"]} == current_labels(lake)
    queue = rw.get(
        "/api/records", params={"where": "source = 'chat' AND id NOT IN (SELECT id FROM labels)"}
    ).json()
    assert queue["total"] == 8 - 3
    page = rw.get("/labels").text
    assert ids[0][:12] in page and "ui:ana" in page


def test_export_a_filter_or_a_selection(client: TestClient, sample: Lake) -> None:
    import csv as csv_module
    import io

    import orjson
    import pyarrow.parquet as pq

    chat = json.dumps([{"column": "source", "op": "in", "values": ["chat"]}])
    got = client.get(
        "/api/export", params={"format": "jsonl", "filters": chat, "where": "NOT is_short"}
    )
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    rows = [orjson.loads(line) for line in got.content.splitlines()]
    want = _ids(sample, "SELECT id FROM records WHERE source='chat' AND NOT is_short ORDER BY id")
    assert [r["id"] for r in rows] == want and rows[0]["messages"][0]["role"] == "user"
    assert "embedding" not in rows[0]
    picked = want[:2]
    parquet = client.get("/api/export", params={"format": "parquet", "ids": ",".join(picked)})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("id").to_pylist() == picked and "sample_score_v1" in table.column_names
    csv = client.get("/api/export", params={"format": "csv", "ids": picked[0]}).text
    assert csv.splitlines()[0].startswith('"id"') and "messages" not in csv.splitlines()[0]
    parsed = list(csv_module.reader(io.StringIO(csv)))
    assert len(parsed) == 2 and parsed[1][0] == picked[0]
    assert client.get("/api/export", params={"format": "xlsx"}).status_code == 400
    assert client.get("/api/export", params={"ids": "x'--"}).status_code == 400
