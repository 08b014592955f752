"""The Models page's Retest banner, as a user meets it after upgrading transformers: the server restarted
with another transformers version (a fake ``transformers-99.0.0.dist-info`` early on PYTHONPATH, so
package metadata reports it), the banner counts the models to retest, Retest shows the progress, and
the end says what was loaded again, without a page reload."""

import os
import time

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.support import LiveServer

pytestmark = pytest.mark.slow
NAMES = ("tiny/llama", "tiny/gpt2")


def fake_upgrade(directory) -> str:
    """A folder whose dist-info says transformers 99.0.0 (its code stays the installed one)."""
    dist_info = directory / "transformers-99.0.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: transformers\nVersion: 99.0.0\n")
    return str(directory)


def load_and_wait(server, name):
    assert requests.post(f"{server.url}/api/models/{name}/load", json={}, timeout=30).status_code == 202
    deadline = time.monotonic() + 120
    while (latest := requests.get(f"{server.url}/api/models/{name}/attempts", timeout=30).json()["items"][0])[
            "outcome"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert latest["outcome"] == "success", latest


@pytest.fixture
def upgraded_server(tmp_path, tiny_models):
    """Two models loaded with the installed transformers; then the server restarted "upgraded"."""
    home = tmp_path / "home"
    before = LiveServer(home)
    before.start()
    try:
        for name, kind in zip(NAMES, ("llama", "gpt2")):
            body = {"model_name": name, "cache_location": "custom", "cache_path": str(tiny_models[kind])}
            assert requests.post(f"{before.url}/api/models", json=body, timeout=30).status_code == 201
            load_and_wait(before, name)
    finally:
        before.stop()
    path = os.pathsep.join(filter(None, [fake_upgrade(tmp_path / "upgrade"), os.environ.get("PYTHONPATH")]))
    after = LiveServer(home, env={"PYTHONPATH": path})
    after.start()
    yield after
    after.stop()


def test_retest_after_an_upgrade_shows_progress_then_what_it_found(browser, upgraded_server):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=upgraded_server.url)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto("/")
    banner = page.locator("#retest-status")
    expect(banner).to_contain_text("2 models need a retest on this host")
    page.evaluate("window.__sameDocument = true")
    screenshot(page, "retest-needed", full_page=False)

    page.get_by_role("button", name="Retest").click()

    expect(banner).to_contain_text("Retesting on this host")
    expect(banner.locator("progress")).to_be_visible()
    expect(banner.get_by_role("button", name="Stop")).to_be_visible()
    screenshot(page, "retest-running", full_page=False)
    expect(banner).to_contain_text("Retest done: 2 of 2 models tried (2 loaded, 0 did not)", timeout=120_000)
    expect(banner).not_to_contain_text("need a retest")
    banner.locator("summary").click()
    expect(banner).to_contain_text("tiny/llama: success (compatible here)")
    expect(banner).to_contain_text("tiny/gpt2: success (compatible here)")
    screenshot(page, "retest-done", full_page=False)
    assert page.evaluate("window.__sameDocument") is True
    context.close()
    assert not errors

    # Each model's newest attempt ran in the upgraded environment; both were unloaded again.
    for name in NAMES:
        answer = requests.get(f"{upgraded_server.url}/api/models/{name}/attempts", timeout=30).json()
        assert answer["load_state"] == {"state": "idle"}
        environment = requests.get(f"{upgraded_server.url}/api/environments/{answer['items'][0]['environment_id']}",
                                   timeout=30).json()
        assert environment["facts"]["libraries"]["transformers"] == "99.0.0" and environment["current"]
        assert answer["items"][1]["environment_id"] != environment["id"]
