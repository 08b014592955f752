"""The modal's load config history in a real browser: two edits seen as versions with their diffs, a
restore of the first (the textarea shows it, the ETag moves, a later save is not refused), a restore
refused because the model changed meanwhile, and a failed load's suggestion saved as applied."""

import json
import sqlite3

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, screenshot
from tests.browser.test_modal import open_modal

pytestmark = pytest.mark.slow

NAME = "microsoft/phi-2"
FIRST = '{\n    "attn_implementation": "eager"\n}'
SECOND = '{\n    "attn_implementation": "eager",\n    "torch_dtype": "bfloat16"\n}'
THIRD = '{\n    "torch_dtype": "float16",\n    "device_map": "auto"\n}'


def pretty(text: str) -> str:
    """A saved config as the modal's field shows it (modelhub.display.load_config_text)."""
    return json.dumps(json.loads(text), indent=2)


def edit_config(page, config: str) -> None:
    open_modal(page, NAME)
    page.get_by_label("Custom Load Configuration (JSON)").fill(config)
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).to_be_hidden()


def versions(registry) -> list[dict]:
    return requests.get(f"{registry.api}/{NAME}/configs", timeout=5).json()["items"]


def version_item(page, number: int):
    return page.locator(f'.config-version[data-version="{number}"]')


def test_edit_twice_see_the_history_with_diffs_and_restore_the_first(page, registry):
    registry.add(model_name=NAME, load_config=FIRST)
    page.on("dialog", lambda dialog: dialog.accept())  # the Restore button's confirmation
    page.goto("/")
    page.evaluate("window.__sameDocument = true")
    edit_config(page, SECOND)
    edit_config(page, THIRD)

    open_modal(page, NAME)
    history = page.locator("#config-history")
    history.locator("summary").first.click()
    expect(history.locator("summary").first).to_contain_text("3 versions, version 3 in force")
    expect(page.locator(".config-version")).to_have_count(3)
    newest = version_item(page, 3)
    expect(newest).to_contain_text("in force")
    expect(newest).to_contain_text("typed via page")
    expect(newest.locator(".diff-added")).to_have_text(['+ device_map: "auto"'])
    expect(newest.locator(".diff-removed")).to_have_text(['− attn_implementation (was "eager")'])
    expect(newest.locator(".diff-changed")).to_have_text(['~ torch_dtype: "bfloat16" → "float16"'])
    expect(newest.get_by_role("button", name="Restore")).to_have_count(0)  # it is the one in force
    expect(version_item(page, 2).locator(".diff-added")).to_have_text(['+ torch_dtype: "bfloat16"'])
    expect(version_item(page, 1)).to_contain_text("registered via api")
    version_item(page, 1).scroll_into_view_if_needed()
    # caret="initial": Playwright's caret hiding leaves a style attribute that htmx would copy on the swap
    # below (its attribute settling), which the Content-Security-Policy then reports.
    page.screenshot(path=str(ARTIFACTS / "modal-config-history.png"), caret="initial")
    etag_before = page.locator("#model-form").get_attribute("data-etag")

    version_item(page, 1).get_by_role("button", name="Restore").click()

    expect(page.locator(".history-note")).to_have_text(
        "Restored version 1 as version 4: it is the load config in force now.")
    expect(page.get_by_label("Custom Load Configuration (JSON)")).to_have_value(pretty(FIRST))
    restored = version_item(page, 4)
    expect(restored).to_contain_text("restored version 1 via page")
    expect(restored).to_contain_text("in force")
    expect(restored.locator(".diff-added")).to_have_text(['+ attn_implementation: "eager"'])
    expect(restored.locator(".diff-removed")).to_have_text(['− device_map (was "auto")', '− torch_dtype (was "float16")'])
    expect(page.locator("#model-modal")).to_be_visible()
    png = screenshot(page, "modal-config-history-restored", full_page=False)
    assert png.stat().st_size > 10_000
    etag_after = page.locator("#model-form").get_attribute("data-etag")
    assert etag_after != etag_before and etag_after == requests.get(f"{registry.api}/{NAME}", timeout=5).headers["ETag"]
    assert registry.row(NAME)["load_config"] == FIRST
    assert [(v["number"], v["source"], v["via"], v["restored_from"]) for v in versions(registry)] == [
        (4, "restore", "page", 1), (3, "typed", "page", None), (2, "typed", "page", None), (1, "created", "api", None)]

    # The form carries the new ETag: saving from it now is not refused as stale.
    page.get_by_label("Compatibility Notes").fill("eager attention only")
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).to_be_hidden()
    assert registry.row(NAME)["compatibility_notes"] == "eager attention only"
    assert len(versions(registry)) == 4  # the config was saved unchanged: no version
    assert page.evaluate("window.__sameDocument") is True


def test_a_restore_after_someone_else_changed_the_model_is_refused_and_says_so(page, registry):
    registry.add(model_name=NAME, load_config=FIRST)
    registry.patch(NAME, load_config=SECOND)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/")
    open_modal(page, NAME)
    page.locator("#config-history summary").first.click()
    registry.patch(NAME, compatibility_notes="edited elsewhere meanwhile")

    version_item(page, 1).get_by_role("button", name="Restore").click()

    expect(page.locator(".history-note")).to_contain_text("Not restored: someone else changed this model")
    expect(page.get_by_label("Compatibility Notes")).to_have_value("edited elsewhere meanwhile")  # as it is now
    expect(page.get_by_label("Custom Load Configuration (JSON)")).to_have_value(pretty(SECOND))
    assert registry.row(NAME)["load_config"] == SECOND and len(versions(registry)) == 2
    expect(page.locator("#flash")).to_be_hidden()
    # The form was re-read: restoring again now works.
    version_item(page, 1).get_by_role("button", name="Restore").click()
    expect(page.locator(".history-note")).to_contain_text("Restored version 1 as version 3")
    assert registry.row(NAME)["load_config"] == FIRST


def _latest_failure_with_suggestion(registry, suggestion: dict) -> None:
    """A failed load attempt of the model, as the loader records one (the loading tests make real ones)."""
    model_id = registry.row(NAME)["id"]
    with sqlite3.connect(registry.server.home / "models.db") as connection:
        connection.execute(
            "INSERT INTO load_attempt (model_id, started_at, finished_at, outcome, error_type, error_message, "
            "previous_status, explanation, suggestion) VALUES (?, '2026-12-01 10:00:00.000000', "
            "'2026-12-01 10:00:05.000000', 'failure', 'OutOfMemoryError', 'CUDA out of memory', 'unknown', "
            "'Out of GPU memory.', ?)", (model_id, json.dumps(suggestion)))


def test_a_suggestion_saved_as_applied_is_a_suggestion_version_and_typing_makes_it_typed(page, registry):
    registry.add(model_name=NAME, load_config=FIRST)
    _latest_failure_with_suggestion(registry, {"device_map": "auto"})
    page.goto("/")

    open_modal(page, NAME)
    page.get_by_role("button", name="Apply to Custom Load Configuration").click()
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).to_be_hidden()

    newest = versions(registry)[0]
    assert (newest["number"], newest["source"], newest["via"]) == (2, "suggestion", "page")
    assert json.loads(newest["load_config"]) == {"attn_implementation": "eager", "device_map": "auto"}
    assert newest["diff"]["added"] == [{"key": "device_map", "value": "auto"}]

    _latest_failure_with_suggestion(registry, {"torch_dtype": "float16"})
    open_modal(page, NAME)
    page.get_by_role("button", name="Apply to Custom Load Configuration").click()
    page.get_by_label("Custom Load Configuration (JSON)").press("End")
    page.get_by_label("Custom Load Configuration (JSON)").type(" ")
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).to_be_hidden()

    newest = versions(registry)[0]
    assert (newest["number"], newest["source"], newest["via"]) == (3, "typed", "page")
