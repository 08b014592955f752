"""Which copy a verdict was for, in Chromium: the modal's "Will it load here?" checks the copy picked in its
"Check copy" select (a GGUF file in LM Studio, counted as transformers dequantizes it, beside the HF cache's
safetensors folder) and says "Checked: GGUF Q4_0, LM Studio"; after a real load of that file, "Where it
loads" says this host's verdict was read from it. A machine with the tools' libraries in their default
places, found by a real scan."""

import time

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, watched_page
from tests.discovery.trees import add_hub_repo, add_lmstudio, add_ollama, read_files
from tests.support import LiveServer

pytestmark = pytest.mark.slow
NAME = "tiny-org/qwen2"
LOAD_TIMEOUT_MS = 120_000  # a load starts a Python process that imports torch: seconds on 2 cores, more under a full CI


@pytest.fixture
def machine(tmp_path, monkeypatch, gguf_model_files):
    """A tiny Qwen2 in the HF cache (float32 safetensors), its Q4_0 GGUF in LM Studio and its Q8_0 pulled by
    Ollama, in their default places under the home folder; a server that has scanned them."""
    home = tmp_path / "machine"
    files = gguf_model_files.files
    hub = home / ".cache" / "huggingface" / "hub"
    add_hub_repo(hub, NAME, read_files(gguf_model_files.source))
    lmstudio = add_lmstudio(home / ".lmstudio" / "models", NAME, "tiny-qwen2.Q4_0.gguf", files["Q4_0"])
    add_ollama(home / ".ollama" / "models", f"hf.co/{NAME}:Q8_0", files["Q8_0"])
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MODELHUB_LIBRARIES", "lmstudio,ollama,text-generation-webui")
    for name in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    server = LiveServer(tmp_path / "home")
    server.start()
    assert requests.post(f"{server.url}/api/scan", timeout=5).status_code == 202
    deadline = time.monotonic() + 30
    while requests.get(f"{server.url}/api/scan", timeout=5).json()["state"] == "running":
        assert time.monotonic() < deadline, "the scan did not finish"
        time.sleep(0.1)
    copies = {copy["library"]: copy for copy in requests.get(f"{server.url}/api/models/{NAME}/copies", timeout=5).json()}
    assert sorted(copies) == ["huggingface", "lmstudio", "ollama"], copies
    assert copies["lmstudio"]["path"] == str(lmstudio)
    yield server, copies
    server.stop()


@pytest.fixture
def page(browser, machine):
    with watched_page(browser, machine[0].url) as page:
        yield page


def shot(page, name: str) -> None:
    """The viewport, as the user sees the open modal. ``caret="initial"``: Playwright's caret hiding leaves
    ``style=""`` on the fields, which htmx would settle onto the next form swapped in (a CSP violation)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), caret="initial")


def open_modal(page):
    """Open the model's modal and wait until it has settled (its autofocus field focused: scrolled to)."""
    page.locator(f'.model-name[data-model-name="{NAME}"]').click()
    dialog = page.locator("#model-modal")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#modal-title")).to_have_text(NAME)
    expect(dialog.locator("#field-compatibility_status")).to_be_focused()
    return dialog


def test_the_copy_picked_is_the_copy_checked_and_the_copy_a_load_read_is_named(page, machine):
    server, copies = machine
    lmstudio = copies["lmstudio"]
    page.goto("/")
    dialog = open_modal(page)
    section = dialog.locator("#preflight")
    picker = section.get_by_label("Check copy")
    expect(picker.locator("option")).to_have_text(
        ["safetensors, HF cache (default)", "GGUF Q4_0, LM Studio", "GGUF Q8_0, Ollama"])
    expect(section.locator(".preflight-copy")).to_have_text("Checked: safetensors, HF cache")
    expect(section.locator(".preflight-verdict")).to_have_text("fits")
    weights = section.locator('tr[data-term="weights"]')
    expect(weights).to_contain_text("as float32 (the checkpoint's)")

    page.sent = []
    page.on("request", lambda request: page.sent.append(request.url))
    picker.select_option(label="GGUF Q4_0, LM Studio")
    expect(section.locator(".preflight-copy")).to_have_text("Checked: GGUF Q4_0, LM Studio")
    expect(section.locator(".preflight-copy .copy-read")).to_have_attribute(
        "title", f"LM Studio: {NAME}/tiny-qwen2.Q4_0.gguf\n{lmstudio['path']}")
    expect(section.locator(".preflight-verdict")).to_have_text("fits")
    expect(weights).to_contain_text("dequantized from GGUF Q4_0 to float32")  # that file's header was read
    expect(section.locator(".preflight-basis")).to_contain_text("For the saved load config")
    expect(picker).to_have_value(str(lmstudio["id"]))  # the section came back with the pick kept
    (sent,) = [url for url in page.sent if "/preflight" in url]  # one request: the copy, with the editor's text
    assert f"copy_id={lmstudio['id']}" in sent and "load_config=" in sent

    # Typing in the editor checks the text being typed against the copy picked, not the default's.
    page.sent.clear()
    dialog.locator("#field-load_config").fill('{"dtype": "float16"}')
    expect(section.locator(".preflight-basis")).to_contain_text("not saved yet")
    expect(section.locator(".preflight-copy")).to_have_text("Checked: GGUF Q4_0, LM Studio")
    expect(section.get_by_label("Check copy")).to_have_value(str(lmstudio["id"]))
    assert any(f"copy_id={lmstudio['id']}" in url for url in page.sent if "/preflight" in url)
    dialog.locator("#field-load_config").fill("")
    expect(section.locator(".preflight-basis")).to_contain_text("For the saved load config")
    section.evaluate("element => element.scrollIntoView({block: 'start'})")
    shot(page, "verdict-copy-preflight")

    # Load that file (Copies on disk's button for its row), then the modal again: this host's row names it.
    dialog.locator(f'tr[data-copy-id="{lmstudio["id"]}"]').get_by_role("button", name="Load this copy").click()
    expect(dialog).not_to_be_visible()
    qwen = page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{NAME}"]'))
    expect(qwen.locator(".loaded-badge")).to_have_text("Loaded", timeout=LOAD_TIMEOUT_MS)
    dialog = open_modal(page)
    here = dialog.locator(".where-row.where-here")
    expect(here.locator(".status-badge")).to_have_text("compatible")
    expect(here.locator(".copy-read")).to_have_text("GGUF Q4_0, LM Studio")
    expect(here.locator(".copy-read")).to_have_attribute("title", f"LM Studio: {NAME}/tiny-qwen2.Q4_0.gguf\n{lmstudio['path']}")
    dialog.locator("#where-it-loads").evaluate("element => element.scrollIntoView({block: 'start'})")
    shot(page, "verdict-copy-where-it-loads")
    page.keyboard.press("Escape")
    qwen.get_by_role("button", name="Unload").click()
    expect(qwen.get_by_role("button", name="Load", exact=True)).to_be_visible()
