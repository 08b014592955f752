"""The pages under the server's Content-Security-Policy in real Chromium, and signing in with the API token.

Every browser test fails on a CSP violation (tests/browser/conftest.py); the first test here proves that
watch catches one, the others tour the whole UI and the sign-in flow."""

import pytest
import requests
from playwright.sync_api import expect

from modelhub.security import CSP
from tests.browser.conftest import screenshot, take_csp_violations
from tests.support import LiveServer

pytestmark = pytest.mark.slow
TOKEN = "browser-token-0123456789"


def test_the_watch_catches_inline_styles_scripts_and_handlers(page, registry):
    response = page.goto("/")
    assert response.headers["content-security-policy"] == CSP
    page.evaluate("""() => {
        document.body.insertAdjacentHTML("beforeend", '<p style="color: red">styled</p><img src="data:," onload="window.ran = 1">');
        const script = document.createElement("script");
        script.textContent = "window.ran = 2";
        document.body.append(script);
    }""")
    page.wait_for_timeout(300)
    assert page.evaluate("window.ran") is None  # neither the handler nor the script ran
    violations = take_csp_violations()
    assert any("style-src" in v for v in violations), violations
    assert any("script-src" in v for v in violations), violations


def test_the_whole_ui_works_under_the_policy(page, registry):
    for name, status, mmlu, speed in [("org/alpha", "compatible", 70, 40), ("org/beta", "degraded", 55, 80),
                                      ("org/gamma", "incompatible", 62, 20)]:
        registry.add(model_name=name, compatibility_status=status, mmlu_score=mmlu, max_throughput_tokens_sec=speed)
    page.goto("/")
    page.get_by_label("Search").fill("alp")
    expect(page.locator(".model-name")).to_have_text(["org/alpha"])
    page.get_by_label("Search").fill("")
    expect(page.locator(".model-name")).to_have_count(3)
    page.locator('.model-name[data-model-name="org/beta"]').click()
    expect(page.locator("#model-modal")).to_be_visible()
    page.get_by_text("📊 Benchmark Metrics").click()
    page.get_by_label("Compatibility Notes").fill("works under the CSP")
    screenshot(page, "csp-modal", full_page=False)
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).to_be_hidden()
    assert registry.row("org/beta")["compatibility_notes"] == "works under the CSP"
    page.locator("#plugins-panel summary").click()

    page.get_by_role("link", name="Compare").click()
    expect(page.locator(".compare-table")).to_be_visible()
    page.locator("th a", has_text="Model").click()
    expect(page.locator("svg.chart circle.point")).to_have_count(3)
    page.locator("svg.chart circle.point").first.hover()
    screenshot(page, "csp-compare")


@pytest.fixture
def guarded_server(tmp_path):
    server = LiveServer(tmp_path / "home", env={"MODELHUB_API_TOKEN": TOKEN})
    server.start()
    yield server
    server.stop()


def test_a_browser_signs_in_to_make_changes(browser, guarded_server):
    url = guarded_server.url
    assert requests.post(f"{url}/api/models", json={"model_name": "org/alpha"},
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).status_code == 201
    context = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto("/")
    expect(page.locator(".auth-status")).to_contain_text("Read-only until you sign in")

    page.get_by_role("button", name="Rescan").click()  # refused: the page says why
    expect(page.locator("#flash")).to_have_text(
        "Changes need the API token: send 'Authorization: Bearer <MODELHUB_API_TOKEN>', or sign in on the page (/sign-in).")
    screenshot(page, "sign-in-needed")

    page.locator(".auth-status").get_by_role("link", name="sign in").click()
    page.get_by_label("API token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_have_text("That is not the server's token.")
    page.get_by_label("API token").fill(TOKEN)
    screenshot(page, "sign-in-form")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{url}/")
    expect(page.locator(".auth-status")).to_contain_text("Signed in")
    page.get_by_role("button", name="Rescan").click()
    expect(page.locator("#scan-status")).to_contain_text("Scan done")
    expect(page.locator("#flash")).to_be_hidden()
    page.locator('.model-name[data-model-name="org/alpha"]').click()
    page.get_by_label("Compatibility Notes").fill("saved while signed in")
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).to_be_hidden()
    notes = requests.get(f"{url}/api/models/org/alpha", timeout=5).json()["compatibility_notes"]
    assert notes == "saved while signed in"
    assert not [c for c in context.cookies() if c["name"] == "modelhub_session" and not c["httpOnly"]]

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".auth-status")).to_contain_text("Read-only until you sign in")
    context.close()
