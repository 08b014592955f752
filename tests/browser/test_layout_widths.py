"""The page at a desktop's and a phone's width with the longest names and notes a user can type: nothing scrolls
sideways, cards and badges fit, the full note stays reachable, the phone's header and filters fit, and the
modal on a phone is a full-screen sheet whose Save/Cancel bar is always on screen."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, watched_page

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WIDTHS = [pytest.param(DESKTOP, id="1280"), pytest.param(PHONE, id="390")]

# A 120-character name without a break point, one of many short segments, and several KB of notes.
UNBROKEN = "org/" + "ThisModelNameHasNoHyphensAndGoesOnAndOnForeverAndEver" * 3
UNBROKEN = UNBROKEN[:120]
SEGMENTED = "org/" + "-".join(["seg"] * 40)
NOTES = ("CreateContext fails on first load with CUDA_ERROR_OUT_OF_MEMORY, works on retry after "
         "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True; " * 60).strip()
LONG_WORD_NOTES = "x" * 3000


@pytest.fixture
def long_models(registry):
    registry.add(model_name=UNBROKEN, compatibility_status="degraded", compatibility_notes=NOTES,
                 mmlu_score=72.5, humaneval_score=45.2, max_throughput_tokens_sec=38.7, quantization="GGUF Q4_K_M")
    registry.add(model_name=SEGMENTED, compatibility_status="incompatible", compatibility_notes=LONG_WORD_NOTES)
    registry.add(model_name="microsoft/phi-2", compatibility_status="compatible", mmlu_score=56.7)


def no_sideways_scroll(page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window: {widest(page)}"


def widest(page) -> list:
    """The innermost elements that end past the window's right edge (what makes the page scroll sideways)."""
    return page.evaluate("""() => [...document.querySelectorAll("body *")]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
        .filter((el) => ![...el.children].some((c) => c.getBoundingClientRect().right > window.innerWidth + 0.5))
        .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${Math.round(el.getBoundingClientRect().right)}px`)
        .slice(0, 8)""")


def right_edges_inside(page, selector: str) -> None:
    """Every element matching selector ends inside the window."""
    outside = page.evaluate("""(selector) => [...document.querySelectorAll(selector)]
        .map((el) => [el.className, el.textContent.trim().slice(0, 40), el.getBoundingClientRect().right])
        .filter(([, , right]) => right > window.innerWidth + 0.5)""", selector)
    assert not outside, f"past the window's right edge: {outside}"


def nothing_clipped(page, selector: str) -> None:
    """No element matching selector hides part of its text (its content is no wider than its box)."""
    clipped = page.evaluate("""(selector) => [...document.querySelectorAll(selector)]
        .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.textContent.trim())""", selector)
    assert not clipped, f"cut off: {clipped}"


@pytest.mark.parametrize("viewport", [*WIDTHS, pytest.param({"width": 360, "height": 740}, id="360")])
def test_models_page_never_scrolls_sideways(browser, server, long_models, viewport):
    with watched_page(browser, server.url, **viewport) as page:
        page.goto("/")
        expect(page.locator(".model-card")).to_have_count(3)
        no_sideways_scroll(page)
        right_edges_inside(page, ".model-card, .model-card .model-name, .badge, .model-notes, .topbar, .tab, "
                                 ".filters label, .filters input, .filters select, .filters summary")
        nothing_clipped(page, ".badge")
        # A name without break points wraps inside its card instead of overflowing it.
        name = page.locator(f'.model-name[data-model-name="{UNBROKEN}"]')
        assert name.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1")
        assert name.evaluate("(el) => el.getBoundingClientRect().height") > 30  # more than one line
        # The notes show at most three lines, ending in an ellipsis, and the whole text on hover/focus.
        notes = page.locator(".model-card", has=name).locator(".model-notes")
        line = float(notes.evaluate("(el) => parseFloat(getComputedStyle(el).lineHeight)"))
        assert notes.evaluate("(el) => el.getBoundingClientRect().height") <= 3 * line + 2
        assert notes.evaluate("(el) => getComputedStyle(el).textOverflow") == "ellipsis"
        assert notes.get_attribute("title") == NOTES
        assert notes.get_attribute("tabindex") == "0"  # focusable, so the title is reachable from the keyboard
        screenshot(page, f"layout-models-{viewport['width']}")


@pytest.mark.parametrize("viewport", WIDTHS)
@pytest.mark.parametrize("path", ["/compare", "/exchange"])
def test_other_pages_never_scroll_sideways(browser, server, long_models, viewport, path):
    with watched_page(browser, server.url, **viewport) as page:
        page.goto(path)
        no_sideways_scroll(page)
        right_edges_inside(page, ".topbar, .tab, main > *")
        screenshot(page, f"layout{path.replace('/', '-')}-{viewport['width']}")


def test_phone_header_and_filters_fit(browser, server, long_models):
    with watched_page(browser, server.url, **PHONE) as page:
        page.goto("/")
        # The tabs sit on one line, each tab on one line ("Import / Export" does not wrap).
        tabs = page.locator(".topbar .tab")
        tops = {round(box["y"]) for box in (tabs.nth(i).bounding_box() for i in range(tabs.count()))}
        assert len(tops) == 1, f"the tabs are on {len(tops)} lines"
        exchange = page.get_by_role("link", name="Import / Export")
        line = float(exchange.evaluate("(el) => parseFloat(getComputedStyle(el).lineHeight) || 20"))
        assert exchange.bounding_box()["height"] < 2 * line
        # The filters fold behind one "Filters" button, which works without script.
        toggle = page.locator(".filters-toggle > summary")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_text("Filters")
        expect(page.get_by_label("Status")).to_be_hidden()
        toggle.click()
        # Each label sits beside its control, on the same line.
        for control in ("Search", "Status", "Sort by"):
            label = page.locator(".filters label", has_text=control).bounding_box()
            field = page.get_by_label(control).bounding_box()
            assert abs((label["y"] + label["height"] / 2) - (field["y"] + field["height"] / 2)) < field["height"] / 2, control
        no_sideways_scroll(page)
        right_edges_inside(page, ".filters label, .filters input, .filters select")
        screenshot(page, "layout-phone-filters-open", full_page=False)
        # Filtering from the folded form still works.
        page.get_by_label("Status").select_option("incompatible")
        expect(page.locator(".model-card")).to_have_count(1)


def test_desktop_filters_stay_open(browser, server, long_models):
    with watched_page(browser, server.url, **DESKTOP) as page:
        page.goto("/")
        expect(page.locator(".filters-toggle > summary")).to_have_count(1)  # the fold is there, its button hidden
        expect(page.locator(".filters-toggle > summary")).to_be_hidden()
        expect(page.get_by_label("Search")).to_be_visible()
        expect(page.get_by_label("Status")).to_be_visible()
        expect(page.get_by_label("Sort by")).to_be_visible()


def save_bar_on_screen(page) -> None:
    for name in ("Save All Changes", "Cancel"):
        box = page.locator("#model-modal").get_by_role("button", name=name, exact=True).bounding_box()
        assert box is not None, name
        assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], f"{name} is at y={box['y']}"
        assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], f"{name} is at x={box['x']}"


def test_phone_modal_is_a_full_screen_sheet_with_its_save_bar_on_screen(browser, server, long_models):
    with watched_page(browser, server.url, **PHONE) as page:
        page.goto("/")
        page.locator(f'.model-name[data-model-name="{UNBROKEN}"]').click()
        dialog = page.locator("#model-modal")
        expect(dialog.locator("#modal-title")).to_have_text(UNBROKEN)
        box = dialog.bounding_box()
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, PHONE["width"], PHONE["height"])
        save_bar_on_screen(page)
        screenshot(page, "layout-phone-modal-top", full_page=False)

        # Scrolled to its end: the bar is still there, nothing scrolls sideways inside the sheet.
        scroller = page.locator("#model-modal")
        scroller.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
        assert scroller.evaluate("(el) => el.scrollTop") > 0  # the sheet's body does scroll
        save_bar_on_screen(page)
        assert scroller.evaluate("(el) => el.scrollWidth <= el.clientWidth"), widest(page)
        no_sideways_scroll(page)
        screenshot(page, "layout-phone-modal-end", full_page=False)


def test_desktop_modal_stays_a_centred_dialog(browser, server, long_models):
    with watched_page(browser, server.url, **DESKTOP) as page:
        page.goto("/")
        page.locator('.model-name[data-model-name="microsoft/phi-2"]').click()
        dialog = page.locator("#model-modal")
        expect(dialog.locator("#modal-title")).to_have_text("microsoft/phi-2")
        box = dialog.bounding_box()
        assert box["width"] <= 760 and box["x"] > 200
        assert box["height"] < DESKTOP["height"]
        button = dialog.get_by_role("button", name="Save All Changes").bounding_box()
        assert button["y"] + button["height"] <= DESKTOP["height"]
        screenshot(page, "layout-desktop-modal", full_page=False)
