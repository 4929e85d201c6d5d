"""Slices: the grid's filter saved by name, and the mix component it becomes.

A slice is saved in the `slices` table (token flow, `--allow-writes`) and renders one SQL
predicate; as a mix component it becomes spec YAML, `mix check` live, and a confirmed
materialize.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from curation import Lake
from mixlake.web import create_app, embedmap
from mixlake.web.sample import build_sample_lake

LOCAL = "http://127.0.0.1"
FILTERS = [
    {"column": "source", "op": "in", "values": ["chat", "instruct"]},
    {"column": "sample_score_v1", "op": "range", "lo": 0.4, "hi": None},
]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return build_sample_lake(tmp_path, rows_per_source=20)


def _client(lake: Lake, writes: bool = True) -> TestClient:
    app = create_app(lake.uri, allow_writes=writes)
    return TestClient(app, raise_server_exceptions=False, base_url=LOCAL)


def _save(client: TestClient, name: str, **body: object) -> dict:
    token = client.get("/api/confirm/slice", params={"name": name}).json()["confirm"]
    r = client.post("/api/slice", json={"name": name, "confirm": token, **body})
    assert r.status_code == 200, r.text
    return r.json()


def _count(lake: Lake, where: str) -> int:
    return int(lake.sql(f"SELECT count(*) AS n FROM records WHERE {where}").column("n")[0].as_py())


def test_saving_needs_writes_and_a_token(lake: Lake) -> None:
    ro = _client(lake, writes=False)
    token = ro.get("/api/confirm/slice", params={"name": "x"}).json()["confirm"]
    assert ro.post("/api/slice", json={"name": "x", "confirm": token}).status_code == 403
    rw = _client(lake)
    assert rw.post("/api/slice", json={"name": "x", "confirm": "nope"}).status_code == 400
    other = rw.get("/api/confirm/slice", params={"name": "y"}).json()["confirm"]
    assert rw.post("/api/slice", json={"name": "x", "confirm": other}).status_code == 400
    assert rw.get("/api/confirm/slice", params={"name": "bad name!"}).status_code == 400
    assert not lake.has_table("slices")


def test_a_slice_is_stored_with_its_sql_version_author_and_journal(lake: Lake) -> None:
    client = _client(lake)
    got = _save(client, "good", where="length(text) > 20", filters=FILTERS, author="ana")
    want = _count(
        lake, "source IN ('chat', 'instruct') AND sample_score_v1 >= 0.4 AND length(text) > 20"
    )
    assert got["rows"] == want > 0
    assert _count(lake, got["sql"]) == want
    assert got["records_version"] == lake.latest_version()
    rows = lake.dataset("slices").to_table().to_pylist()
    assert len(rows) == 1
    row = rows[0]
    assert (row["name"], row["where"], row["author"]) == ("good", "length(text) > 20", "ui:ana")
    assert [f["column"] for f in json.loads(row["filters"])] == ["source", "sample_score_v1"]
    assert row["at"] is not None
    entries = lake.journal_entries("slices")
    assert [e["operation"] for e in entries.values()] == ["slice"]
    # saving the name again replaces it; the list shows the latest
    again = _save(client, "good", filters=FILTERS[:1])
    listed = client.get("/api/slices").json()["slices"]
    assert [s["name"] for s in listed] == ["good"] and listed[0]["sql"] == again["sql"]
    assert lake.dataset("slices").count_rows() == 2
    page = client.get("/slices/good").text
    assert "source IN (&#39;chat&#39;, &#39;instruct&#39;)" in page
    assert client.get("/slices/nothing").status_code == 404


def test_a_map_selection_becomes_an_id_list(lake: Lake) -> None:
    client = _client(lake)
    poly = [[-1.0, -1.0], [0.0, -1.0], [0.0, 1.0], [-1.0, 1.0]]
    got = _save(client, "left", filters=[{"column": "map", "op": "lasso", "polygon": poly}])
    ids = embedmap.selected_ids(lake, lake.latest_version(), tuple(map(tuple, poly))).to_pylist()
    assert got["rows"] == len(ids) > 0
    assert got["sql"].startswith("id IN (")
    assert _count(lake, got["sql"]) == len(ids)


def test_slice_to_mix_check_and_materialize(lake: Lake) -> None:
    client = _client(lake)
    s = _save(client, "chatty", filters=[FILTERS[0]], where="source = 'chat' OR n_tokens > 3")
    spec = client.get("/api/slices/chatty", params={"mix": "chatty-mix"}).json()["spec"]
    parsed = yaml.safe_load(spec)
    assert parsed["name"] == "chatty-mix" and parsed["records"] == s["records_version"]
    assert parsed["components"] == [{"name": "chatty", "sql": s["sql"], "weight": 1.0}]
    # the SQL never starts with "(" (queries would read it as a full SELECT)
    assert not s["sql"].startswith("(")
    plan = client.post("/api/mixcheck", json={"spec": spec}).json()
    assert plan["ok"], plan["problems"]
    assert plan["rows"] == s["rows"] == sum(plan["splits"].values())
    comp = plan["components"][0]
    assert comp["available"] == comp["taken"] == s["rows"]
    want_tokens = lake.sql(f"SELECT sum(n_tokens) AS t FROM records WHERE {s['sql']}")
    assert plan["tokens"] == comp["taken_tokens"] == want_tokens.column("t")[0].as_py()
    bad = client.post("/api/mixcheck", json={"spec": spec.replace(s["sql"], "nope = 1")})
    assert bad.status_code == 200 and bad.json()["problems"]
    assert client.post("/api/mixcheck", json={"spec": "name: [x"}).status_code == 400
    # materialize: read-only refused; the token is bound to the spec text
    ro = _client(lake, writes=False)
    token = client.post("/api/confirm/materialize", json={"name": "chatty-mix", "spec": spec})
    assert token.json()["preview"]["ok"]
    confirm = token.json()["confirm"]
    body = {"name": "chatty-mix", "spec": spec, "confirm": confirm}
    assert ro.post("/api/materialize", json=body).status_code == 403
    edited = {**body, "spec": spec.replace("weight: 1.0", "weight: 2.0")}
    assert client.post("/api/materialize", json=edited).status_code == 400
    done = client.post("/api/materialize", json=body)
    assert done.status_code == 200, done.text
    assert done.json()["ref"] == "chatty-mix@1" and done.json()["rows"] == s["rows"]
    from queries import open_mix

    assert open_mix(lake, "chatty-mix").row_count == s["rows"]
