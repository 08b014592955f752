"""The Compare tab in a real browser: the table sorts by its headers without a reload, its header row stays
at the top of the window and its model column stays while it scrolls sideways; the chart fills its panel,
labels its dots with full names that never overlap, and a dot or a name opens the model's details."""

import random

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, watched_page

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WIDTHS = [pytest.param(DESKTOP, id="1280"), pytest.param(PHONE, id="390")]

MODELS = [
    ("microsoft/phi-2", "degraded", 56.7, 48.0, "None"),
    ("microsoft/Phi-3-mini-4k-instruct", "compatible", 68.8, 35.5, "GGUF Q4_K_M"),
    ("gpt2", "compatible", 26.0, 310.0, None),
    ("Qwen/Qwen2.5-0.5B", "incompatible", 47.5, 150.0, None),
    ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "testing", 25.3, 220.0, "AWQ"),
    ("meta-llama/Llama-3.2-1B", "unknown", 49.3, 120.0, None),
]


@pytest.fixture
def models(registry):
    for name, status, mmlu, throughput, quantization in MODELS:
        registry.add(model_name=name, compatibility_status=status, mmlu_score=mmlu, max_throughput_tokens_sec=throughput,
                     quantization=quantization, gpqa_score=round(mmlu / 2, 1), avg_latency_ms=throughput / 3)
    registry.add(model_name="org/no-scores-yet")


def realistic_models(count: int = 200) -> list[dict]:
    """COUNT models as a collector's registry holds them: a few organisations' fine-tunes and quantized
    re-uploads of the same bases (two orgs' "Mistral-7B-code-ft-…" side by side), scores crowded in one
    band, some without a throughput (so not on the chart) or without any score."""
    rng = random.Random(16)
    orgs = ["TheBloke", "bartowski", "mistralai", "meta-llama", "Qwen", "NousResearch", "microsoft", "google",
            "teknium", "lmstudio-community", "unsloth", "HuggingFaceH4"]
    bases = ["Mistral-7B-code-ft", "Llama-3.1-8B-Instruct", "Qwen2.5-7B-Instruct", "Phi-3-mini-4k-instruct",
             "gemma-2-9b-it", "OpenHermes-2.5-Mistral-7B", "zephyr-7b-beta", "Hermes-3-Llama-3.1-8B"]
    quants = [None, "GGUF Q4_K_M", "GGUF Q8_0", "GPTQ 4-bit", "AWQ", "bf16"]
    statuses = ["compatible"] * 5 + ["degraded", "incompatible", "testing", "unknown", "unknown"]
    models = []
    for i in range(count):
        quant = rng.choice(quants)
        suffix = f"-{quant.split()[-1]}" if quant else ""
        model = {"model_name": f"{rng.choice(orgs)}/{rng.choice(bases)}-v{i // 8}.{i % 8}{suffix}",
                 "compatibility_status": rng.choice(statuses), "quantization": quant}
        if i % 10 != 9:  # one in ten has no scores yet
            model.update(mmlu_score=round(rng.uniform(55, 70), 1), gpqa_score=round(rng.uniform(20, 40), 1),
                         hellaswag_score=round(rng.uniform(70, 85), 1), humaneval_score=round(rng.uniform(20, 60), 1),
                         avg_latency_ms=round(rng.uniform(40, 400)))
            if i % 10 != 8:  # and one in ten a score but no throughput
                model["max_throughput_tokens_sec"] = round(rng.uniform(20, 90), 1)
        models.append(model)
    return models


@pytest.fixture
def many_models(registry):
    models = realistic_models()
    for model in models:
        registry.add(**model)
    return models


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found, f"{locator} is not shown"
    return found


# ---- sorting (a few models) -----------------------------------------------------------------------

def test_compare_tab_sorts_by_header_and_charts_every_model(page, models):
    page.goto("/")
    page.get_by_role("link", name="Compare").click()
    expect(page).to_have_url(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/compare")
    expect(page.locator('.tab[aria-current="page"]')).to_have_text("Compare")
    page.evaluate("window.__sameDocument = true")

    names = page.locator(".compare-name")
    expect(names).to_have_count(7)
    expect(names.first).to_have_text("gpt2")
    expect(page.locator("[data-compare-head] th").first).to_contain_text("Model▲")  # sorted by name, A-Z
    mmlu = page.locator("thead a", has_text="MMLU")
    mmlu.click()
    expect(names.first).to_have_text("microsoft/Phi-3-mini-4k-instruct")
    assert "sort=-mmlu_score" in page.url
    # The direction shows in the header: the arrow, words for a screen reader, aria-sort on the table's own header.
    expect(mmlu).to_have_text("MMLU▼, sorted highest first")
    expect(page.locator(".compare-body-table thead th", has_text="MMLU")).to_have_attribute("aria-sort", "descending")
    expect(page.locator("[data-compare-head] th").first).not_to_contain_text("▲")
    expect(mmlu).to_be_focused()  # a keyboard user stays on the header they used
    mmlu.click()
    expect(names.first).to_have_text("TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    expect(mmlu).to_have_text("MMLU▲, sorted lowest first")
    expect(names.last).to_have_text("org/no-scores-yet")  # empty values last either way
    assert page.evaluate("window.__sameDocument") is True  # never a full page load

    points = page.locator("svg.chart circle.point")
    expect(points).to_have_count(6)
    gpt2 = page.locator("svg.chart .point-link", has=page.locator("title", has_text="gpt2 ·"))
    expect(gpt2.locator("title")).to_have_text("gpt2 · MMLU 26 · 310 tok/s · compatible")
    gpt2.hover()
    screenshot(page, "compare-page")

    page.select_option("#chart-x", "gpqa_score")
    expect(page.locator("svg.chart .axis-title").first).to_have_text("GPQA score")
    expect(points).to_have_count(6)
    assert "x=gpqa_score" in page.url and "sort=mmlu_score" in page.url  # the sort survives
    page.select_option("#filter-status", "compatible")
    expect(points).to_have_count(2)
    expect(names).to_have_count(2)
    assert page.evaluate("window.__sameDocument") is True


def test_empty_chart_state(page, registry):
    registry.add(model_name="org/only-mmlu", mmlu_score=50.0)
    page.goto("/compare")
    expect(page.locator(".chart-empty")).to_have_text("No model has both MMLU and a throughput yet.")
    expect(page.locator(".compare-name")).to_have_text(["org/only-mmlu"])


# ---- 200 models -------------------------------------------------------------------------------------

@pytest.mark.parametrize("viewport", WIDTHS)
def test_header_row_and_model_column_stay_in_view(browser, server, many_models, viewport):
    with watched_page(browser, server.url, **viewport) as page:
        page.goto("/compare?sort=-mmlu_score")
        rows = page.locator(".compare-body-table tbody tr")
        expect(rows).to_have_count(100)
        head = page.locator("[data-compare-head]")
        scroller = page.locator("[data-table-scroll]")
        # Before any scroll the copy lies exactly over the table's own header row.
        own_head = page.locator(".compare-body-table thead")
        assert abs(box(head.locator("table"))["y"] - box(own_head)["y"]) < 1
        assert abs(box(head.locator("table"))["height"] - box(own_head)["height"]) < 1

        # Scrolled down the page to the 60th row: the header row is at the top of the window.
        rows.nth(60).scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, 200)")
        assert page.evaluate("window.scrollY") > 1500
        assert abs(box(head)["y"]) < 1
        mmlu_head = head.locator("a", has_text="MMLU")
        centre = box(mmlu_head)
        top_element = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('[data-compare-head]') !== null",
                                    [centre["x"] + centre["width"] / 2, centre["y"] + centre["height"] / 2])
        assert top_element, "the header row is covered"
        screenshot(page, f"compare-sticky-header-{viewport['width']}", full_page=False)

        # Scrolled sideways inside its box: the names stay at the box's left edge, and the header follows.
        shift = page.evaluate("(() => { const s = document.querySelector('[data-table-scroll]'); "
                              "s.scrollLeft = s.scrollWidth; return s.scrollLeft; })()")
        assert shift > 100, "the table fits: nothing to scroll sideways"
        expect(head).to_have_js_property("scrollLeft", shift)
        left = box(scroller)["x"]
        name_cell = rows.nth(61).locator("th")
        assert abs(box(name_cell)["x"] - (left + 1)) < 1.5
        name_x = box(name_cell)["x"] + 5
        name_y = box(name_cell)["y"] + 5
        hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('th.model-cell') !== null", [name_x, name_y])
        assert hit, "the model column is covered by the values scrolled under it"
        # Every header cell still sits over its column.
        for column in (2, 6, 11):
            head_cell, body_cell = box(head.locator("th").nth(column)), box(rows.nth(61).locator("th, td").nth(column))
            assert abs(head_cell["x"] - body_cell["x"]) < 1 and abs(head_cell["width"] - body_cell["width"]) < 1
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, f"compare-sticky-column-{viewport['width']}", full_page=False)


@pytest.mark.parametrize("viewport", WIDTHS)
def test_chart_fills_its_panel_with_full_names_that_never_overlap(browser, server, many_models, viewport):
    with watched_page(browser, server.url, **viewport) as page:
        page.goto("/compare")
        chart = page.locator(".chart-frame > svg:visible")
        expect(chart).to_have_count(1)
        expect(chart.locator("circle.point")).to_have_count(sum("max_throughput_tokens_sec" in m for m in many_models))
        panel = page.evaluate("(() => { const f = document.querySelector('.chart-frame'); return f.clientWidth; })()")
        chart_box = box(chart)
        wide = viewport["width"] > 600
        if wide:
            assert abs(chart_box["width"] - panel) < 2 and chart_box["width"] > 1100  # not 600 px beside nothing
        else:
            assert chart_box["width"] > viewport["width"] - 60
        assert 250 <= chart_box["height"] <= 620

        labels = chart.locator(".point-label")
        boxes = labels.evaluate_all("(els) => els.map((el) => { const r = el.getBoundingClientRect(); "
                                    "return [el.textContent, r.left, r.top, r.right, r.bottom]; })")
        screenshot(page, f"compare-chart-{viewport['width']}", full_page=False)
        if wide:  # on a phone the crowd leaves no room for a name: none is drawn over the dots
            assert len(boxes) >= 10, f"only {len(boxes)} labels"
        names = {m["model_name"] for m in many_models}
        assert all(text in names for text, *_ in boxes)  # full names, organisation included
        for i, (text_a, *a) in enumerate(boxes):
            for text_b, *b in boxes[i + 1:]:
                overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                assert not overlap, f"{text_a!r} overlaps {text_b!r}"
            assert chart_box["x"] - 1 <= a[0] and a[2] <= chart_box["x"] + chart_box["width"] + 1
        text_height = min((bottom - top for _, _, top, _, bottom in boxes), default=11)
        assert text_height >= 9, "labels too small to read"

        # An unlabelled dot names its model on hover, and on keyboard focus.
        unlabelled = chart.locator(".point-link:not(:has(.point-label))")
        first, second = unlabelled.nth(0), unlabelled.nth(40)
        first.hover()
        callout = chart.locator(".chart-callout")
        expect(callout).to_have_attribute("visibility", "visible")
        expect(callout).to_have_text(first.get_attribute("data-model-name"))
        second.focus()
        expect(callout).to_have_text(second.get_attribute("data-model-name"))
        screenshot(page, f"compare-chart-{viewport['width']}", full_page=False)


@pytest.mark.parametrize("viewport", WIDTHS)
def test_a_dot_and_a_name_open_the_models_details(browser, server, many_models, viewport):
    with watched_page(browser, server.url, **viewport) as page:
        page.goto("/compare?sort=-mmlu_score")
        dialog = page.locator("#model-modal")
        chart = page.locator(".chart-frame > svg:visible")

        # A labelled dot, clicked on its label.
        labelled = chart.locator(".point-link:has(.point-label)").first
        name = labelled.get_attribute("data-model-name")
        labelled.locator(".point-label").click()
        expect(dialog).to_be_visible()
        expect(page.locator("#model-form")).to_have_attribute("data-model-name", name)
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(labelled).to_be_focused()  # back on the dot, not scrolled away to the table

        # An unlabelled dot, by keyboard.
        point = chart.locator(".point-link:not(:has(.point-label))").nth(10)
        name = point.get_attribute("data-model-name")
        point.focus()
        page.keyboard.press("Enter")
        expect(dialog).to_be_visible()
        expect(page.locator("#model-form")).to_have_attribute("data-model-name", name)
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

        # A name in the table: the details, not a filtered Models page.
        row_name = page.locator(".compare-name").nth(30)
        name = row_name.inner_text()
        row_name.click()
        expect(dialog).to_be_visible()
        expect(page.locator("#model-form")).to_have_attribute("data-model-name", name)
        assert page.url.endswith("/compare?sort=-mmlu_score")
        # Shot last: Playwright's screenshot leaves style="" on the form's fields (hiding the caret), which
        # htmx would copy onto the next form it swaps in, a CSP violation no user can cause.
        screenshot(page, f"compare-modal-{viewport['width']}", full_page=False)
        page.keyboard.press("Escape")
        expect(row_name).to_be_focused()


def test_a_save_in_the_details_shows_in_the_row_and_the_chart(page, many_models):
    page.goto("/compare?sort=-mmlu_score")
    page.evaluate("window.__sameDocument = true")
    row = page.locator('.compare-row:has(td.value[data-field="max_throughput_tokens_sec"])').nth(5)  # on the chart
    name = row.get_attribute("data-model-name")
    page.evaluate("document.querySelector('[data-table-scroll]').scrollLeft = 200")
    row.locator(".compare-name").click()
    expect(page.locator("#model-modal")).to_be_visible()
    metrics = page.locator("details.metrics")
    if metrics.get_attribute("open") is None:
        metrics.locator("summary").click()
    page.fill("#field-mmlu_score", "99.5")
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).to_be_hidden()
    # Now the best MMLU: the first row, its value marked typed, and its dot at the right edge of the chart.
    first = page.locator(".compare-row").first
    expect(first).to_have_attribute("data-model-name", name)
    expect(first.locator('td[data-field="mmlu_score"]')).to_have_text("99.5T")
    expect(page.locator("svg.chart title", has_text=f"{name} · MMLU 99.5")).to_have_count(1)
    expect(page.locator(f'.compare-name[data-model-name="{name}"]')).to_be_focused()
    assert page.evaluate("document.querySelector('[data-table-scroll]').scrollLeft") == 200  # the place is kept
    assert page.evaluate("window.__sameDocument") is True


def test_load_from_the_details_on_this_page_is_sent_and_said(page, many_models):
    """The modal's Load answers a Models-page card, which this page has not: it is sent all the same, the
    toast says it started, and the row shows the model being tested."""
    page.goto("/compare?sort=-mmlu_score")
    row = page.locator(".compare-row").nth(3)
    name = row.get_attribute("data-model-name")
    row.locator(".compare-name").click()
    expect(page.locator("#model-modal")).to_be_visible()
    page.locator("#model-form .load-controls").get_by_role("button", name="Load").click()
    expect(page.locator("#model-modal")).to_be_hidden()
    expect(page.locator("#toast")).to_have_text(f"Loading {name}…")
    expect(page.locator(f'.compare-row[data-model-name="{name}"] .status-badge')).to_have_text("testing")
    assert ("POST", f"{page.url.split('/compare')[0]}/models/{name}/load") in page.watch.writes()


# The form's request leaves the search box when a header is clicked (its "change" on blur), still with the
# old sort: held back here, so that it would answer after the header's, unless the header's replaced it.
HOLD_BACK_OLD_SORT = """() => {
  const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) { this.__url = String(url); return open.call(this, method, url, ...rest); };
  XMLHttpRequest.prototype.send = function (body) {
    if (!this.__url.includes("/compare") || this.__url.includes("mmlu_score")) return send.call(this, body);
    setTimeout(() => { try { send.call(this, body); } catch (e) { /* aborted meanwhile */ } }, 700);
  };
}"""


def test_a_header_clicked_straight_after_a_search_sorts_the_searched_list(page, models):
    page.goto("/compare")
    names = page.locator(".compare-name")
    expect(names).to_have_count(7)
    page.evaluate(HOLD_BACK_OLD_SORT)
    page.locator("#filter-q").fill("i")  # the form's request on input is held back too
    page.locator("thead a", has_text="MMLU").click()  # blur: the form's "change" request, then the header's
    expect(page.locator("thead a", has_text="MMLU")).to_have_text("MMLU▼, sorted highest first")
    page.wait_for_timeout(1500)  # every held-back request would have answered by now
    assert "sort=-mmlu_score" in page.url and "q=i" in page.url
    expect(page.locator("thead a", has_text="MMLU")).to_have_text("MMLU▼, sorted highest first")
    expect(page.locator("#filter-q")).to_have_value("i")
    searched = [name for name, *_ in sorted(MODELS, key=lambda model: -model[2]) if "i" in name.lower()]
    expect(names).to_have_text(searched)  # the search typed, sorted by the header
