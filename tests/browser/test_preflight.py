"""Will it load here, in a real browser: each card's fits/won't-fit mark, and the modal's section following
the load config as it is typed (debounced), saying why a text cannot be checked, and putting a config that
would fit into the editor without saving it.

The server runs with a worker memory limit set from the preflight of a header-only 0.85B Llama
(tests/header_only.py), so that it does not fit while the tiny Llama does, whatever this host has free."""

import json
import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from modelhub.app import create_app
from tests.browser.conftest import Registry, screenshot
from tests.header_only import build_llama
from tests.support import LiveServer

pytestmark = pytest.mark.slow
TINY, BIG = "tiny/llama", "big/llama"


@pytest.fixture
def big_llama(tmp_path):
    return build_llama(tmp_path / "llama-0.8b")


def predicted_total(folder: Path) -> int:
    """The big Llama's predicted peak, from an app of this process on a registry of its own."""
    with tempfile.TemporaryDirectory() as home:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{home}/models.db",
                          "MODELHUB_HOME": home, "MODELHUB_AUTO_UPGRADE": True,
                          "MODELHUB_WORKER_MEMORY_LIMIT": 64 * 2**30})
        client = app.test_client()
        client.post("/api/models", json={"model_name": BIG, "cache_location": "custom", "cache_path": str(folder)})
        total = client.get(f"/api/models/{BIG}/preflight").json["total_bytes"]
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
        return total


@pytest.fixture
def server(tmp_path, big_llama):
    limit = int(predicted_total(big_llama) * 0.9)
    server = LiveServer(tmp_path / "home", env={"MODELHUB_WORKER_MEMORY_LIMIT": str(limit)})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def models(registry: Registry, tiny_models, big_llama):
    registry.add(model_name=TINY, cache_location="custom", cache_path=str(tiny_models["llama"]))
    registry.add(model_name=BIG, cache_location="custom", cache_path=str(big_llama))
    registry.add(model_name="acme/elsewhere")


def card(page, name):
    return page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{name}"]'))


def open_modal(page, name):
    page.locator(f'.model-name[data-model-name="{name}"]').click()
    dialog = page.locator("#model-modal")
    expect(dialog.locator("#modal-title")).to_have_text(name)
    return dialog


def preflight_requests(page) -> list[str]:
    return [url for method, url in page.watch.requests if "/preflight" in url]


def test_the_card_marks_and_the_section_following_the_editor(page, models, registry):
    page.goto("/")
    expect(card(page, TINY).locator(".preflight-mark")).to_have_text("fits here")
    expect(card(page, TINY).locator(".preflight-mark")).to_have_class("badge preflight-verdict status-compatible preflight-mark")
    expect(card(page, BIG).locator(".preflight-mark")).to_have_text("won't fit here")
    expect(card(page, BIG).locator(".preflight-mark")).to_have_attribute("title", re.compile("^Preflight, before loading: Needs "))
    expect(card(page, "acme/elsewhere").locator(".preflight-mark")).to_have_count(0)
    screenshot(page, "preflight-cards")

    dialog = open_modal(page, TINY)
    section = dialog.locator("#preflight")
    expect(section.locator(".preflight-verdict")).to_have_text("fits")
    expect(section.locator(".preflight-basis")).to_contain_text("For the saved load config")
    expect(section.locator('tr[data-term="weights"]')).to_contain_text("float32")

    # Typed key by key: one request once the typing pauses (debounced), with the text as typed.
    editor = page.get_by_label("Custom Load Configuration (JSON)")
    editor.press_sequentially('{"dtype": "float16"}', delay=20)
    expect(section.locator(".preflight-basis")).to_contain_text("For the load config being edited (not saved yet)")
    expect(section.locator('tr[data-term="weights"]')).to_contain_text("float16")
    expect(section.locator(".preflight-verdict")).to_have_text("fits")
    sent = preflight_requests(page)
    assert len(sent) == 1, sent
    assert "load_config=%7B%22dtype%22%3A+%22float16%22%7D" in sent[0] or "float16" in sent[0]
    section.evaluate("element => element.scrollIntoView()")
    screenshot(page, "preflight-typed", full_page=False)

    # A text that cannot be checked says why in the section; no error page, no message above the page.
    editor.fill('{"dtype": "float8"}')
    expect(section.locator(".preflight-invalid")).to_contain_text("dtype: Must be one of: float32, float16, bfloat16")
    editor.fill('{"dtype": ')
    expect(section.locator(".preflight-invalid")).to_contain_text("Invalid JSON")
    expect(page.locator("#flash")).to_be_hidden()
    section.evaluate("element => element.scrollIntoView()")
    screenshot(page, "preflight-invalid", full_page=False)
    editor.fill('{"dtype": "bfloat16"}')
    expect(section.locator('tr[data-term="weights"]')).to_contain_text("bfloat16")
    assert registry.row(TINY)["load_config"] is None  # nothing typed was saved
    page.get_by_role("button", name="Cancel").click()


def test_a_config_that_fits_goes_into_the_editor_and_is_saved_only_on_save(page, models, registry):
    page.goto("/")
    dialog = open_modal(page, BIG)
    section = dialog.locator("#preflight")
    expect(section.locator(".preflight-verdict")).to_have_text("won't fit")
    expect(section.locator(".preflight-bar")).to_be_visible()
    fitting = section.locator(".preflight-fitting")
    expect(fitting).to_contain_text("A load config that would fit")
    offered = json.loads(fitting.locator("button").get_attribute("data-apply-fitting-config"))
    section.evaluate("element => element.scrollIntoView()")
    screenshot(page, "preflight-wont-fit", full_page=False)

    fitting.get_by_role("button", name="Put it in the load config").click()
    editor = page.get_by_label("Custom Load Configuration (JSON)")
    assert json.loads(editor.input_value()) == offered
    expect(editor).to_be_focused()
    expect(section.locator(".preflight-basis")).to_contain_text("For the load config being edited")
    expect(section.locator(".preflight-verdict")).to_have_text(re.compile("^(fits|tight)$"))
    assert registry.row(BIG)["load_config"] is None  # not saved until the user saves
    section.evaluate("element => element.scrollIntoView()")
    screenshot(page, "preflight-fitting-applied", full_page=False)

    page.get_by_role("button", name="Save All Changes").click()
    expect(dialog).to_be_hidden()
    assert json.loads(registry.row(BIG)["load_config"]) == offered
    expect(card(page, BIG).locator(".preflight-mark")).to_have_text(re.compile("^(fits|tight) here$"))
