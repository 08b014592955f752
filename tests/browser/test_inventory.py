"""The Models page as an inventory of 200 realistic models in real Chromium: both views (cards and table) at a
desktop's and a phone's width with screenshots, the totals, the view remembered across a reload without the
address saying it, filters and sorts of the inventory, and the keyboard (/, arrows, Enter)."""

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from playwright.sync_api import expect

from modelhub import display
from tests import inventory_models
from tests.browser.conftest import screenshot, watched_page
from tests.browser.test_layout_widths import DESKTOP, PHONE, WIDTHS, no_sideways_scroll

pytestmark = pytest.mark.slow


LLAMA = "meta-llama/Llama-3.1-8B-Instruct"  # in the HF cache (bf16 safetensors), loaded on gpu-box


@pytest.fixture
def inventory(server):
    inventory_models.seed_url(server.database_url, 200)
    return server


def largest_on_disk() -> int:
    sizes = {}
    for copy in inventory_models.rows(200)[1]:
        if not copy["missing"]:
            sizes[copy["model_id"]] = sizes.get(copy["model_id"], 0) + copy["size_bytes"]
    return max(sizes.values())


def table_rows(page):
    return page.locator("#model-rows tr.model-row")


@pytest.mark.parametrize("viewport", WIDTHS)
def test_both_views_of_200_models_fit_the_window(browser, inventory, viewport):
    with watched_page(browser, inventory.url, **viewport) as page:
        page.goto("/models?sort=-last_tested")  # the latest loaded first: Llama
        expect(page.locator(".model-card")).to_have_count(50)
        # The totals arrive after the list: copies, bytes per place, the untested.
        expect(page.locator(".totals .result-count")).to_have_text("200 models")
        expect(page.locator(".totals-untested")).to_have_text("133 never tested")
        expect(page.locator(".totals-places li")).to_have_count(5)
        expect(page.locator(".totals-places")).to_contain_text("Folder /mnt/d/models")
        first = page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{LLAMA}"]'))
        expect(first.locator(".fact-size dd")).to_have_text("16.1 GB")
        expect(first.locator(".fact-model dd")).to_have_text("LlamaForCausalLM · 8B")
        expect(first.locator(".last-test")).to_contain_text("Loaded")
        expect(first.locator(".last-test")).to_contain_text("on gpu-box")
        no_sideways_scroll(page)
        screenshot(page, f"inventory-cards-{viewport['width']}", full_page=False)

        if viewport is PHONE:
            expect(page.locator(".filters-toggle")).not_to_have_attribute("open", "")  # the switch is outside the fold
        page.get_by_text("Table", exact=True).click()
        expect(table_rows(page)).to_have_count(50)
        assert "view=table" in page.url
        expect(page.locator(".model-card")).to_have_count(0)
        no_sideways_scroll(page)
        row = table_rows(page).filter(has=page.locator(f'.model-name[data-model-name="{LLAMA}"]'))
        expect(row.locator(".col-size")).to_have_text("16.1 GB")
        expect(row.locator(".col-format")).to_have_text("safetensors")
        expect(row.locator(".col-tested")).to_contain_text("Loaded")
        screenshot(page, f"inventory-table-{viewport['width']}", full_page=False)
        if viewport is PHONE:
            # The table scrolls inside its box, and the name column stays pinned while it does.
            box = page.locator(".table-scroll")
            assert box.evaluate("(el) => el.scrollWidth > el.clientWidth")
            name = row.locator(".col-name")
            left = name.bounding_box()["x"]
            box.evaluate("(el) => { el.scrollLeft = 400; }")
            page.wait_for_function("document.querySelector('.table-scroll').scrollLeft > 0")
            assert abs(name.bounding_box()["x"] - left) < 1
            screenshot(page, "inventory-table-390-scrolled", full_page=False)
        # Infinite scroll works in the table too.
        page.locator("#model-rows .load-more").scroll_into_view_if_needed()
        expect(table_rows(page)).to_have_count(100)


def test_the_view_is_remembered_across_a_reload_without_the_parameter(browser, inventory):
    with watched_page(browser, inventory.url, **DESKTOP) as page:
        page.goto("/")
        expect(page.locator(".model-card")).to_have_count(50)
        page.get_by_text("Table", exact=True).click()
        expect(table_rows(page)).to_have_count(50)
        # A fresh visit to the bare address: the server renders the table at once (no flash of cards).
        response = page.goto("/")
        assert 'class="model-table"' in response.text() and 'class="model-card"' not in response.text()
        expect(table_rows(page)).to_have_count(50)
        expect(page.locator('input[name="view"][value="table"]')).to_be_checked()
        page.get_by_text("Cards", exact=True).click()
        expect(page.locator(".model-card")).to_have_count(50)
        page.goto("/")
        expect(page.locator(".model-card")).to_have_count(50)


def test_inventory_filters_and_sorts(browser, inventory):
    with watched_page(browser, inventory.url, **DESKTOP) as page:
        page.goto("/models?view=table")
        page.select_option("#filter-format", "GPTQ")
        expect(table_rows(page)).to_have_count(40)
        expect(page.locator(".totals-places li")).to_have_count(2)  # the second disk, and the AWQ copies beside them
        for text in table_rows(page).locator(".col-format").all_inner_texts()[:10]:
            assert "GPTQ" in text
        page.select_option("#filter-format", "")
        page.select_option("#filter-tested", "untested")
        expect(page.locator(".totals .result-count")).to_have_text("133 models")
        expect(page.locator(".totals-untested")).to_have_text("133 never tested")
        page.select_option("#filter-tested", "")
        page.select_option("#filter-library", "ollama")
        expect(page.locator(".totals .result-count")).to_have_text("40 models")
        page.select_option("#filter-library", "")
        page.select_option("#filter-sort", "-size_bytes")
        expect(table_rows(page).first.locator(".col-size")).to_have_text(display.human_bytes(largest_on_disk()))
        assert "sort=-size_bytes" in page.url and "view=table" in page.url
        page.select_option("#filter-sort", "-last_tested")
        expect(table_rows(page).first.locator(".model-name")).to_have_text("meta-llama/Llama-3.1-8B-Instruct")
        expect(page.locator("#filter-sort option:checked")).to_have_text("Last tested (recent first)")


def _query(url: str) -> dict:
    return parse_qs(urlparse(url).query, keep_blank_values=True)


@pytest.mark.parametrize("view", ["cards", "table"])
def test_keyboard_slash_arrows_and_enter(browser, inventory, view):
    with watched_page(browser, inventory.url, **DESKTOP) as page:
        page.goto(f"/models?view={view}")
        names = page.locator("#model-results .model-name")
        expect(names).to_have_count(50)
        page.keyboard.press("/")
        expect(page.locator("#filter-q")).to_be_focused()
        expect(page.locator("#filter-q")).to_have_value("")  # the slash is not typed
        page.keyboard.type("qwen/")  # once in the box, "/" is just a character
        expect(page.locator("#filter-q")).to_have_value("qwen/")
        with page.expect_response(lambda response: _query(response.url).get("q") == [""]):  # the list for an empty search
            page.locator("#filter-q").fill("")
        expect(names).to_have_count(50)

        names.nth(0).focus()
        page.keyboard.press("ArrowDown")
        below = 2 if view == "cards" else 1  # two cards a row at 1280; the next row in the table
        expect(names.nth(below)).to_be_focused()
        page.keyboard.press("ArrowRight")
        expect(names.nth(below + 1)).to_be_focused()
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowUp")
        expect(names.nth(0)).to_be_focused()
        assert page.evaluate("window.scrollY") == 0  # the arrows moved focus, not the page

        target = names.nth(below).get_attribute("data-model-name")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        dialog = page.locator("#model-modal")
        expect(dialog).to_be_visible()
        expect(page.locator("#model-form")).to_have_attribute("data-model-name", target)
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(names.nth(below)).to_be_focused()  # back on the name it was opened from
        # A load ending elsewhere re-renders the results: the keyboard user stays on the same model.
        with page.expect_response(lambda response: "/models?" in response.url):
            page.evaluate("htmx.trigger(document.body, 'modelsChanged')")
        expect(page.locator(f'#model-results .model-name[data-model-name="{target}"]')).to_be_focused()
        screenshot(page, f"inventory-keyboard-{view}", full_page=False)


def test_a_long_note_is_whole_on_focus(browser, server):
    note = "Loads only with attn_implementation=eager on ROCm 6.4; sdpa crashes the first load. " * 12
    assert requests.post(f"{server.url}/api/models", json={"model_name": "org/noted", "compatibility_notes": note},
                         timeout=5).status_code == 201
    with watched_page(browser, server.url, **PHONE) as page:
        page.goto("/")
        notes = page.locator(".model-notes")
        expect(notes).to_have_text(note.strip())  # the whole note is in the page
        clamped = notes.evaluate("(el) => el.getBoundingClientRect().height")
        notes.focus()
        expect(notes).to_be_focused()
        opened = notes.evaluate("(el) => el.getBoundingClientRect().height")
        assert opened > clamped * 2
        no_sideways_scroll(page)
        screenshot(page, "inventory-note-focused-390", full_page=False)
