"""Drafts in the details modal, in a real browser: closing with unsaved changes asks first (in the modal),
a second Escape or Discard drops the draft, Keep editing goes back to it; a save says so in a toast; the
load config field (system defaults placeholder, pretty-printed, Format) and boxes that grow."""

import json

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_modal import open_modal

pytestmark = pytest.mark.slow

NAME = "microsoft/phi-2"
SAVED = '{"torch_dtype": "bfloat16", "attn_implementation": "eager"}'


def screenshot(page, name: str, full_page: bool = False):
    """As conftest's, with the caret left alone: Playwright hides it with a style attribute that htmx would
    copy onto the form re-read on the next open, which the Content-Security-Policy then reports."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page, caret="initial")


def notes(page):
    return page.get_by_label("Compatibility Notes")


def config_field(page):
    return page.get_by_label("Custom Load Configuration (JSON)")


def bar(page):
    return page.locator(".unsaved-bar")


def versions(registry, name: str = NAME) -> list:
    return requests.get(f"{registry.api}/{name}/configs", timeout=5).json()["items"]


def test_escape_with_a_draft_asks_then_a_second_escape_drops_it(page, registry):
    registry.add(model_name=NAME, compatibility_notes="saved notes")
    page.goto("/")
    dialog = open_modal(page, NAME)
    notes(page).click()
    notes(page).press("End")
    notes(page).press_sequentially(" and a draft")

    page.keyboard.press("Escape")
    expect(bar(page)).to_be_visible()
    expect(bar(page)).to_contain_text("You have unsaved changes.")
    expect(dialog).to_be_visible()
    expect(notes(page)).to_have_value("saved notes and a draft")
    expect(bar(page).get_by_role("button", name="Keep editing")).to_be_focused()
    screenshot(page, "drafts-unsaved-bar", full_page=False)

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.watch.writes() == []
    open_modal(page, NAME)
    expect(notes(page)).to_have_value("saved notes")  # the draft was dropped
    expect(bar(page)).to_be_hidden()


def test_cancel_keep_editing_then_save_shows_a_toast_and_updates_the_card(page, registry):
    registry.add(model_name=NAME)
    page.goto("/")
    dialog = open_modal(page, NAME)
    notes(page).fill("works with eager attention")

    page.get_by_role("button", name="Cancel").click()
    expect(bar(page)).to_be_visible()
    bar(page).get_by_role("button", name="Keep editing").click()
    expect(bar(page)).to_be_hidden()
    expect(dialog).to_be_visible()
    expect(notes(page)).to_have_value("works with eager attention")
    expect(notes(page)).to_be_focused()  # back where the user was typing

    page.get_by_role("button", name="Save All Changes").click()
    toast = page.get_by_role("status").filter(has_text="Saved")
    expect(toast).to_have_text(f"Saved {NAME}")
    expect(page.locator("#toast")).to_have_attribute("aria-live", "polite")
    expect(dialog).to_be_hidden()
    card = page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{NAME}"]'))
    expect(card.locator(".model-notes")).to_have_text("works with eager attention")
    screenshot(page, "drafts-saved-toast", full_page=False)
    assert registry.row(NAME)["compatibility_notes"] == "works with eager attention"
    expect(page.locator("#toast")).to_be_hidden(timeout=5_000)  # gone after ~3 s
    expect(page.locator("#toast")).to_have_text("")


@pytest.mark.parametrize("how", ["close button", "outside click", "discard"])
def test_every_way_of_closing_asks_and_discard_closes(page, registry, how):
    registry.add(model_name=NAME)
    page.goto("/")
    dialog = open_modal(page, NAME)
    page.get_by_label("Compatibility Status").select_option("compatible")
    if how == "outside click":
        page.mouse.click(5, 450)
    else:
        page.get_by_role("button", name="Close").click()
    expect(bar(page)).to_be_visible()
    expect(dialog).to_be_visible()
    if how == "discard":
        bar(page).get_by_role("button", name="Discard").click()
    elif how == "outside click":
        page.mouse.click(5, 450)
    else:
        page.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(f'.model-name[data-model-name="{NAME}"]')).to_be_focused()
    assert page.watch.writes() == []
    assert registry.row(NAME)["compatibility_status"] == "unknown"


def test_no_changes_close_at_once(page, registry):
    registry.add(model_name=NAME, load_config=SAVED)
    page.goto("/")
    dialog = open_modal(page, NAME)
    notes(page).fill("typed")
    notes(page).fill("")  # typed and undone: as rendered again
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(bar(page)).to_be_hidden()


def test_the_load_config_field_placeholder_pretty_print_and_format(page, registry):
    registry.add(model_name=NAME)
    registry.add(model_name="gpt2", load_config=SAVED)
    page.goto("/")
    open_modal(page, NAME)
    expect(config_field(page)).to_have_value("")
    expect(config_field(page)).to_have_attribute("placeholder", "Using system defaults (empty = no custom settings)")
    screenshot(page, "drafts-load-config-placeholder", full_page=False)

    config_field(page).fill('{"device_map":"auto","max_memory":{"0":"15GiB"}}')
    page.get_by_role("button", name="Format").click()
    expect(config_field(page)).to_have_value('{\n  "device_map": "auto",\n  "max_memory": {\n    "0": "15GiB"\n  }\n}')
    config_field(page).fill('{"device_map": auto}')
    page.get_by_role("button", name="Format").click()
    expect(page.locator("#error-load_config")).to_contain_text("Invalid JSON, not formatted")
    expect(config_field(page)).to_have_value('{"device_map": auto}')  # left as typed
    screenshot(page, "drafts-format-invalid", full_page=False)
    page.keyboard.press("Escape")
    bar(page).get_by_role("button", name="Discard").click()

    open_modal(page, "gpt2")
    expect(config_field(page)).to_have_value('{\n  "torch_dtype": "bfloat16",\n  "attn_implementation": "eager"\n}')
    # Saved with the config left as shown: the text saved is kept, no version is made.
    before = versions(registry, "gpt2")
    notes(page).fill("eager only")
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).to_be_hidden()
    assert registry.row("gpt2")["compatibility_notes"] == "eager only"
    assert registry.row("gpt2")["load_config"] == SAVED
    assert versions(registry, "gpt2") == before and len(before) == 1


def test_notes_and_config_boxes_grow_with_their_content(page, registry):
    memory = {str(gpu): "15GiB" for gpu in range(10)}
    registry.add(model_name=NAME, load_config=json.dumps({"device_map": "auto", "max_memory": memory}))
    page.goto("/")
    open_modal(page, NAME)
    height = lambda locator: locator.evaluate("e => e.getBoundingClientRect().height")  # noqa: E731
    expect(config_field(page)).to_have_attribute("rows", "15")  # its 15 pretty-printed lines, shown whole
    small = height(notes(page))
    notes(page).fill("\n".join(f"line {i}" for i in range(20)))
    expect(notes(page)).to_have_attribute("rows", "20")
    assert height(notes(page)) > small * 5
    assert notes(page).evaluate("e => e.scrollHeight <= e.clientHeight + 1")  # all 20 lines in view
    notes(page).fill("\n".join(f"line {i}" for i in range(30)))  # more than 60% of the viewport holds
    assert 0.5 * 900 < height(notes(page)) <= 0.6 * 900 + 2  # grown to its most, then it scrolls
    assert notes(page).evaluate("e => e.scrollHeight > e.clientHeight")
    screenshot(page, "drafts-autogrow")
    notes(page).fill("short")
    expect(notes(page)).to_have_attribute("rows", "3")


def test_a_refused_score_shows_its_whole_message_above_the_save_bar_on_a_phone(browser, registry):
    """The message under a field near the bottom of the sheet would sit behind the sticky Save bar: the
    modal brings it into view above the bar."""
    from tests.browser.conftest import watched_page

    registry.add(model_name=NAME)
    with watched_page(browser, registry.server.url, width=390, height=844) as page:
        page.goto("/")
        open_modal(page, NAME)
        page.get_by_text("📊 Benchmark Metrics").click()
        field = page.get_by_label("TruthfulQA")
        field.fill("150")
        # The field just above the Save bar, as a user scrolling down to it would leave it.
        field.evaluate("""(input) => {
          let box = input.parentElement;
          while (box && !(box.scrollHeight > box.clientHeight && getComputedStyle(box).overflowY !== "visible")) box = box.parentElement;
          const barTop = document.querySelector("#model-modal .form-actions").getBoundingClientRect().top;
          box.scrollTop += input.getBoundingClientRect().bottom - barTop + 4;
        }""")
        page.locator("#model-modal button[type=submit]").click()

        error = page.locator("#error-truthfulqa_score")
        expect(error).to_contain_text("less than or equal to 100")
        page.wait_for_timeout(300)  # the scroll settles
        bar_top = page.locator("#model-modal .form-actions").bounding_box()["y"]
        message = error.bounding_box()
        assert message["y"] + message["height"] <= bar_top + 1, (message, bar_top)
        screenshot(page, "modal-phone-score-error")
