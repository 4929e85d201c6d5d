"""The embedding map and slices in a real browser (Playwright, headless Chromium).

At 1400 px: open the map, recolour it, box-select and lasso (the grid count, the map's
selection and the facets agree with the projection), click a category's null value, save a
filter as a slice, check it as a mix and materialize it. At 390 px: the map fits the screen
and a box still filters the grid.
"""

from __future__ import annotations

from pathlib import Path

from curation import Lake
from tests.mixlake.web.browser import (
    PHONE,
    WIDE,
    Shots,
    drag,
    map_filter_count,
    needs_chromium,
    screenshot_dir,
)

pytestmark = needs_chromium


def test_map_select_and_slice_to_mix_at_1400px(
    served: tuple[str, Lake], browser: object, tmp_path: Path
) -> None:
    from queries import open_mix

    url, lake = served
    out = screenshot_dir(tmp_path)
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
    drag(page, [(0.5, 0.02), (0.75, 0.5), (0.99, 0.7)])
    page.wait_for_function("location.search.includes('lasso')")
    want = map_filter_count(page, lake)
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
    drag(page, [(0.1, 0.1), (0.6, 0.1), (0.6, 0.9), (0.1, 0.9), (0.1, 0.12)])
    page.wait_for_function(f"!document.querySelector('#count').textContent.startsWith('{want} ')")
    lassoed = map_filter_count(page, lake)
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
    drag(page, [(0.02, 0.02), (0.5, 0.5), (0.98, 0.6)])
    page.wait_for_function("location.search.includes('lasso')")
    want = map_filter_count(page, lake)
    page.wait_for_function(f"document.querySelector('#count').textContent.startsWith('{want} ')")
    phone.shot("phone-map")
    phone.done()
