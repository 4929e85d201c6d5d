"""The embedding map's API.

A PCA projection of `embedding` computed on the server, cached per records version, sent as
Float32 arrays; colours by cluster, source or a score; cluster labels from the `clusters`
table; a lasso/box polygon as a filter of the grid, facets and export.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from matplotlib.path import Path as PolyPath

from curation import Lake
from curation.testing import make_lake
from mixlake.web import create_app, embedmap
from mixlake.web.embedmap import decode
from mixlake.web.sample import build_sample_lake

LOCAL = "http://127.0.0.1"
LEFT_HALF = [[-1.0, -1.0], [0.0, -1.0], [0.0, 1.0], [-1.0, 1.0]]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_sample_lake(tmp_path_factory.mktemp("map"), rows_per_source=30)


@pytest.fixture(scope="module")
def client(sample: Lake) -> TestClient:
    return TestClient(create_app(sample.uri), raise_server_exceptions=False, base_url=LOCAL)


def _map(client: TestClient, **params: str) -> tuple[dict, dict[str, np.ndarray]]:
    r = client.get("/api/map", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    header, arrays = decode(r.content)
    return header, dict(zip(header["arrays"], arrays, strict=True))


def _lasso(polygon: list[list[float]]) -> str:
    return json.dumps([{"column": "map", "op": "lasso", "polygon": polygon}])


def _embeddings(lake: Lake) -> tuple[list[str], np.ndarray]:
    t = lake.records().to_table(columns=["id", "embedding"], filter="embedding IS NOT NULL")
    m = np.asarray(t.column("embedding").combine_chunks().values.to_numpy(), np.float64)
    m = m.reshape(t.num_rows, -1)
    return t.column("id").to_pylist(), m / np.linalg.norm(m, axis=1, keepdims=True)


def test_points_are_a_pca_projection_sent_as_float32(client: TestClient, sample: Lake) -> None:
    from sklearn.decomposition import PCA

    header, arrays = _map(client)
    ids, vectors = _embeddings(sample)
    assert header["points"] == len(ids) == 90 and header["rows"] == 96  # junk has none
    assert header["method"] == "pca"
    # 16 bytes a point after the header: four float32 arrays, no JSON per point
    body = client.get("/api/map").content
    assert len(body) - 4 - int.from_bytes(body[:4], "little") == 16 * header["points"]
    xy = np.column_stack([arrays["x"], arrays["y"]])
    assert np.abs(xy).max() <= 1.0
    want = PCA(n_components=2).fit(vectors)
    ref = want.transform(vectors)
    by_id = dict(
        zip(embedmap.projection(sample, sample.latest_version()).ids.to_pylist(), xy, strict=True)
    )
    got = np.array([by_id[i] for i in ids])
    for axis in (0, 1):
        assert abs(np.corrcoef(got[:, axis], ref[:, axis])[0, 1]) > 0.999
    assert header["explained"] == pytest.approx(list(want.explained_variance_ratio_), abs=1e-3)


def test_projection_is_cached_per_version(sample: Lake) -> None:
    latest = sample.latest_version()
    first = embedmap.projection(sample, latest)
    assert embedmap.projection(sample, latest) is first
    older = embedmap.projection(sample, sample.resolve("scored"))
    assert older is not first and older.version == sample.resolve("scored")


def test_colours_and_cluster_labels(client: TestClient, sample: Lake) -> None:
    header, _ = _map(client)
    assert header["color"]["column"] == "cluster"  # the default when clusters exist
    assert {"cluster", "source", "sample_score_v1"} <= set(header["colors"])
    cats = header["color"]["categories"]
    assert sum(c["points"] for c in cats) == header["points"]
    stored = {
        r["cluster"]: r["top_terms"]
        for r in sample.dataset("clusters").to_table(columns=["cluster", "top_terms"]).to_pylist()
    }
    assert {c["cluster"]: c["top_terms"] for c in header["clusters"]} == stored
    assert all(c["top_terms"] for c in header["clusters"])
    score, values = _map(client, color="sample_score_v1")
    assert score["color"]["kind"] == "continuous"
    assert values["value"].min() >= 0.0 and values["value"].max() == pytest.approx(1.0)
    source, values = _map(client, color="source")
    names = [c["name"] for c in source["color"]["categories"]]
    assert sorted(names) == ["chat", "instruct", "web"]
    # each point's colour is its own row's source (colours and points in the same order)
    ids = embedmap.projection(sample, sample.latest_version()).ids.to_pylist()
    rows = sample.sql("SELECT id, source FROM records").to_pylist()
    truth = {r["id"]: r["source"] for r in rows}
    assert [names[int(v)] for v in values["value"]] == [truth[i] for i in ids]
    assert client.get("/api/map", params={"color": "text"}).status_code == 400


def test_a_lasso_filters_the_grid_facets_and_export(client: TestClient, sample: Lake) -> None:
    proj = embedmap.projection(sample, sample.latest_version())
    inside = PolyPath(np.array(LEFT_HALF)).contains_points(proj.xy)
    want = sorted(proj.ids.filter(inside).to_pylist())
    assert 0 < len(want) < len(proj.ids)
    f = _lasso(LEFT_HALF)
    got = client.get("/api/records", params={"filters": f, "limit": 500}).json()
    assert got["total"] == len(want)
    assert sorted(r["id"] for r in got["rows"]) == want
    facets = client.get("/api/facets", params={"filters": f}).json()["facets"]
    source = next(x for x in facets if x["column"] == "source")
    assert sum(v["n"] for v in source["values"]) == len(want)
    lines = client.get("/api/export", params={"filters": f}).text.splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == want
    # with the WHERE box too, and the map's own "matches" array agrees
    header, arrays = _map(client, where="source = 'chat'", filters=f)
    n = (
        sample.sql("SELECT count(*) AS n FROM records WHERE source = 'chat' AND " + _in(want))
        .column("n")[0]
        .as_py()
    )
    assert header["matched"] == int(arrays["match"].sum()) == n
    only, parts = _map(client, filters=f, parts="match")
    assert list(parts) == ["match"] and only["matched"] == len(want)


def _in(ids: list[str]) -> str:
    from curation.sqltext import in_list

    return in_list("id", ids)


@pytest.mark.parametrize(
    "polygon",
    [[[0, 0], [1, 1]], [[0, 0], [1, "x"], [1, 0]], "nope", [[0, 0]] * 2001],
)
def test_bad_polygons_are_a_400(client: TestClient, polygon: object) -> None:
    text = json.dumps([{"column": "map", "op": "lasso", "polygon": polygon}])
    r = client.get("/api/records", params={"filters": text})
    assert r.status_code == 400 and "map" in r.json()["error"]


def test_point_lookup_and_a_lake_without_embeddings(
    client: TestClient, sample: Lake, tmp_path
) -> None:
    proj = embedmap.projection(sample, sample.latest_version())
    got = client.get("/api/map/point", params={"index": 5}).json()
    assert got["id"] == proj.ids[5].as_py() and got["text"]
    assert client.get("/api/map/point", params={"index": 10**6}).status_code == 404
    assert 'id="map-panel"' in client.get("/records").text
    bare = make_lake(tmp_path, {"web": [{"text": "a b c"}, {"text": "d e f"}]})
    plain = TestClient(create_app(bare.uri), raise_server_exceptions=False, base_url=LOCAL)
    r = plain.get("/api/map")
    assert r.status_code == 404 and "embed" in r.json()["error"]
    assert 'id="map-panel"' not in plain.get("/records").text
