"""The web UI's JSON API and pages through FastAPI's TestClient, on the sample lake."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from curation import Lake
from mixlake.web import create_app
from mixlake.web.sample import BASE, METRIC, RUN_ID, SUITE, build_sample_lake
from mixlake.web.sqlbox import locked_connection

LOCAL = "http://127.0.0.1"

BASE_COL = f"eval_{BASE}_{SUITE}_{METRIC}"
RUN_COL = f"eval_{RUN_ID}_{SUITE}_{METRIC}"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_sample_lake(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(sample: Lake) -> TestClient:
    return TestClient(create_app(sample.uri), raise_server_exceptions=False, base_url=LOCAL)


def test_records_page_paginates_filters_and_reads_old_versions(
    client: TestClient, sample: Lake
) -> None:
    got = client.get("/api/records", params={"limit": 10}).json()
    assert got["total"] == sample.records().count_rows() == 126
    assert len(got["rows"]) == 10
    assert got["rows"] == sorted(got["rows"], key=lambda r: r["id"])
    assert {"sample_score_v1", RUN_COL} <= set(got["columns"])
    second = client.get("/api/records", params={"limit": 10, "offset": 10}).json()
    assert not {r["id"] for r in got["rows"]} & {r["id"] for r in second["rows"]}
    chat = client.get("/api/records", params={"where": "source = 'chat' AND is_short = false"})
    want = sample.sql("SELECT count(*) AS n FROM records WHERE source='chat' AND NOT is_short")
    assert chat.json()["total"] == want.column("n")[0].as_py()
    assert {r["source"] for r in chat.json()["rows"]} == {"chat"}
    assert client.get("/api/records", params={"version": 2}).json()["total"] == 40
    tagged = client.get("/api/records", params={"version": "scored"}).json()
    assert tagged["total"] == 120 and tagged["version"] == sample.resolve("scored")


@pytest.mark.parametrize(
    ("predicate", "reason"),
    [
        ("1=1) UNION SELECT * FROM read_csv('/etc/passwd') WHERE (1=1", "unbalanced ')'"),
        ("id IN (SELECT column0 FROM read_csv('/etc/passwd'))", "disabled by configuration"),
        ("id IN (SELECT * FROM read_text('/etc/passwd'))", "disabled by configuration"),
        ("1=1; COPY records TO '{out}'", "';' is not allowed"),
        ("(COPY records TO '{out}')", "syntax error"),
        ("1=1) TO '{out}' --", "unbalanced ')'"),
        ("1=1 -- ) TO '{out}'", "comments are not allowed"),
        ("ATTACH '{out}' AS x", "syntax error"),
        ("(INSTALL httpfs)", "syntax error"),
        ("(LOAD httpfs)", "syntax error"),
        ("(PRAGMA database_list)", "syntax error"),
        ("1=1 /* hidden */", "comments are not allowed"),
        ("text = $$)$$ OR (1=1", "unbalanced"),
        ("nosuch > 1", "not found"),
        ("(1=1", "unbalanced '('"),
    ],
)
def test_hostile_where_is_a_clear_400_and_touches_nothing(
    client: TestClient, sample: Lake, tmp_path: Path, predicate: str, reason: str
) -> None:
    out = tmp_path / "stolen.csv"
    before = sample.latest_version()
    r = client.get("/api/records", params={"where": predicate.format(out=out)})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("where:")
    assert reason in r.json()["error"]
    assert not out.exists()
    assert sample.latest_version() == before


def test_locked_connection_cannot_reenable_file_access(sample: Lake) -> None:
    con = locked_connection(sample)
    with pytest.raises(Exception, match="locked"):
        con.execute("SET enable_external_access = true")
    with pytest.raises(Exception, match="disabled by configuration"):
        con.execute("SELECT * FROM read_csv('/etc/passwd')")
    assert con.execute("SELECT count(*) FROM records").fetchone() == (126,)


def test_record_detail_has_conversation_and_provenance(client: TestClient, sample: Lake) -> None:
    rid = sample.sql("SELECT min(id) AS i FROM records WHERE source = 'chat'").column("i")[0]
    got = client.get(f"/api/records/{rid.as_py()}").json()
    assert [m["role"] for m in got["messages"]] == ["user", "assistant"]
    by_col = {c["column"]: c for c in got["columns"]}
    assert by_col["sample_score_v1"]["provenance"]["step"] == "sample_score_v1"
    assert by_col["sample_score_v1"]["provenance"]["params"] == {"salt": "q"}
    assert by_col[RUN_COL]["provenance"]["records_version"] == 6
    assert by_col["embedding"]["value"] == "[64 values]"
    page = client.get(f"/records/{rid.as_py()}")
    assert page.status_code == 200 and 'class="turn user"' in page.text
    assert client.get("/api/records/not-an-id").status_code == 400
    missing = client.get("/api/records/" + "0" * 32)
    assert missing.status_code == 404 and "no record" in missing.json()["error"]


def test_charts_are_pngs_that_follow_the_filter(client: TestClient) -> None:
    for kind in ("length", "score", "source"):
        r = client.get(f"/api/charts/{kind}.png")
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    everything = client.get("/api/charts/source.png").content
    filtered = client.get("/api/charts/source.png", params={"where": "source = 'web'"}).content
    assert everything != filtered
    score = client.get("/api/charts/score.png", params={"column": RUN_COL})
    assert score.status_code == 200
    assert client.get("/api/charts/pie.png").status_code == 400
    assert client.get("/api/charts/score.png", params={"column": "nosuch"}).status_code == 404
    assert client.get("/api/charts/score.png", params={"column": "x; drop"}).status_code == 400
    page = client.get("/charts", params={"where": "source = 'web'"})
    assert "where=source+%3D+%27web%27" in page.text


def test_search_semantic_and_full_text(client: TestClient) -> None:
    sem = client.get("/api/search", params={"q": "chess fact", "k": 3}).json()
    assert sem["mode"] == "semantic" and len(sem["hits"]) == 3
    assert all("chess" in h["snippet"] for h in sem["hits"])
    web = client.get("/api/search", params={"q": "chess", "where": "source = 'chat'"}).json()
    assert {h["source"] for h in web["hits"]} == {"chat"}
    fts = client.get("/api/search", params={"q": "BUY NOW", "fts": True}).json()
    assert fts["mode"].startswith("substring") and len(fts["hits"]) == 6
    assert client.get("/api/search", params={"q": " "}).status_code == 400
    assert client.get("/api/search", params={"q": "x", "k": 0}).status_code == 400
    assert "search hits" in client.get("/records", params={"q": "chess"}).text


def test_history_log_tags_diff(client: TestClient, sample: Lake) -> None:
    log = client.get("/api/log").json()["versions"]
    assert [v["version"] for v in log] == sorted((v["version"] for v in log), reverse=True)
    assert log[0]["message"].startswith("ingest source=junk")
    assert client.get("/api/tags").json()["tags"] == [
        {"name": "scored", "version": sample.resolve("scored")}
    ]
    d = client.get("/api/diff", params={"a": 2, "b": "latest"}).json()
    assert {s["source"]: s["added"] for s in d["by_source"]} == {
        "chat": 40,
        "instruct": 40,
        "junk": 6,
    }
    assert d["removed"] == 0 and len(d["added_examples"]) == 5
    assert client.get("/api/diff", params={"a": 2}).status_code == 400
    assert client.get("/api/diff", params={"a": 2, "b": 999}).status_code == 404
    page = client.get("/history", params={"a": 2, "b": "scored"})
    assert page.status_code == 200 and 'id="diff"' in page.text


def test_mixes_runs_evals(client: TestClient) -> None:
    mixes = client.get("/api/mixes").json()["mixes"]
    assert [(m["name"], m["mix_version"]) for m in mixes] == [
        ("sample-chat", 1),
        ("sample-chat", 2),
    ]
    mix = client.get("/api/mixes/sample-chat@2", params={"samples": 3}).json()
    assert mix["rows"] == 36 and set(mix["components"]) == {"chat", "instruct"}
    assert len(mix["examples"]) == 3 and all("messages" in e for e in mix["examples"])
    d = client.get("/api/mixdiff", params={"a": "sample-chat@1", "b": "sample-chat@2"}).json()
    assert not d["same"] and d["added"] > 0
    assert client.get("/api/mixes/nosuch").status_code == 404
    assert client.get("/api/mixes/bad name!").status_code == 400
    runs = client.get("/api/runs").json()["runs"]
    assert runs[0]["run_id"] == RUN_ID and runs[0]["steps"] == 20
    run = client.get(f"/api/runs/{RUN_ID}").json()
    assert len(run["history"]) == 24 and {e["metric"] for e in run["evals"]} == {METRIC}
    assert client.get(f"/api/runs/{RUN_ID}/loss.png").content.startswith(b"\x89PNG")
    assert client.get("/api/runs/r-nope").status_code == 404


def test_compare_base_vs_tuned(client: TestClient, sample: Lake) -> None:
    got = client.get("/api/compare", params={"base": BASE_COL, "tuned": RUN_COL, "k": 4}).json()
    assert got["rows"] == 120
    assert got["wins"] + got["losses"] + got["ties"] == 120
    wins = [r["delta"] for r in got["biggest_wins"]]
    assert wins == sorted(wins, reverse=True) and len(wins) == 4
    top = sample.sql(f'SELECT max("{RUN_COL}" - "{BASE_COL}") AS m FROM records')
    assert wins[0] == pytest.approx(top.column("m")[0].as_py())
    assert got["biggest_losses"][0]["delta"] <= got["biggest_losses"][-1]["delta"]
    assert (
        client.get("/api/compare", params={"base": "nosuch", "tuned": RUN_COL}).status_code == 404
    )
    evals = client.get("/api/evals").json()
    assert {e["run_id"] for e in evals["evals"]} == {BASE, RUN_ID}
    assert client.get("/evals", params={"base": BASE_COL, "tuned": RUN_COL}).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/api/records?limit=0",
        "/api/records?limit=100000",
        "/api/records?limit=abc",
        "/api/records?offset=-1",
        "/api/records?version=999",
        "/api/records?version=no-such-tag",
        "/api/records?where=%27",
        "/api/diff?a=1&b=2&examples=999",
        "/api/compare?base=&tuned=",
        "/api/compare?base=a&tuned=b&k=0",
        "/api/mixes/x@y",
        "/api/mixdiff?a=&b=",
        "/api/confirm/explode?to=1",
        "/api/confirm/rollback",
        "/api/confirm/rollback?to=99",
        "/api/confirm/delete?batch=nosuch",
        "/api/confirm/delete?batch=%27%20OR%201%3D1",
        "/api/charts/score.png?where=1%3D1)",
        "/records?limit=-5",
        "/records/zzz",
        "/nosuch",
    ],
)
def test_bad_parameters_are_clear_4xx(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if url.startswith("/api"):
        assert r.json()["error"] and r.json()["status"] == r.status_code


def test_empty_lake_pages_say_nothing_yet(lake: Lake) -> None:
    client = TestClient(create_app(lake.uri), raise_server_exceptions=False, base_url=LOCAL)
    for path, text in [
        ("/records", "0 rows match"),
        ("/charts", "charts"),
        ("/history", "created the lake"),
        ("/mixes", "no mixes yet"),
        ("/runs", "no runs yet"),
        ("/evals", "no evals yet"),
    ]:
        r = client.get(path)
        assert r.status_code == 200 and text in r.text, path
    assert client.get("/api/charts/length.png").status_code == 200
    assert client.get("/api/mixes").json() == {"mixes": []}
