"""Loading from the page: Load / Unload on the card with progress and the result without a reload; the
modal's attempts, the latest failure's cause and its suggested config applied in one click; a loaded
model's worker killed from outside, shown in the modal with its cause."""

import json
import os
import signal
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.slow
LOAD_TIMEOUT_MS = 60_000  # a load starts a Python process that imports torch: seconds on 2 cores


def card(page, name):
    return page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{name}"]'))


@pytest.fixture
def plugins_server(with_test_plugins, tmp_path):
    """A server that also has the test plugins installed (their load_config keys make loads fail)."""
    from tests.support import LiveServer

    server = LiveServer(tmp_path / "plugins-home")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def plugins_page(browser, plugins_server):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=plugins_server.url)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    context.close()
    assert not errors


def register(server, name, directory, **fields):
    import requests

    body = {"model_name": name, "cache_location": "custom", "cache_path": str(directory), **fields}
    assert requests.post(f"{server.url}/api/models", json=body, timeout=5).status_code == 201


def test_load_and_unload_from_the_card(plugins_page, plugins_server, tiny_models):
    page = plugins_page
    # The load is slowed down by 3 s (a test plugin), so that its progress can be seen for sure.
    register(plugins_server, "tiny/llama", tiny_models["llama"], load_config='{"fault_hang_seconds": 3}')
    page.goto("/")
    page.evaluate("window.__sameDocument = true")
    tiny = card(page, "tiny/llama")

    tiny.get_by_role("button", name="Load").click()
    expect(tiny.locator(".status-badge")).to_have_text("testing")
    expect(tiny.locator(".load-progress")).to_contain_text("Loading")
    expect(tiny.locator(".status-badge")).to_have_text("compatible", timeout=LOAD_TIMEOUT_MS)
    expect(tiny.locator(".loaded-badge")).to_have_text("Loaded")
    screenshot(page, "card-loaded")

    tiny.get_by_role("button", name="Unload").click()
    expect(tiny.get_by_role("button", name="Load")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True


def test_latest_failure_cause_and_suggestion_applied_in_one_click(plugins_page, plugins_server, tiny_models):
    page = plugins_page
    register(plugins_server, "tiny/llama", tiny_models["llama"], load_config='{"fault_oom": true}')
    page.goto("/")
    tiny = card(page, "tiny/llama")
    tiny.get_by_role("button", name="Load").click()
    expect(tiny.locator(".status-badge")).to_have_text("incompatible", timeout=LOAD_TIMEOUT_MS)
    expect(tiny.get_by_role("button", name="Load")).to_be_disabled()

    tiny.locator(".model-name").click()
    failure = page.locator(".failure-box")
    expect(failure).to_contain_text("memory")
    expect(page.locator(".attempts-table tbody tr")).to_have_count(1)
    expect(page.locator(".attempts-table")).to_contain_text("OutOfMemoryError")
    screenshot(page, "modal-latest-failure", full_page=False)

    failure.get_by_role("button", name="Apply to Custom Load Configuration").click()
    applied = json.loads(page.get_by_label("Custom Load Configuration (JSON)").input_value())
    assert applied["fault_oom"] is True  # the user's own keys stay
    assert applied["device_map"] == "auto"
    expect(page.get_by_label("Custom Load Configuration (JSON)")).to_be_focused()


def test_a_loaded_workers_death_is_shown_in_the_modal(plugins_page, plugins_server, tiny_models):
    import requests

    page = plugins_page
    register(plugins_server, "tiny/llama", tiny_models["llama"])
    page.goto("/")
    tiny = card(page, "tiny/llama")
    tiny.get_by_role("button", name="Load").click()
    expect(tiny.locator(".loaded-badge")).to_have_text("Loaded", timeout=LOAD_TIMEOUT_MS)
    api = f"{plugins_server.url}/api/models/tiny/llama"
    os.kill(requests.get(f"{api}/attempts", timeout=5).json()["load_state"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while requests.get(api, timeout=5).json()["compatibility_status"] != "degraded":
        assert time.monotonic() < deadline, "the worker's death was not recorded"
        time.sleep(0.2)

    page.reload()
    tiny = card(page, "tiny/llama")
    expect(tiny.locator(".status-badge")).to_have_text("degraded")
    expect(tiny.get_by_role("button", name="Load")).to_be_enabled()
    tiny.locator(".model-name").click()
    failure = page.locator(".failure-box")
    expect(failure).to_contain_text("The loaded model's worker process died (killed by SIGKILL)")
    expect(failure).to_contain_text("last stage: loaded")
    rows = page.locator(".attempts-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("WorkerDiedWhileLoaded")
    expect(rows.nth(1)).to_contain_text("success")
    expect(rows.first).to_contain_text("s loaded")  # "Took": how long the model stayed loaded
    page.set_viewport_size({"width": 1200, "height": 1400})  # the failure and the attempts in one picture
    page.locator(".attempts").evaluate("section => section.scrollIntoView({block: 'center'})")
    screenshot(page, "modal-loaded-worker-died", full_page=False)


def test_plugins_panel_lists_plugins_and_their_keys(plugins_page, plugins_server):
    page = plugins_page
    page.goto("/")
    panel = page.locator("#plugins-panel")
    panel.locator("summary").click()
    expect(panel.locator("tr", has_text="legacy_keys")).to_contain_text("torch_dtype")
    expect(panel.locator("tr", has_text="example")).to_contain_text("example_tag")
