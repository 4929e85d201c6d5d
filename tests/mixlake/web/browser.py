"""The harness of the browser tests: a served sample lake, headless Chromium, screenshots.

`served` starts a real `mixlake serve --allow-writes` on a fresh sample lake (one per test
module, since the curation pass rolls it back); `browser` launches Debian's Chromium through
Playwright; `Shots` opens pages at one viewport and fails on script errors or requests that
leave the server. Screenshots go to a pytest tmp dir and are checked to be real PNGs of the
viewport, so `make test` leaves the tree clean. Set MIXLAKE_SCREENSHOTS to a folder (relative
paths are taken from the repo root) to write them there instead: `make screenshots`
regenerates docs/img/ (used by docs/ui.md) with MIXLAKE_SCREENSHOTS=docs/img, and then a
missing Chromium or Playwright fails rather than skips.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from curation import Lake
from mixlake.web.sample import build_sample_lake
from tests.services import free_port

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[3]
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

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get(SCREENSHOTS_ENV),
    reason=f"{CHROMIUM} missing: `apt-get install -y chromium` (make test does it as root)",
)


def screenshot_dir(tmp_path: Path) -> Path:
    """MIXLAKE_SCREENSHOTS if set (relative to the repo root), else the test's tmp dir."""
    target = os.environ.get(SCREENSHOTS_ENV)
    if not target:
        return tmp_path
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{SCREENSHOTS_ENV} is set but {CHROMIUM} is missing")
    out = Path(target)
    return out if out.is_absolute() else ROOT / out


def assert_png(path: Path, width: int, height: int) -> None:
    """Fail unless `path` is a PNG of `width` x `height` pixels with some content."""
    data = path.read_bytes()
    assert len(data) > 1000, f"{path}: {len(data)} bytes"
    assert data[:8] == PNG_MAGIC, f"{path}: not a PNG"
    assert data[12:16] == b"IHDR", f"{path}: no IHDR chunk"
    assert struct.unpack(">II", data[16:24]) == (width, height), path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Lake]]:
    """`mixlake serve --allow-writes` on a fresh sample lake: (its URL, the lake)."""
    lake = build_sample_lake(tmp_path_factory.mktemp("ui"))
    port = free_port()
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
    """Debian's headless Chromium through Playwright (skips without Playwright)."""
    if os.environ.get(SCREENSHOTS_ENV) and importlib.util.find_spec("playwright") is None:
        pytest.fail(f"{SCREENSHOTS_ENV} is set but playwright is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Shots:
    """Pages at one viewport that fail on script errors or off-server requests.

    Args:
        browser: The Playwright browser.
        url: The server's base URL; a request elsewhere is an error.
        viewport: The page size, `{"width": ..., "height": ...}`.
        out: The folder the named screenshots go to.
    """

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
        """Save the viewport as `<out>/<name>.png`."""
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        self.paths.append(path)

    def done(self) -> None:
        """Fail on any error seen or a screenshot not of the viewport, then close the page."""
        assert not self.errors, self.errors
        for path in self.paths:
            assert_png(path, self.viewport["width"], self.viewport["height"])
        self.page.close()


def grid_ids(page: object, n: int = 5) -> list[str]:
    """The ids of the first `n` rows the grid shows, in order."""
    return page.evaluate(  # type: ignore[attr-defined]
        "n => { const api = window.mixlakeGrid.api; const out = [];"
        " for (let i = 0; i < n; i++) { const r = api.getDisplayedRowAtIndex(i);"
        " if (r && r.data) out.push(r.data.id); } return out; }",
        n,
    )


def shown_count(page: object) -> int:
    """The row count the grid page says it shows."""
    text = page.locator("#count").inner_text()  # type: ignore[attr-defined]
    return int(text.split()[0])


def n_rows(lake: Lake, where: str) -> int:
    """The number of `records` rows matching the SQL predicate `where`."""
    return int(lake.sql(f"SELECT count(*) AS n FROM records WHERE {where}").column("n")[0].as_py())


def drag(page: object, points: list[tuple[float, float]]) -> None:
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


def map_filter_count(page: object, lake: Lake) -> int:
    """Rows inside the map filter the page holds, computed here from the same projection."""
    from mixlake.web.embedmap import selected_ids

    filters = page.evaluate("window.mixlakeGrid.state.filters")  # type: ignore[attr-defined]
    poly = next(f for f in filters if f["column"] == "map")["polygon"]
    return len(selected_ids(lake, lake.latest_version(), tuple(tuple(p) for p in poly)))
