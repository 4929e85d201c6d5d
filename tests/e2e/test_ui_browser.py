"""The UI in a real browser: Playwright drives Debian's headless Chromium against `mixlake serve`.

A curator's pass at 1400 px and at 390 px: sort the grid by a score, click and brush facets,
choose columns, label rows with the keyboard, read a row, search, diff versions, compare evals
in the metric's direction, look at mixes and runs, and roll back after reading the preview.
Every request the pages make must go to the server itself (the UI works offline).

Screenshots go to a pytest tmp dir and are checked to be real PNGs of the viewport, so `make test`
leaves the tree clean. Set MIXLAKE_SCREENSHOTS to a folder (relative paths are taken from the
repo root) to write them there instead: `make screenshots` regenerates docs/img/ (used by
docs/ui.md) with MIXLAKE_SCREENSHOTS=docs/img, and then a missing Chromium or Playwright fails
rather than skips.
"""

from __future__ import annotations

import importlib.util
import json
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
WIDE = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if os.environ.get(SCREENSHOTS_ENV) and importlib.util.find_spec("playwright") is None:
        pytest.fail(f"{SCREENSHOTS_ENV} is set but playwright is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Shots:
    """Opens pages at one viewport, fails on script errors or off-server requests, and saves
    named screenshots."""

    def __init__(self, browser: object, url: str, viewport: dict[str, int], out: Path) -> None:
        self.page = browser.new_page(viewport=viewport)  # type: ignore[attr-defined]
        self.viewport, self.out, self.paths = viewport, out, []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on(
            "request",
            lambda r: (
                None if r.url.startswith((url, "data:", "blob:")) else self.errors.append(r.url)
            ),
        )

    def shot(self, name: str) -> None:
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        self.paths.append(path)

    def done(self) -> None:
        assert not self.errors, self.errors
        for path in self.paths:
            _assert_png(path, self.viewport["width"], self.viewport["height"])
        self.page.close()


def _grid_ids(page: object, n: int = 5) -> list[str]:
    """The ids of the first `n` rows the grid shows, in order."""
    return page.evaluate(  # type: ignore[attr-defined]
        "n => { const api = window.mixlakeGrid.api; const out = [];"
        " for (let i = 0; i < n; i++) { const r = api.getDisplayedRowAtIndex(i);"
        " if (r && r.data) out.push(r.data.id); } return out; }",
        n,
    )


def _count(page: object) -> int:
    text = page.locator("#count").inner_text()  # type: ignore[attr-defined]
    return int(text.split()[0])


def _n(lake: Lake, where: str) -> int:
    return int(lake.sql(f"SELECT count(*) AS n FROM records WHERE {where}").column("n")[0].as_py())


def _drag(page: object, points: list[tuple[float, float]]) -> None:
    """Press, move through `points` (fractions of the map canvas) and release."""
    canvas = page.locator(".map-canvas canvas")  # type: ignore[attr-defined]
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])  # type: ignore[attr-defined]
    page.mouse.down()  # type: ignore[attr-defined]
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=8)  # type: ignore[attr-defined]
    page.mouse.up()  # type: ignore[attr-defined]


def _map_filter_count(page: object, lake: Lake) -> int:
    """Rows inside the map filter the page holds, computed here from the same projection."""
    from mixlake.web.embedmap import selected_ids

    filters = page.evaluate("window.mixlakeGrid.state.filters")  # type: ignore[attr-defined]
    poly = next(f for f in filters if f["column"] == "map")["polygon"]
    return len(selected_ids(lake, lake.latest_version(), tuple(tuple(p) for p in poly)))


def test_map_select_and_slice_to_mix_at_1400px(
    served: tuple[str, Lake], browser: object, tmp_path: Path
) -> None:
    from queries import open_mix

    url, lake = served
    out = _screenshot_dir(tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    s = Shots(browser, url, WIDE, out)
    page = s.page
    page.goto(f"{url}/records")
    page.wait_for_selector(".ag-row[row-index='0'] a")

    # the map: every embedded row, coloured by cluster, clusters named by their top terms
    page.click("#map-open")
    page.wait_for_function("window.mixlakeMap && window.mixlakeMap.loaded")
    assert "120 of 126 rows have an embedding · PCA" in page.locator("#map-status").inner_text()
    terms = lake.dataset("clusters").to_table(columns=["cluster", "top_terms"]).to_pylist()
    labels = page.locator(".cluster-label").all_inner_texts()
    assert sorted(labels) == sorted(
        f"{t['cluster']}: {' '.join(t['top_terms'][:3])}" for t in terms
    )
    # colour by a score, then back to clusters
    page.select_option("#map-color", "sample_score_v1")
    page.wait_for_selector("#map-legend li.ramp")
    page.select_option("#map-color", "cluster")
    page.wait_for_selector("#map-legend .swatch")

    # box select: the grid and the facets show the rows inside it
    page.check("input[name=map-mode][value=box]")
    _drag(page, [(0.5, 0.02), (0.75, 0.5), (0.99, 0.7)])
    page.wait_for_function("location.search.includes('lasso')")
    want = _map_filter_count(page, lake)
    assert 0 < want < 120
    page.wait_for_function(f"document.querySelector('#count').textContent.startsWith('{want} ')")
    assert page.evaluate("window.mixlakeMap.selected") == want
    page.wait_for_function(
        f"document.querySelector('#map-status').textContent.includes('{want} match')"
    )
    page.wait_for_function("!document.querySelector('#facets').hasAttribute('aria-busy')")
    counts = page.locator(".facet[data-column='source'] li").all_inner_texts()
    assert sum(int(c.split(" · ")[1]) for c in counts) == want
    s.shot("map")
    # a free-hand lasso replaces it
    page.check("input[name=map-mode][value=lasso]")
    _drag(page, [(0.1, 0.1), (0.6, 0.1), (0.6, 0.9), (0.1, 0.9), (0.1, 0.12)])
    page.wait_for_function(f"!document.querySelector('#count').textContent.startsWith('{want} ')")
    lassoed = _map_filter_count(page, lake)
    page.wait_for_function(f"document.querySelector('#count').textContent.startsWith('{lassoed} ')")
    assert page.evaluate("window.mixlakeMap.selected") == lassoed
    page.click("#map-clear")
    page.wait_for_function("document.querySelector('#count').textContent.startsWith('126 ')")

    # the null value of a category facet selects the rows without one (the junk batch)
    page.click(".facet[data-column='length_bucket'] li[data-value='null']")
    page.wait_for_function("document.querySelector('#count').textContent.startsWith('6 ')")
    page.click(".facet[data-column='length_bucket'] .clear")

    # save a filter as a slice, make it a mix component: spec, mix check live, materialize
    page.click(".facet[data-column='source'] li[data-value='chat']")
    page.wait_for_function("document.querySelector('#count').textContent.startsWith('40 ')")
    page.fill("#slice-name", "chat-all")
    page.click("#slice-save")
    page.wait_for_selector("#slice-link")
    assert "saved slice chat-all (40 rows" in page.locator("#slice-status").inner_text()
    page.click("#slice-link")
    page.wait_for_selector("#check-summary:has-text('rows')")
    tokens = lake.sql("SELECT sum(n_tokens) AS t FROM records WHERE source = 'chat'")
    summary = page.locator("#check-summary").inner_text()
    assert f"40 rows · {tokens.column('t')[0].as_py()} tokens" in summary
    assert page.locator("#check-components tbody tr td").first.inner_text() == "chat-all"
    assert "source IN ('chat')" in page.locator("#spec").input_value()
    s.shot("slice")
    page.check("#materialize-check")
    page.click("#materialize-button")
    page.wait_for_selector("#mix-link")
    assert open_mix(lake, "chat-all").row_count == 40
    page.click("#mix-link")
    page.wait_for_selector(".example .chat")
    s.done()

    # the map at 390 px: it fits the screen, and a box still filters the grid
    phone = Shots(browser, url, PHONE, out)
    page = phone.page
    page.goto(f"{url}/records")
    page.wait_for_selector(".ag-row[row-index='0'] a")
    page.click("#map-open")
    page.wait_for_function("window.mixlakeMap && window.mixlakeMap.loaded")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.check("input[name=map-mode][value=box]")
    _drag(page, [(0.02, 0.02), (0.5, 0.5), (0.98, 0.6)])
    page.wait_for_function("location.search.includes('lasso')")
    want = _map_filter_count(page, lake)
    page.wait_for_function(f"document.querySelector('#count').textContent.startsWith('{want} ')")
    phone.shot("phone-map")
    phone.done()


def test_curation_pass_at_1400px(served: tuple[str, Lake], browser: object, tmp_path: Path) -> None:
    from curation.labels import current_labels

    url, lake = served
    out = _screenshot_dir(tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    s = Shots(browser, url, WIDE, out)
    page = s.page

    # the grid: every row, sorted on the server by clicking a header
    page.goto(f"{url}/records")
    page.wait_for_selector(".ag-row[row-index='0'] a")
    assert _count(page) == 126
    page.click(".ag-header-cell[col-id='sample_score_v1'] .ag-header-cell-label")
    page.click(".ag-header-cell[col-id='sample_score_v1'] .ag-header-cell-label")
    page.wait_for_function("location.search.includes('sort=sample_score_v1&desc=true')")
    want = lake.sql(
        "SELECT id FROM records ORDER BY sample_score_v1 DESC NULLS LAST, id LIMIT 5"
    ).column("id")
    page.wait_for_function(
        "id => { const r = window.mixlakeGrid.api.getDisplayedRowAtIndex(0);"
        " return !!(r && r.data && r.data.id === id); }",
        arg=want[0].as_py(),
    )
    assert _grid_ids(page)[:5] == want.to_pylist()
    # the column chooser hides a column
    page.click("#column-chooser summary")
    page.uncheck("#column-list input[data-column='kind']")
    assert page.locator(".ag-header-cell[col-id='kind']").count() == 0
    page.click("#column-chooser summary")
    s.shot("records")

    # facets: click a source, then brush the upper half of the score histogram
    page.click(".facet[data-column='source'] li[data-value='chat']")
    page.wait_for_function("document.querySelector('#count').textContent.startsWith('40 ')")
    page.wait_for_function(
        "document.querySelectorAll(\".facet[data-column='kind'] li\").length === 1"
    )
    kinds = page.locator(".facet[data-column='kind'] li").all_inner_texts()
    assert kinds == ["chat · 40"]
    bars = page.locator(".facet[data-column='sample_score_v1'] .bar")
    bars.nth(10).hover()
    page.mouse.down()
    bars.nth(19).hover()
    page.mouse.up()
    page.wait_for_selector(".facet[data-column='sample_score_v1'].active")
    page.wait_for_function("!document.querySelector('#facets').hasAttribute('aria-busy')")
    hist = page.evaluate("window.mixlakeGrid.state.filters")
    lo = next(f for f in hist if f["column"] == "sample_score_v1")["lo"]
    want_n = _n(lake, f"source = 'chat' AND sample_score_v1 >= {lo}")
    page.wait_for_function(f"document.querySelector('#count').textContent.startsWith('{want_n} ')")
    assert "filters=" in page.url
    s.shot("facets")

    # label with the keyboard: j moves, 1 = good, 2 = bad (each saves and moves on)
    page.locator(".ag-row[row-index='0'] .ag-cell[col-id='source']").first.click()
    first = _grid_ids(page)[0]
    second = _grid_ids(page)[1]
    page.keyboard.press("1")
    page.wait_for_function(
        "document.querySelector('#label-status').textContent.startsWith('labelled 1 good')"
    )
    page.keyboard.press("2")
    page.wait_for_function("document.querySelector('#label-status').textContent.includes('bad')")
    assert current_labels(lake) == {first: 1, second: 0}
    page.wait_for_selector(".ag-row .label.good")
    s.shot("labels")
    # select two rows with their checkboxes and export just those
    for i in (0, 1):
        page.locator(f".ag-row[row-index='{i}'] .ag-selection-checkbox input").first.check()
    assert page.locator("#selection-count").inner_text() == "2 selected"
    with page.expect_download() as got:
        page.click("#export-button")
    lines = Path(got.value.path()).read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted([first, second])
    page.locator(".ag-row[row-index='1'] .ag-cell[col-id='source']").first.click()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/records/{second}*")

    # a row: conversation bubbles, label, neighbours, who used it, evals base vs tuned
    page.wait_for_selector("#conversation .turn.user")
    assert page.locator("#row-label .label.bad").count() == 1
    assert page.locator("#neighbours li").count() == 6
    assert RUN_ID in page.locator("#used-by").inner_text()
    assert "higher" in page.locator("#row-evals").inner_text()
    s.shot("record")

    # search: hits highlight the words; the page says what semantic search covers
    page.goto(f"{url}/records")
    assert "120 of 126" in page.locator("#semantic-coverage").inner_text()
    page.fill("#search-form input[name=q]", "chess fact")
    page.click("#search-button")
    page.wait_for_selector("#hits tbody tr")
    assert "semantic" in page.locator("h2").first.inner_text()
    assert page.locator("#hits mark").first.inner_text().lower() in ("chess", "fact")
    s.shot("search")

    # history fits 1400 px; a diff
    page.goto(f"{url}/history?a=2&b=scored")
    page.wait_for_selector("#diff")
    assert "+80" in page.locator("#diff h2").inner_text()
    assert page.locator("#diff-batches tbody tr").count() == 2  # the chat and instruct batches
    assert "sample_score_v1" in page.locator("#diff-columns").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]
    s.shot("history")

    # evals: the default pair is one metric, counted in its direction
    page.goto(f"{url}/evals")
    page.wait_for_selector("#compare")
    assert "higher is better" in page.locator("#compare h2").inner_text()
    col = f"eval_{RUN_ID}_{SUITE}_{METRIC}"
    base = f"eval_{BASE}_{SUITE}_{METRIC}"
    wins = _n(lake, f'"{col}" > "{base}"')
    assert f"{wins} wins" in page.locator("#compare-summary").inner_text()
    s.shot("evals")

    # mixes, a run, charts, the offline API page
    page.goto(f"{url}/mixes?a=sample-chat@1&b=sample-chat@2")
    page.wait_for_selector("#mixdiff")
    s.shot("mixes")
    page.goto(f"{url}/mixes/sample-chat@2")
    page.wait_for_selector(".example .chat")
    s.shot("mix")
    page.goto(f"{url}/runs/{RUN_ID}")
    page.wait_for_load_state("networkidle")
    assert page.locator("#loss-curve").evaluate("i => i.naturalWidth > 100")
    assert page.locator("#exposures tbody tr").count() == 40  # every row it trained on
    s.shot("run")
    page.goto(f"{url}/charts?where=kind+%3D+%27chat%27")
    page.wait_for_load_state("networkidle")
    assert page.locator("#chart-score").evaluate("i => i.complete && i.naturalWidth > 100")
    s.shot("charts")
    page.goto(f"{url}/api/docs")
    assert page.locator("#endpoints tbody tr").count() > 15

    # roll back, after reading what is lost: rows, columns, the run built on it
    page.goto(f"{url}/history")
    page.click("#rollback-2")
    page.wait_for_selector("#impact")
    assert "eval_r0demo001_chat_rougeL" in page.locator("#columns-lost").inner_text()
    assert RUN_ID in page.locator("#impact-runs").inner_text()
    assert RUN_ID in page.locator("#pinned-after").inner_text()
    s.shot("rollback-confirm")
    before = lake.latest_version()
    page.once("dialog", lambda d: d.accept())
    page.check("#confirm-check")
    page.click("#confirm-button")
    page.wait_for_selector("#result")
    assert lake.latest_version() == before + 1
    assert lake.records().count_rows() == 40
    s.shot("rollback-done")
    s.done()


def test_phone_width_390px(served: tuple[str, Lake], browser: object, tmp_path: Path) -> None:
    url, _ = served
    out = _screenshot_dir(tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    s = Shots(browser, url, PHONE, out)
    page = s.page
    for path, name in (("/records", "phone-records"), ("/history", "phone-history")):
        page.goto(f"{url}{path}")
        if path == "/records":
            page.wait_for_selector(".ag-row[row-index='0'] a")
            page.wait_for_selector(".facet")
        # nothing is cut off: the page is no wider than the screen, the nav fits
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        right = page.evaluate(
            "document.querySelector('nav.top .lakeinfo').getBoundingClientRect().right"
        )
        assert right <= PHONE["width"], path
        s.shot(name)
    page.goto(f"{url}/records")
    page.wait_for_selector(".ag-row[row-index='0'] a")
    page.locator(".ag-row[row-index='0'] .ag-cell[col-id='source']").first.click()
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url("**/records/*?version=*")
    s.done()
