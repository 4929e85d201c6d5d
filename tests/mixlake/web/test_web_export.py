"""The web UI's download formats are the export-format registry's (`format_names("download")`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from curation import Lake
from curation.testing import make_lake
from mixlake.web import create_app
from mixlake.web.errors import WebError
from mixlake.web.export import export_rows, formats
from queries import ExportFormat, format_names, register_format
from queries.export_formats import unregister_format


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    rows = [{"text": f"row {i}"} for i in range(3)]
    rows.append({"messages": [{"role": "user", "content": "hi"}]})
    return make_lake(tmp_path_factory.mktemp("webexport"), {"web": rows})


@pytest.fixture
def tsv() -> Iterator[None]:
    @register_format
    class Tsv(ExportFormat):
        name = "tsv-test"
        for_mix = False
        media_type = "text/tab-separated-values"
        nested = False

        def encode_table(self, table: pa.Table) -> bytes:
            lines = ["\t".join(table.column_names)]
            lines += ["\t".join(str(v) for v in r.values()) for r in table.to_pylist()]
            return ("\n".join(lines) + "\n").encode()

    yield
    unregister_format("tsv-test")


def test_the_offered_formats_are_the_registrys(tsv: None) -> None:
    assert tuple(formats()) == format_names("download")
    assert formats()["parquet"] == "application/vnd.apache.parquet"
    assert formats()["tsv-test"] == "text/tab-separated-values"
    assert "tsv-test" not in format_names("mix")


def test_a_registered_download_format_encodes_the_rows(lake: Lake, tsv: None) -> None:
    body, media = export_rows(lake, lake.latest_version(), "tsv-test", "", [], [])
    header, *lines = body.decode().splitlines()
    assert media == "text/tab-separated-values" and len(lines) == 4
    assert "messages" not in header.split("\t") and "text" in header.split("\t")  # scalar only


def test_builtin_downloads_and_an_unknown_name(lake: Lake, tmp_path: Path) -> None:
    version = lake.latest_version()
    body, media = export_rows(lake, version, "jsonl", "", [], [])
    rows = [json.loads(line) for line in body.splitlines()]
    assert media == "application/x-ndjson" and len(rows) == 4
    assert any(r["messages"] for r in rows)  # nested columns kept
    body, _ = export_rows(lake, version, "parquet", "", [], [])
    (tmp_path / "x.parquet").write_bytes(body)
    assert pq.read_table(tmp_path / "x.parquet").num_rows == 4
    with pytest.raises(WebError, match="unknown download format 'hf'; use one of jsonl, parquet"):
        export_rows(lake, version, "hf", "", [], [])


def test_the_records_page_offers_the_registrys_formats(lake: Lake, tsv: None) -> None:
    client = TestClient(create_app(lake.uri), base_url="http://127.0.0.1")
    page = client.get("/records")
    assert page.status_code == 200
    offered = re.findall(r"<option>([\w-]+)</option>", page.text.split('name="format"')[1])
    assert offered[: len(format_names("download"))] == list(format_names("download"))
    assert "tsv-test" in offered
