"""A curator's pass in a real browser: Playwright drives headless Chromium against `mixlake serve`.

At 1400 px: sort the grid by a score, click and brush facets, choose columns, label rows with
the keyboard, export ticked rows, read a row, search, diff versions, compare evals in the
metric's direction, look at mixes and runs, and roll back after reading the preview. At
390 px: nothing is wider than the screen and the keyboard still navigates. Every request the
pages make must go to the server itself (the UI works offline).
"""

from __future__ import annotations

import json
from pathlib import Path

from curation import Lake
from mixlake.web.sample import BASE, METRIC, RUN_ID, SUITE
from tests.mixlake.web.browser import (
    PHONE,
    WIDE,
    Shots,
    grid_ids,
    n_rows,
    needs_chromium,
    screenshot_dir,
    shown_count,
)

pytestmark = needs_chromium


def test_curation_pass_at_1400px(served: tuple[str, Lake], browser: object, tmp_path: Path) -> None:
    from curation.labels import current_labels

    url, lake = served
    out = screenshot_dir(tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    s = Shots(browser, url, WIDE, out)
    page = s.page

    # the grid: every row, sorted on the server by clicking a header
    page.goto(f"{url}/records")
    page.wait_for_selector(".ag-row[row-index='0'] a")
    assert shown_count(page) == 126
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
    assert grid_ids(page)[:5] == want.to_pylist()
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
    want_n = n_rows(lake, f"source = 'chat' AND sample_score_v1 >= {lo}")
    page.wait_for_function(f"document.querySelector('#count').textContent.startsWith('{want_n} ')")
    assert "filters=" in page.url
    s.shot("facets")

    # label with the keyboard: j moves, 1 = good, 2 = bad (each saves and moves on)
    page.locator(".ag-row[row-index='0'] .ag-cell[col-id='source']").first.click()
    first = grid_ids(page)[0]
    second = grid_ids(page)[1]
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
    wins = n_rows(lake, f'"{col}" > "{base}"')
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
    out = screenshot_dir(tmp_path)
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
