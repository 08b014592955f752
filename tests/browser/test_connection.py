"""A server that goes away and comes back, in a real browser (static/js/connection.js): every request that
gets no answer shows a banner fixed at the top of the viewport, "refused" is never said of it, the page
retries on its own, and once the server answers again the banner clears and the GETs that failed are sent
again (the search typed meanwhile, the next page, the modal asked for); writes are not.

The live server is stopped and started again on the same port and database (tests/support.py LiveServer)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PageWatch, screenshot

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LLAMAS = ["meta-llama/Llama-2-7b-hf", "meta-llama/Meta-Llama-3-8B", "TinyLlama/TinyLlama-1.1B-Chat"]
LOST = "Can't reach modelhub — retrying"
BACK_WITHIN_MS = 25_000  # the retries back off to one every 10 s; the server takes a few seconds to start


@pytest.fixture
def models(registry):
    """63 models: a first page of 50 cards and a "load more" for the rest; three llamas among them."""
    for number in range(60):
        registry.add(model_name=f"org/model-{number:03d}", compatibility_status="compatible")
    for name in LLAMAS:
        registry.add(model_name=name, compatibility_status="compatible")


@pytest.fixture
def open_page(browser, server):
    """A page at a viewport; each one fails the test on an uncaught script error."""
    opened = []

    def open_at(viewport):
        context = browser.new_context(viewport=viewport, base_url=server.url)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.watch = PageWatch(page)
        opened.append((context, page))
        return page

    yield open_at
    for context, page in opened:
        context.close()
        assert not page.watch.errors, f"uncaught script errors: {page.watch.errors}"


def banner(page):
    return page.locator("#connection-banner")


def at_the_top_of_the_viewport(locator) -> None:
    box = locator.bounding_box()
    assert box is not None and box["y"] == 0 and box["height"] > 0, box


def cards(page):
    return page.locator("#model-list .model-card")


def names(page):
    return page.locator("#model-list .model-name")


def test_a_lost_connection_says_so_and_the_page_catches_up_when_it_is_back(open_page, server, models):
    page = open_page(DESKTOP)
    page.goto("/")
    expect(cards(page)).to_have_count(50)
    expect(banner(page)).to_be_hidden()
    server.stop()

    # Scrolled to the end: the next page is asked for and gets no answer; the banner is in sight.
    page.locator(".load-more").scroll_into_view_if_needed()
    expect(banner(page)).to_contain_text(LOST)
    assert page.evaluate("window.scrollY") > 500
    at_the_top_of_the_viewport(banner(page))
    expect(banner(page)).to_have_attribute("role", "status")
    screenshot(page, "connection-lost-scrolled-1280", full_page=False)

    # A search: the list is marked as old, and no "refused" anywhere.
    page.fill("#filter-q", "llama")
    expect(page.locator("#model-results")).to_have_class(re.compile(r"\bconnection-stale\b"))
    expect(banner(page)).to_contain_text("Showing results from before the connection was lost")
    expect(cards(page)).to_have_count(50)
    expect(page.locator("#flash")).to_be_hidden()
    assert "refused" not in page.locator("body").inner_text()

    # A name: the modal cannot open, and the banner says it will.
    page.locator('.model-name[data-model-name="meta-llama/Meta-Llama-3-8B"]').click()
    expect(banner(page)).to_contain_text("Opens meta-llama/Meta-Llama-3-8B once connected")
    expect(page.locator("#model-modal")).not_to_have_attribute("open", "")
    screenshot(page, "connection-lost-stale-list-1280", full_page=False)

    server.start()
    # Back on its own: the search typed meanwhile is the list now (and the address), the modal opens.
    expect(names(page)).to_have_text(sorted(LLAMAS, key=str.lower), timeout=BACK_WITHIN_MS)
    expect(page).to_have_url(re.compile(r"q=llama"))
    expect(page.locator("#model-results")).not_to_have_class(re.compile(r"\bconnection-stale\b"))
    expect(page.locator("#model-modal")).to_have_attribute("open", "")
    expect(page.locator("#modal-title")).to_have_text("meta-llama/Meta-Llama-3-8B")
    expect(banner(page)).to_be_hidden()
    page.keyboard.press("Escape")
    expect(page.locator("#model-modal")).not_to_have_attribute("open", "")
    expect(page.locator("#flash")).to_be_hidden()


def test_the_next_page_that_failed_is_loaded_once_the_server_answers(open_page, server, models):
    page = open_page(DESKTOP)
    page.goto("/")
    expect(cards(page)).to_have_count(50)
    server.stop()
    page.locator(".load-more").scroll_into_view_if_needed()
    expect(banner(page)).to_contain_text(LOST)
    expect(page.locator(".load-more")).to_have_class(re.compile(r"\bconnection-stale\b"))
    page.locator("[data-connection-retry]").click()  # at once, not at the next retry: still nobody there
    expect(banner(page)).to_contain_text(LOST)
    server.start()
    expect(cards(page)).to_have_count(63, timeout=BACK_WITHIN_MS)
    expect(banner(page)).to_be_hidden()


def test_on_a_phone_writes_are_not_resent_and_the_modal_opens_after(open_page, server, models):
    page = open_page(PHONE)
    page.goto("/")
    expect(cards(page)).to_have_count(50)
    server.stop()

    card = page.locator(".model-card", has=page.locator('.model-name[data-model-name="org/model-003"]'))
    card.get_by_role("button", name="Load").click()
    expect(banner(page)).to_contain_text(LOST)
    expect(banner(page)).to_contain_text("Not sent: “Load”. Do it again once connected.")
    card.locator(".model-name").click()
    expect(banner(page)).to_contain_text("Opens org/model-003 once connected")
    at_the_top_of_the_viewport(banner(page))
    box = banner(page).bounding_box()
    assert box["width"] == PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("#flash")).to_be_hidden()
    screenshot(page, "connection-lost-390", full_page=False)

    writes = len(page.watch.writes())
    server.start()
    expect(page.locator("#modal-title")).to_have_text("org/model-003", timeout=BACK_WITHIN_MS)
    expect(banner(page)).to_be_hidden()
    page.wait_for_timeout(500)
    assert len(page.watch.writes()) == writes  # the Load was not sent again
    assert card.locator(".load-controls").get_attribute("data-load-state") != "loading"


def test_a_save_without_the_server_keeps_the_edits_and_shows_the_banner_over_the_modal(open_page, server, registry, models):
    page = open_page(DESKTOP)
    page.goto("/")
    page.locator('.model-name[data-model-name="meta-llama/Llama-2-7b-hf"]').click()
    expect(page.locator("#model-modal")).to_have_attribute("open", "")
    server.stop()

    page.fill("#field-compatibility_notes", "Needs 14 GB in bf16.")
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-form .form-banner")).to_contain_text("Could not reach the server")
    expect(page.locator("#model-form .form-banner")).to_contain_text("Your edits are still here")
    expect(banner(page)).to_contain_text(LOST)
    at_the_top_of_the_viewport(banner(page))
    assert page.evaluate("document.elementFromPoint(640, 5).closest('#connection-banner') !== null")  # not under the backdrop
    expect(page.locator("#field-compatibility_notes")).to_have_value("Needs 14 GB in bf16.")
    screenshot(page, "connection-lost-modal-1280", full_page=False)

    server.start()
    expect(banner(page)).to_be_hidden(timeout=BACK_WITHIN_MS)
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).not_to_have_attribute("open", "")
    assert registry.row("meta-llama/Llama-2-7b-hf")["compatibility_notes"] == "Needs 14 GB in bf16."
    expect(banner(page)).to_be_hidden()


def test_a_real_refusal_still_says_refused_and_shows_no_banner(open_page, server, models):
    """A 4xx answer is a refusal (the flash above the page), not a lost connection."""
    page = open_page(DESKTOP)
    page.goto("/")
    page.route("**/models/org/model-001/load", lambda route: route.fulfill(
        status=403, content_type="text/html", body="<p>Cross-site request refused.</p>"))
    card = page.locator(".model-card", has=page.locator('.model-name[data-model-name="org/model-001"]'))
    card.get_by_role("button", name="Load").click()
    expect(page.locator("#flash")).to_have_text("Cross-site request refused.")
    expect(banner(page)).to_be_hidden()
