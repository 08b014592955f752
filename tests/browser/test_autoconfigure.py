"""The modal's "Find a working config" in a real browser, with real loads: a tiny Llama whose fused attention
fails the way SDPA does on ROCm (the test plugin ``faults`` raises the real HIP text unless attention is
eager). The user clicks the button, watches the tries go by without a reload, sees the config that loads
proposed with its diff and why, applies it, and finds it in the editor and the load config history."""

import json
import sqlite3

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, watched_page
from tests.support import LiveServer

pytestmark = pytest.mark.slow
NAME = "tiny/llama"
LOAD_TIMEOUT_MS = 120_000  # each try starts a Python process that imports torch: seconds on 2 cores
# torch's real error on ROCm when its fused attention has no kernel for the GPU (transformers #30056).
HIP_ERROR = ("HIP error: invalid device function\nHIP kernel errors might be asynchronously reported at some other "
             "API call, so the stacktrace below might be incorrect.\nFor debugging consider passing "
             "AMD_SERIALIZE_KERNEL=3\nCompile with `TORCH_USE_HIP_DSA` to enable device-side assertions.")
START = {"fault_attention": HIP_ERROR}


@pytest.fixture
def plugins_server(with_test_plugins, tmp_path, tiny_models):
    server = LiveServer(tmp_path / "home")
    server.start()
    body = {"model_name": NAME, "cache_location": "custom", "cache_path": str(tiny_models["llama"]),
            "load_config": json.dumps(START)}
    assert requests.post(f"{server.url}/api/models", json=body, timeout=30).status_code == 201
    yield server
    server.stop()


@pytest.fixture
def page(browser, plugins_server):
    with watched_page(browser, plugins_server.url) as page:
        yield page


def shoot(page, locator, name: str) -> None:
    """The section as the user sees it in the modal. caret="initial": Playwright's caret hiding leaves a
    style attribute that htmx would copy on the next poll's swap, which the Content-Security-Policy reports."""
    ARTIFACTS.mkdir(exist_ok=True)
    locator.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), caret="initial")


def saved_config(server) -> dict:
    with sqlite3.connect(server.home / "models.db") as connection:
        text = connection.execute("SELECT load_config FROM modelregistry WHERE model_name = ?", (NAME,)).fetchone()[0]
    return json.loads(text)


def test_find_a_working_config_watch_the_tries_and_apply_the_result(page, plugins_server):
    page.on("dialog", lambda dialog: dialog.accept())  # Apply's confirmation
    page.goto("/")
    page.evaluate("window.__sameDocument = true")
    page.locator(f'.model-name[data-model-name="{NAME}"]').click()
    expect(page.locator("#model-modal")).to_be_visible()
    section = page.locator("#autoconfigure")

    section.get_by_role("button", name="Find a working config").click()

    # Live progress: the first try (the saved config) loads, then fails; the second is chosen from its cause.
    expect(section.locator(".autoconfigure-count")).to_have_text("Try 1 of 8")
    expect(section.get_by_role("button", name="Stop")).to_be_visible()
    shoot(page, section, "autoconfigure-running")
    first = section.locator(".autoconfigure-try").nth(0)
    expect(first).to_contain_text("failed", timeout=LOAD_TIMEOUT_MS)
    expect(first).to_contain_text("attention or kernel error")
    expect(first).to_contain_text("HIP error: invalid device function")
    expect(first.locator(".try-config")).to_contain_text('"fault_attention"')

    # The end: the config that loads, its diff against the saved one and why, and Apply.
    found = section.locator(".autoconfigure-found")
    expect(found).to_contain_text("Found a config that loads (try 2 of 8)", timeout=LOAD_TIMEOUT_MS)
    expect(found.locator(".badge")).to_have_text("compatible")
    expect(found.locator(".diff-added")).to_have_count(1)
    expect(found.locator(".diff-added")).to_contain_text('+ attn_implementation: "eager"')
    expect(found.locator(".diff-added .change-why")).to_contain_text("eager")
    expect(section.locator(".autoconfigure-try").nth(1)).to_contain_text("loaded")
    expect(section.get_by_role("button", name="Stop")).to_have_count(0)
    shoot(page, found, "autoconfigure-found")
    assert saved_config(plugins_server) == START  # proposed, not applied yet

    found.get_by_role("button", name="Apply").click()

    editor = page.get_by_label("Custom Load Configuration (JSON)")
    expect(editor).to_have_value(json.dumps({**START, "attn_implementation": "eager"}, indent=2))  # shown pretty-printed
    history = page.locator("#config-history")
    expect(history.locator(".history-note")).to_contain_text("as version 2: it is the load config in force now")
    newest = history.locator('.config-version[data-version="2"]')
    expect(newest).to_contain_text("auto-configure via page")
    expect(newest).to_contain_text("in force")
    expect(newest.locator(".diff-added")).to_have_text(['+ attn_implementation: "eager"'])
    expect(page.locator("#autoconfigure .autoconfigure-applied")).to_have_text("Applied as version 2")
    expect(page.locator("#model-modal")).to_be_visible()
    shoot(page, history, "autoconfigure-applied")
    assert saved_config(plugins_server) == {**START, "attn_implementation": "eager"}
    card = page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{NAME}"]'))
    expect(card.locator(".status-badge")).to_have_text("compatible")
    expect(page.locator("#flash")).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True


def test_a_second_start_is_refused_in_the_section_and_stop_ends_the_search(page, plugins_server):
    # Each try hangs a minute before it fails: the search is surely still on its first try when stopped.
    config = json.dumps({**START, "fault_hang_seconds": 60})
    assert requests.patch(f"{plugins_server.url}/api/models/{NAME}/config", json={"load_config": config},
                          timeout=30).status_code == 200
    page.goto("/")
    name_button = page.locator(f'.model-name[data-model-name="{NAME}"]')
    name_button.click()
    section = page.locator("#autoconfigure")
    expect(section.get_by_role("button", name="Find a working config")).to_be_visible()
    # Meanwhile the search is started elsewhere (the API, another tab).
    assert requests.post(f"{plugins_server.url}/api/models/{NAME}/autoconfigure", json={}, timeout=30).status_code == 202

    section.get_by_role("button", name="Find a working config").click()

    expect(section.locator(".refused-message")).to_contain_text(f"An auto-configure run for '{NAME}' is already running")
    expect(page.locator("#flash")).to_be_hidden()
    shoot(page, section, "autoconfigure-refused")

    page.get_by_role("button", name="Cancel").click()
    name_button.click()  # the modal read again: the search's progress
    expect(section.locator(".autoconfigure-count")).to_have_text("Try 1 of 8")
    section.get_by_role("button", name="Stop").click()
    expect(section.locator(".autoconfigure-result")).to_contain_text("Stopped after 1 try", timeout=LOAD_TIMEOUT_MS)
    expect(section.locator(".autoconfigure-try")).to_contain_text("Try 1 cut short")
    expect(section.get_by_role("button", name="Find a working config")).to_be_visible()
    shoot(page, section, "autoconfigure-stopped")
    run = requests.get(f"{plugins_server.url}/api/models/{NAME}/autoconfigure", timeout=30).json()["items"][0]
    assert run["state"] == "stopped" and len(run["tries"]) == 1
