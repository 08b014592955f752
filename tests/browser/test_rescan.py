"""The Rescan button: progress, then the new models appear without a reload; the modal lists copies."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.support import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
def scan_server(tmp_path, caches):
    server = LiveServer(tmp_path / "home")
    server.start()
    yield server
    server.stop()


def test_rescan_shows_progress_then_the_new_models_without_a_reload(browser, scan_server):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=scan_server.url)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto("/")
    expect(page.locator(".empty")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    page.get_by_role("button", name="Rescan").click()

    expect(page.locator("#scan-status")).to_contain_text("Scan done: 2 new models", timeout=30_000)
    expect(page.locator(".model-name")).to_have_text(["gpt2-tiny", "tiny-org/llama"])
    assert page.evaluate("window.__sameDocument") is True
    problems = page.locator(".scan-problems")
    problems.locator("summary").click()
    expect(problems).to_contain_text("broken")
    expect(problems).to_contain_text("not valid JSON")
    screenshot(page, "models-after-rescan")

    page.locator('.model-name[data-model-name="tiny-org/llama"]').click()
    copies = page.locator(".copies-table tbody tr")
    expect(copies).to_have_count(2)
    expect(page.locator(".copies-table")).to_contain_text("primary")
    expect(page.locator(".copies-table")).to_contain_text("secondary")
    expect(page.locator(".copies-table")).to_contain_text("safetensors")
    screenshot(page, "modal-copies", full_page=False)
    context.close()
    assert not errors
