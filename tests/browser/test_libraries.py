"""Where a model's copies live, as the user sees it in Chromium: each card's badges name the tools
holding it (HF cache, LM Studio, Ollama, ...) with the formats there; the list beside Rescan gives each
library's root with its copies and bytes; the modal's "Copies on disk" names each copy's library, root,
the tool's own name, format, parameters and context, and "Load this copy" loads the one chosen; "Make
default" makes a copy the one the card's plain Load reads."""

import sqlite3

import pytest
from playwright.sync_api import expect

from modelhub.app import create_app
from tests.browser.conftest import ARTIFACTS, screenshot, watched_page
from tests.support import LiveServer
from tests.views import library_copies
from tests.views.library_copies import GGUF_ONLY, NAME

pytestmark = pytest.mark.slow
LOAD_TIMEOUT_MS = 120_000  # a load starts a Python process that imports torch: seconds on 2 cores, more under a full CI


@pytest.fixture
def machine(tmp_path, tiny_models, monkeypatch):
    """A server on a machine whose TinyLlama is in the HF cache, a secondary folder (both real, loadable
    folders), LM Studio (two quantizations, one hard-linked into text-generation-webui), Ollama and
    (gone since) text-generation-webui; and a SmolLM only LM Studio has."""
    libraries = library_copies.build(tmp_path / "machine", llama=tiny_models["llama"])
    monkeypatch.setenv("HOME", str(tmp_path / "machine"))  # the tools' libraries in their default places
    monkeypatch.setenv("HF_HUB_CACHE", str(libraries.hub))
    monkeypatch.setenv("MODELHUB_SECONDARY_CACHE", str(libraries.folder))
    server = LiveServer(tmp_path / "home")
    server.start()
    app = create_app({"SQLALCHEMY_DATABASE_URI": server.database_url}, web=False)
    with app.app_context():
        libraries.ids = library_copies.record(libraries)
        app.extensions["sqlalchemy"].engine.dispose()
    yield server, libraries
    server.stop()


@pytest.fixture
def page(browser, machine):
    with watched_page(browser, machine[0].url) as page:
        yield page


def modal_shot(page, name: str) -> None:
    """A screenshot of the open modal that leaves the page as it was: Playwright hides the caret by
    setting each field's style and leaves ``style=""`` behind, which htmx copies onto the fields of the
    next form swapped in (attributesToSettle): an inline style the page's CSP then refuses."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), caret="initial")


def card(page, name):
    return page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{name}"]'))


def test_the_models_page_shows_where_each_model_lives(page, machine):
    _, libraries = machine
    page.goto("/")
    tiny = card(page, NAME)
    expect(tiny.locator(".copy-badge")).to_have_text([
        "HF cache safetensors", "LM Studio GGUF Q4_K_M, Q8_0", "Ollama GGUF Q4_0",
        "text-generation-webui GGUF Q5_K_M missing", "Folder safetensors"])
    expect(tiny.locator(".copy-badge.library-ollama")).to_have_attribute(
        "title", "Ollama: tinyllama:latest, tinyllama:1.1b")
    expect(card(page, GGUF_ONLY).locator(".copy-badge")).to_have_text(["LM Studio GGUF Q8_0"])

    roots = page.locator(".library-roots")
    expect(roots.locator("summary")).to_contain_text(
        "Libraries: HF cache 1 · Folder 1 · LM Studio 3 · Ollama 1 · text-generation-webui 0 +1 linked")
    roots.locator("summary").click()
    rows = roots.locator(".root-row")
    expect(rows).to_have_count(5)
    lmstudio = roots.locator(".library-row-lmstudio")
    expect(lmstudio).to_contain_text("~/.lmstudio/models")
    expect(lmstudio).to_contain_text("3")
    expect(lmstudio).to_contain_text("1.8 GiB")  # 638 + 1117 + 138 MiB
    expect(roots.locator(".library-row-text-generation-webui")).to_contain_text("+1 missing")
    screenshot(page, "libraries-models-page")


def test_the_modal_shows_each_copys_location_and_loads_the_one_chosen(page, machine):
    server, libraries = machine
    page.goto("/")
    page.locator(f'.model-name[data-model-name="{NAME}"]').click()
    table = page.locator(".copies-table")
    expect(table.locator("tbody tr")).to_have_count(6)
    hub, q4, q8, ollama, gone, folder = (table.locator(f'tr[data-copy-id="{i}"]') for i in libraries.ids[NAME])
    expect(hub.locator(".copy-where")).to_contain_text("HF cache")
    expect(hub.locator(".copy-where")).to_contain_text("primary: ~/hf/hub")
    expect(q4.locator(".copy-where")).to_contain_text("LM Studio")
    expect(q4.locator(".copy-label")).to_have_text(
        "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf")
    expect(q4.locator(".copy-format")).to_contain_text("GGUF Q4_K_M")
    expect(q4.locator(".copy-format")).to_contain_text("1.1B parameters · 2,048 context")
    expect(q4.locator(".copy-alias")).to_have_text(
        "also linked from text-generation-webui: ~/text-generation-webui/user_data/models/"
        "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf")
    expect(ollama.locator(".copy-label")).to_have_text("tinyllama:latest, tinyllama:1.1b")
    expect(gone.locator(".copy-state")).to_contain_text("missing")
    expect(gone.get_by_role("button", name="Load this copy")).to_have_count(0)
    expect(folder.locator(".copy-where")).to_contain_text("Folder")
    table.evaluate("table => table.scrollIntoView({block: 'start'})")  # the form's autofocus scrolled below it
    screenshot(page, "libraries-modal-copies", full_page=False)

    # The secondary folder's copy, not the HF cache's (the model's cache_path): the run records which.
    folder.get_by_role("button", name="Load this copy").click()
    expect(page.locator("#model-modal")).not_to_be_visible()
    tiny = card(page, NAME)
    expect(tiny.locator(".loaded-badge")).to_have_text("Loaded", timeout=LOAD_TIMEOUT_MS)
    with sqlite3.connect(server.home / "models.db") as connection:
        (copy_path,) = connection.execute("SELECT copy_path FROM load_attempt").fetchone()
    assert copy_path == str(libraries.folder / "TinyLlama-1.1B-Chat-v1.0")
    screenshot(page, "libraries-copy-loaded")
    tiny.get_by_role("button", name="Unload").click()
    expect(tiny.get_by_role("button", name="Load", exact=True)).to_be_visible()


def test_make_default_moves_the_mark_and_the_cards_load_reads_that_copy(page, machine):
    server, libraries = machine
    page.goto("/")
    tiny = card(page, NAME)
    expect(tiny.locator(".cache-location")).to_have_text("primary")
    page.locator(f'.model-name[data-model-name="{NAME}"]').click()
    table = page.locator(".copies-table")
    hub, q4, q8, ollama, gone, folder = (table.locator(f'tr[data-copy-id="{i}"]') for i in libraries.ids[NAME])
    expect(table.locator(".copy-default")).to_have_count(1)
    expect(hub.locator(".copy-default")).to_have_text("used by Load")
    expect(hub.get_by_role("button", name="Make default")).to_have_count(0)
    expect(gone.get_by_role("button", name="Make default")).to_have_count(0)  # a missing copy cannot be chosen

    # "Will it load here?" checks the copy Load now reads: the section asks again (for the editor's text).
    with page.expect_request(lambda request: request.url.split("?")[0].endswith(f"/models/{NAME}/preflight")):
        folder.get_by_role("button", name="Make default").click()
    expect(folder.locator(".copy-default")).to_have_text("used by Load")
    expect(table.locator(".copy-default")).to_have_count(1)
    expect(hub.get_by_role("button", name="Make default")).to_be_visible()
    expect(table.locator(".copies-note")).to_have_text("Load now reads this model from Folder: TinyLlama-1.1B-Chat-v1.0.")
    folder_path = str(libraries.folder / "TinyLlama-1.1B-Chat-v1.0")
    expect(page.locator(".readonly .cache-location")).to_have_text(f"secondary — {folder_path}")
    expect(tiny.locator(".cache-location")).to_have_text("secondary")  # the card behind the modal follows
    expect(page.locator("#model-modal")).to_be_visible()
    table.evaluate("table => table.scrollIntoView({block: 'start'})")
    modal_shot(page, "libraries-make-default")

    # The form's next Save is guarded by the version Make default made, not refused as someone else's edit.
    page.locator("#field-compatibility_notes").fill("loads from the second disk")
    page.get_by_role("button", name="Save All Changes").click()
    expect(page.locator("#model-modal")).not_to_be_visible()
    tiny = card(page, NAME)
    tiny.get_by_role("button", name="Load", exact=True).click()  # no copy chosen: the default one
    expect(tiny.locator(".loaded-badge")).to_have_text("Loaded", timeout=LOAD_TIMEOUT_MS)
    with sqlite3.connect(server.home / "models.db") as connection:
        (copy_path,) = connection.execute("SELECT copy_path FROM load_attempt").fetchone()
        notes, cache_path = connection.execute(
            "SELECT compatibility_notes, cache_path FROM modelregistry WHERE model_name = ?", (NAME,)).fetchone()
    assert copy_path == folder_path
    assert (notes, cache_path) == ("loads from the second disk", folder_path)
    tiny.get_by_role("button", name="Unload").click()
    expect(tiny.get_by_role("button", name="Load", exact=True)).to_be_visible()


@pytest.fixture
def scanned_machine(tmp_path, monkeypatch, gguf_model_files):
    """A real machine's layout, for Rescan to find: a tiny Qwen2 in the HF cache (safetensors), its Q8_0
    GGUF in LM Studio (hard-linked into text-generation-webui's models), its Q4_0 pulled by Ollama from
    the hub (``hf.co/tiny-org/qwen2:Q4_0``); every library in its default place under the home folder."""
    from tests.discovery.trees import add_hub_repo, add_lmstudio, add_ollama, place, read_files, textgen_install

    home = tmp_path / "machine"
    files = gguf_model_files.files
    hub = home / ".cache" / "huggingface" / "hub"
    add_hub_repo(hub, "tiny-org/qwen2", read_files(gguf_model_files.source))
    lmstudio = add_lmstudio(home / ".lmstudio" / "models", "tiny-org/qwen2", "tiny-qwen2.Q8_0.gguf", files["Q8_0"])
    blob = add_ollama(home / ".ollama" / "models", "hf.co/tiny-org/qwen2:Q4_0", files["Q4_0"])
    linked = place(lmstudio, textgen_install(home / "text-generation-webui") / lmstudio.name, "hardlink")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MODELHUB_LIBRARIES", "lmstudio,ollama,text-generation-webui")  # the default (tests say none)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    server = LiveServer(tmp_path / "home")
    server.start()
    yield server, {"hub": hub, "lmstudio": lmstudio, "blob": blob, "linked": linked}
    server.stop()


def test_rescan_finds_the_libraries_and_a_chosen_gguf_copy_loads(browser, scanned_machine):
    server, paths = scanned_machine
    context = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=server.url)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto("/")
    page.get_by_role("button", name="Rescan").click()
    expect(page.locator("#scan-status")).to_contain_text("Scan done: 1 new model", timeout=30_000)
    expect(page.locator(".library-roots summary")).to_contain_text(
        "Libraries: HF cache 1 · LM Studio 1 · Ollama 1 · text-generation-webui 0 +1 linked")
    qwen = card(page, "tiny-org/qwen2")
    expect(qwen.locator(".copy-badge")).to_have_text(["HF cache safetensors", "LM Studio GGUF Q8_0", "Ollama GGUF Q4_0"])
    screenshot(page, "libraries-rescanned")

    page.locator('.model-name[data-model-name="tiny-org/qwen2"]').click()
    table = page.locator(".copies-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    ollama = table.locator("tr", has=page.locator(".copy-badge.library-ollama"))
    expect(ollama.locator(".copy-label")).to_have_text("hf.co/tiny-org/qwen2:Q4_0")
    expect(ollama.locator(".copy-where")).to_contain_text("~/.ollama/models")
    lmstudio = table.locator("tr", has=page.locator(".copy-badge.library-lmstudio"))
    expect(lmstudio.locator(".copy-alias")).to_contain_text(
        "also linked from text-generation-webui: ~/text-generation-webui/user_data/models/tiny-qwen2.Q8_0.gguf")
    expect(lmstudio.locator(".copy-format")).to_contain_text("GGUF Q8_0")
    table.evaluate("table => table.scrollIntoView({block: 'start'})")
    modal_shot(page, "libraries-rescanned-modal")

    ollama.get_by_role("button", name="Load this copy").click()
    expect(qwen.locator(".loaded-badge")).to_have_text("Loaded", timeout=LOAD_TIMEOUT_MS)
    with sqlite3.connect(server.home / "models.db") as connection:
        (copy_path, report) = connection.execute("SELECT copy_path, load_report FROM load_attempt").fetchone()
    assert copy_path == str(paths["blob"])
    assert '"gguf"' in report and "Q4_0" in report
    page.locator('.model-name[data-model-name="tiny-org/qwen2"]').click()  # the modal says which copy it loaded
    attempt = page.locator(".attempts-table tbody tr").first
    expect(attempt.locator(".attempt-copy")).to_have_text("From Ollama: hf.co/tiny-org/qwen2:Q4_0")
    expect(attempt.locator(".attempt-loaded-as")).to_contain_text("GGUF Q4_0, dequantized to")
    attempt.scroll_into_view_if_needed()
    screenshot(page, "libraries-loaded-copy-attempt", full_page=False)
    page.keyboard.press("Escape")
    qwen.get_by_role("button", name="Unload").click()
    expect(qwen.get_by_role("button", name="Load", exact=True)).to_be_visible()
    context.close()
    assert not errors, errors
