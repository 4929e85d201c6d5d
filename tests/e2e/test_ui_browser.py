"""The UI in a real browser: Playwright drives Debian's headless Chromium against `mixlake serve`.

Loads every page, filters, searches, opens a row, runs a version diff, a mix diff, a
base-vs-tuned comparison and a confirmed rollback, and saves a screenshot of each page.

Screenshots go to a pytest tmp dir and are checked to be real 1280x860 PNGs, so `make test`
leaves the tree clean. Set MIXLAKE_SCREENSHOTS to a folder (relative paths are taken from the
repo root) to write them there instead: `make screenshots` regenerates docs/img/ (used by
docs/ui.md) with MIXLAKE_SCREENSHOTS=docs/img, and then a missing Chromium or Playwright fails
rather than skips.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from curation import Lake
from mixlake.web.sample import BASE, METRIC, RUN_ID, SUITE, build_sample_lake

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS_ENV = "MIXLAKE_SCREENSHOTS"
VIEWPORT = {"width": 1280, "height": 860}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get(SCREENSHOTS_ENV),
    reason=f"{CHROMIUM} missing: `apt-get install -y chromium` (make test does it as root)",
)


def _screenshot_dir(tmp_path: Path) -> Path:
    """MIXLAKE_SCREENSHOTS if set (relative to the repo root), else the test's tmp dir."""
    target = os.environ.get(SCREENSHOTS_ENV)
    if not target:
        return tmp_path
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{SCREENSHOTS_ENV} is set but {CHROMIUM} is missing")
    out = Path(target)
    return out if out.is_absolute() else ROOT / out


def _assert_png(path: Path, width: int, height: int) -> None:
    data = path.read_bytes()
    assert len(data) > 1000, f"{path}: {len(data)} bytes"
    assert data[:8] == PNG_MAGIC, f"{path}: not a PNG"
    assert data[12:16] == b"IHDR", f"{path}: no IHDR chunk"
    assert struct.unpack(">II", data[16:24]) == (width, height), path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Lake]]:
    lake = build_sample_lake(tmp_path_factory.mktemp("ui"))
    port = _free_port()
    exe = Path(sys.executable).with_name("mixlake")
    cmd = [str(exe), "serve", "--lake", lake.uri, "--port", str(port), "--allow-writes"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{url}/api/log", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"mixlake serve exited: {out[-2000:]}")
                time.sleep(0.2)
        else:
            pytest.fail("mixlake serve did not answer within 30 s")
        yield url, lake
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_every_page_in_chromium(served: tuple[str, Lake], tmp_path: Path) -> None:
    if os.environ.get(SCREENSHOTS_ENV) and importlib.util.find_spec("playwright") is None:
        pytest.fail(f"{SCREENSHOTS_ENV} is set but playwright is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, lake = served
    out_dir = _screenshot_dir(tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def shot(name: str) -> None:
            path = out_dir / f"{name}.png"
            page.screenshot(path=str(path), full_page=False)
            shots.append(path)

        # records: load, filter, page on
        page.goto(f"{url}/records")
        assert page.locator("#count").inner_text().startswith("126 rows match")
        page.fill("#filter-form input[name=where]", "source = 'chat' AND sample_score_v1 > 0.5")
        page.click("#filter-form button")
        page.wait_for_url("**/records?*")
        want = lake.sql(
            "SELECT count(*) AS n FROM records WHERE source='chat' AND sample_score_v1>0.5"
        )
        count = page.locator("#count").inner_text()
        assert count.startswith(f"{want.column('n')[0].as_py()} rows match")
        assert set(page.locator("#records tbody td:nth-child(2)").all_inner_texts()) == {"chat"}
        shot("records")

        # search (semantic, over every row), then open a chat row from the filtered table
        filtered = page.url
        page.goto(f"{url}/records")
        page.fill("#search-form input[name=q]", "chess fact")
        page.click("#search-form button")
        page.wait_for_selector("#hits tbody tr")
        assert "semantic" in page.locator("h2").first.inner_text()
        assert "chess" in page.locator("#hits tbody tr").first.inner_text()
        shot("search")
        page.goto(filtered)
        page.locator("#records tbody tr a").first.click()
        page.wait_for_selector("#conversation .turn.user")
        assert page.locator("#conversation .turn").count() == 2
        assert "sample_score_v1" in page.locator("#columns").inner_text()
        shot("record")

        # charts follow the filter
        page.goto(f"{url}/charts")
        page.fill("#chart-form input[name=where]", "kind = 'chat'")
        page.click("#chart-form button")
        page.wait_for_load_state("networkidle")
        for chart in ("length", "score", "source"):
            img = page.locator(f"#chart-{chart}")
            assert "where=kind" in (img.get_attribute("src") or "")
            assert img.evaluate("i => i.complete && i.naturalWidth > 100")
        shot("charts")

        # history: diff two versions
        page.goto(f"{url}/history")
        page.fill("#diff-form input[name=a]", "2")
        page.fill("#diff-form input[name=b]", "scored")
        page.click("#diff-form button")
        page.wait_for_selector("#diff")
        assert "+80" in page.locator("#diff h2").inner_text()
        shot("history")

        # mixes: list, diff, one mix with rendered rows
        page.goto(f"{url}/mixes")
        if page.locator("#mixes").count():
            page.fill("#mixdiff-form input[name=a]", "sample-chat@1")
            page.fill("#mixdiff-form input[name=b]", "sample-chat@2")
            page.click("#mixdiff-form button")
            page.wait_for_selector("#mixdiff")
            shot("mixes")
            page.goto(f"{url}/mixes/sample-chat@2")
            page.wait_for_selector(".example .chat")
            assert page.locator("#components tbody tr").count() == 2
            shot("mix")

        # runs and evals
        page.goto(f"{url}/runs/{RUN_ID}")
        page.wait_for_load_state("networkidle")
        assert page.locator("#loss-curve").evaluate("i => i.naturalWidth > 100")
        shot("run")
        page.goto(f"{url}/evals")
        page.select_option("#compare-form select[name=base]", f"eval_{BASE}_{SUITE}_{METRIC}")
        page.select_option("#compare-form select[name=tuned]", f"eval_{RUN_ID}_{SUITE}_{METRIC}")
        page.click("#compare-form button")
        page.wait_for_selector("#compare")
        assert "wins" in page.locator("#compare").inner_text()
        shot("evals")

        # confirmed rollback: the impact list first, then the browser's confirm dialog
        page.goto(f"{url}/history")
        page.click("#rollback-2")
        page.wait_for_selector("#impact")
        assert RUN_ID in page.locator("#impact-runs").inner_text()
        shot("rollback-confirm")
        before = lake.latest_version()
        page.once("dialog", lambda d: d.accept())
        page.check("#confirm-check")
        page.click("#confirm-button")
        page.wait_for_selector("#result")
        assert lake.latest_version() == before + 1
        assert lake.records().count_rows() == 40
        shot("rollback-done")
        assert not errors, errors
        browser.close()

    assert len(shots) >= 9, [s.name for s in shots]
    for path in shots:
        _assert_png(path, VIEWPORT["width"], VIEWPORT["height"])
