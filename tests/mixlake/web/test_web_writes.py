"""Mutations from the UI: refused read-only, confirmed with a token, impact shown first."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from curation import Lake
from mixlake.web import create_app
from mixlake.web.sample import RUN_ID, build_sample_lake

LOCAL = "http://127.0.0.1"


@pytest.fixture
def sample(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_sample_lake(tmp_path_factory.mktemp("writes"), rows_per_source=12)


def test_read_only_server_refuses_every_mutation(sample: Lake) -> None:
    client = TestClient(create_app(sample.uri), raise_server_exceptions=False, base_url=LOCAL)
    before, tags = sample.latest_version(), sample.tags()
    token = client.get("/api/confirm/rollback", params={"to": 2}).json()["confirm"]
    for action, body in [
        ("rollback", {"to": "2", "confirm": token}),
        ("delete", {"batch": "x", "confirm": token}),
        ("tag", {"name": "t", "confirm": token}),
    ]:
        r = client.post(f"/api/{action}", json=body)
        assert r.status_code == 403 and "--allow-writes" in r.json()["error"]
    page = client.post("/do/rollback", data={"to": "2", "confirm": token})
    assert page.status_code == 403
    assert sample.latest_version() == before and sample.tags() == tags
    assert "roll back…" not in client.get("/history").text


def test_rollback_shows_impact_then_needs_the_token(sample: Lake) -> None:
    client = TestClient(
        create_app(sample.uri, allow_writes=True), raise_server_exceptions=False, base_url=LOCAL
    )
    latest = sample.latest_version()
    step1 = client.get("/api/confirm/rollback", params={"to": 2}).json()
    preview = step1["preview"]
    assert preview["rows_dropped"] == sample.records().count_rows() - 12
    assert [r["run_id"] for r in preview["impact"]["runs"]] == [RUN_ID]
    assert {m["mix"] for m in preview["impact"]["mixes"]} == {"sample-chat"}
    assert sample.latest_version() == latest
    missing = client.post("/api/rollback", json={"to": "2"})
    assert missing.status_code == 400 and "not confirmed" in missing.json()["error"]
    forged = client.post("/api/rollback", json={"to": "2", "confirm": "0" * 32})
    assert forged.status_code == 400 and "does not match" in forged.json()["error"]
    other = client.post("/api/rollback", json={"to": "3", "confirm": step1["confirm"]})
    assert other.status_code == 400
    assert sample.latest_version() == latest
    done = client.post("/api/rollback", json={"to": "2", "confirm": step1["confirm"]}).json()
    assert done == {"to": 2, "new_version": latest + 1}
    assert sample.records().count_rows() == 12
    replay = client.post("/api/rollback", json={"to": "2", "confirm": step1["confirm"]})
    assert replay.status_code in (400, 409)
    assert sample.latest_version() == latest + 1


def test_html_confirm_form_rolls_back(sample: Lake) -> None:
    client = TestClient(
        create_app(sample.uri, allow_writes=True), raise_server_exceptions=False, base_url=LOCAL
    )
    page = client.get("/confirm/rollback", params={"to": "scored"})
    assert page.status_code == 200 and "impact" in page.text and "junk" in page.text
    token = re.search(r'name="confirm" value="([0-9a-f-]+)"', page.text)
    assert token
    done = client.post("/do/rollback", data={"to": "scored", "confirm": token.group(1)})
    assert done.status_code == 200 and "rollback done" in done.text
    assert sample.records().count_rows() == 36
    assert sample.log()[0].operation == "rollback"


def test_delete_batch_and_tag(sample: Lake) -> None:
    client = TestClient(
        create_app(sample.uri, allow_writes=True), raise_server_exceptions=False, base_url=LOCAL
    )
    batch = sample.sql("SELECT any_value(batch) AS b FROM records WHERE source='junk'")
    batch_id = batch.column("b")[0].as_py()
    step1 = client.get("/api/confirm/delete", params={"batch": batch_id}).json()
    assert step1["preview"]["rows"] == 6 and step1["preview"]["impact"]["runs"] == []
    done = client.post("/api/delete", json={"batch": batch_id, "confirm": step1["confirm"]}).json()
    assert done["rows_removed"] == 6
    assert (
        sample.sql("SELECT count(*) AS n FROM records WHERE source='junk'").column("n")[0].as_py()
        == 0
    )
    tag = client.get("/api/confirm/tag", params={"name": "clean"}).json()
    assert tag["preview"] == {"tag": "clean", "version": sample.latest_version()}
    ok = client.post("/api/tag", json={"name": "clean", "confirm": tag["confirm"]}).json()
    assert ok == {"tag": "clean", "version": sample.latest_version()}
    again = client.post("/api/tag", json={"name": "clean", "confirm": tag["confirm"]})
    assert again.status_code == 400 and "already exists" in again.json()["error"]
    bad = client.get("/api/confirm/tag", params={"name": "pin-x"}).json()
    r = client.post("/api/tag", json={"name": "pin-x", "confirm": bad["confirm"]})
    assert r.status_code == 400 and "bad tag name" in r.json()["error"]
    assert client.post("/api/tag", content=b"not json").status_code == 400
