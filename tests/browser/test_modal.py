"""The model details modal in a real browser: the four use cases of the details modal done by clicking and typing,
validation in the browser and on the server, concurrent edits, dialog behaviour and escaping."""

import json

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.slow


def open_modal(page, name: str):
    page.locator(f'.model-name[data-model-name="{name}"]').click()
    dialog = page.locator("#model-modal")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#modal-title")).to_have_text(name)
    return dialog


def save(page):
    page.get_by_role("button", name="Save All Changes").click()


def card(page, name):
    return page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{name}"]'))


def mark_document(page):
    """A marker that survives only as long as the page is not reloaded."""
    page.evaluate("window.__sameDocument = true")


def assert_not_reloaded(page):
    assert page.evaluate("window.__sameDocument") is True


# ---- the details modal's use cases --------------------------------------------------------------------

def test_use_case_fix_incompatible_model(page, registry):
    registry.add(model_name="microsoft/phi-2", compatibility_status="incompatible")
    page.goto("/")
    mark_document(page)
    open_modal(page, "microsoft/phi-2")

    page.get_by_label("Compatibility Status").select_option("degraded")
    page.get_by_label("Compatibility Notes").fill("CreateContext fails on first load, works on retry")
    page.get_by_label("Custom Load Configuration (JSON)").fill('{\n    "attn_implementation": "eager"\n}')
    save(page)

    expect(page.locator("#model-modal")).to_be_hidden()
    expect(card(page, "microsoft/phi-2").locator(".status-badge")).to_have_text("degraded")
    assert_not_reloaded(page)
    row = registry.row("microsoft/phi-2")
    assert row["compatibility_status"] == "degraded"
    assert row["compatibility_notes"] == "CreateContext fails on first load, works on retry"
    assert json.loads(row["load_config"]) == {"attn_implementation": "eager"}


def test_use_case_document_benchmark_scores(page, registry):
    registry.add(model_name="microsoft/phi-2")
    page.goto("/")
    mark_document(page)
    open_modal(page, "microsoft/phi-2")

    page.get_by_text("📊 Benchmark Metrics").click()
    page.get_by_label("MMLU").fill("72.5")
    page.get_by_label("HumanEval").fill("45.2")
    page.get_by_label("Max Throughput").fill("38.7")
    page.get_by_label("Avg Latency TTFT").fill("125.3")
    page.get_by_label("Quantization").fill("GGUF Q4_K_M")
    screenshot(page, "modal-open", full_page=False)
    save(page)

    expect(page.locator("#model-modal")).to_be_hidden()
    expect(card(page, "microsoft/phi-2").locator(".metric-badge")).to_have_text(
        ["MMLU 72.5", "HumanEval 45.2", "38.7 tok/s", "TTFT 125.3 ms", "GGUF Q4_K_M"]
    )
    assert_not_reloaded(page)
    row = registry.row("microsoft/phi-2")
    assert [row[k] for k in ("mmlu_score", "humaneval_score", "max_throughput_tokens_sec", "avg_latency_ms")] == [
        72.5, 45.2, 38.7, 125.3,
    ]
    assert row["quantization"] == "GGUF Q4_K_M"
    assert row["gpqa_score"] is None  # fields left empty stay empty


def test_use_case_reset_failed_model(page, registry):
    registry.add(
        model_name="microsoft/phi-2", compatibility_status="incompatible",
        compatibility_notes="CreateContext fail", load_config='{"attn_implementation": "eager"}',
    )
    page.goto("/")
    open_modal(page, "microsoft/phi-2")

    page.get_by_label("Compatibility Status").select_option("unknown")
    page.get_by_label("Compatibility Notes").fill("")
    save(page)

    expect(card(page, "microsoft/phi-2").locator(".status-badge")).to_have_text("unknown")
    expect(card(page, "microsoft/phi-2").locator(".model-notes")).to_have_count(0)
    row = registry.row("microsoft/phi-2")
    assert row["compatibility_status"] == "unknown"
    assert row["compatibility_notes"] is None
    assert row["load_config"] == '{"attn_implementation": "eager"}'  # untouched


def test_use_case_wsl_rocm_workaround(page, registry):
    registry.add(model_name="microsoft/phi-2")
    page.goto("/")
    open_modal(page, "microsoft/phi-2")

    config = '{\n    "attn_implementation": "eager",\n    "torch_dtype": "bfloat16",\n    "device_map": "auto"\n}'
    page.get_by_label("Custom Load Configuration (JSON)").fill(config)
    page.get_by_label("Compatibility Notes").fill("ROCm WSL workaround - force eager attention")
    page.get_by_label("Compatibility Status").select_option("compatible")
    save(page)

    expect(card(page, "microsoft/phi-2").locator(".status-badge")).to_have_text("compatible")
    expect(card(page, "microsoft/phi-2").locator(".model-notes")).to_have_text("ROCm WSL workaround - force eager attention")
    row = registry.row("microsoft/phi-2")
    assert row["compatibility_status"] == "compatible"
    assert row["compatibility_notes"] == "ROCm WSL workaround - force eager attention"
    assert row["load_config"] == config  # exactly as typed


# ---- validation ----------------------------------------------------------------------------------

def test_invalid_json_is_blocked_in_the_browser(page, registry):
    registry.add(model_name="microsoft/phi-2", compatibility_status="degraded")
    before = registry.row("microsoft/phi-2")
    page.goto("/")
    open_modal(page, "microsoft/phi-2")
    page.get_by_label("Compatibility Status").select_option("compatible")
    page.get_by_label("Custom Load Configuration (JSON)").fill('{"attn_implementation": eager}')
    save(page)

    error = page.locator("#error-load_config")
    expect(error).to_have_text("Invalid JSON in Load Configuration field")
    expect(error).to_be_visible()
    expect(page.locator("#model-modal")).to_be_visible()
    expect(page.get_by_label("Custom Load Configuration (JSON)")).to_be_focused()
    assert page.watch.writes() == []  # nothing was sent
    assert registry.row("microsoft/phi-2") == before


def test_server_side_error_shows_next_to_its_field_and_keeps_what_was_typed(page, registry):
    registry.add(model_name="microsoft/phi-2")
    before = registry.row("microsoft/phi-2")
    page.goto("/")
    open_modal(page, "microsoft/phi-2")
    page.get_by_label("Compatibility Notes").fill("typed before the error")
    page.get_by_text("📊 Benchmark Metrics").click()
    page.get_by_label("MMLU").fill("150")
    save(page)

    error = page.locator("#error-mmlu_score")
    expect(error).to_have_text("Must be greater than or equal to 0 and less than or equal to 100.")
    expect(page.get_by_label("MMLU")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#model-modal")).to_be_visible()
    expect(page.get_by_label("Compatibility Notes")).to_have_value("typed before the error")
    expect(page.get_by_label("MMLU")).to_have_value("150")
    assert [m for m, _ in page.watch.writes()] == ["PATCH"]
    assert registry.row("microsoft/phi-2") == before  # atomic: the notes were not saved either
    screenshot(page, "modal-server-error", full_page=False)

    page.get_by_label("MMLU").fill("72.5")
    save(page)
    expect(page.locator("#model-modal")).to_be_hidden()
    assert registry.row("microsoft/phi-2")["compatibility_notes"] == "typed before the error"


def test_someone_elses_change_is_reported_and_can_be_reloaded(page, registry):
    registry.add(model_name="microsoft/phi-2")
    page.goto("/")
    open_modal(page, "microsoft/phi-2")
    registry.patch("microsoft/phi-2", compatibility_notes="changed in another tab")

    page.get_by_label("Compatibility Status").select_option("compatible")
    save(page)

    banner = page.locator(".form-banner")
    expect(banner).to_contain_text("Someone else changed this model since you opened it")
    assert registry.row("microsoft/phi-2")["compatibility_status"] == "unknown"
    banner.get_by_role("button", name="Reload it (discards your edits)").click()
    expect(page.get_by_label("Compatibility Notes")).to_have_value("changed in another tab")
    page.get_by_label("Compatibility Status").select_option("compatible")
    save(page)
    expect(page.locator("#model-modal")).to_be_hidden()
    row = registry.row("microsoft/phi-2")
    assert (row["compatibility_status"], row["compatibility_notes"]) == ("compatible", "changed in another tab")


# ---- the dialog ------------------------------------------------------------------------------------

def test_console_shows_the_seed_troubleshooting_lines(page, registry):
    registry.add(model_name="microsoft/phi-2", mmlu_score=56.7)
    page.goto("/")
    open_modal(page, "microsoft/phi-2")
    expect(page.get_by_label("Compatibility Status")).to_be_focused()

    logs = [m for m in page.watch.console if m.type == "log"]
    assert [m.text.split(":")[0] for m in logs] == [
        "showEditDetailsModal called for", "Found model", "Modal should now be visible",
    ]
    assert logs[0].text == "showEditDetailsModal called for: microsoft/phi-2"
    found = logs[1].args[1].json_value()
    assert found["model_name"] == "microsoft/phi-2" and found["mmlu_score"] == 56.7


@pytest.mark.parametrize("how", ["escape", "close button", "cancel button", "outside click"])
def test_closing_without_saving_changes_nothing_and_returns_focus(page, registry, how):
    registry.add(model_name="microsoft/phi-2")
    before = registry.row("microsoft/phi-2")
    page.goto("/")
    dialog = open_modal(page, "microsoft/phi-2")
    page.get_by_label("Compatibility Notes").fill("not to be saved")

    def close():
        if how == "escape":
            page.keyboard.press("Escape")
        elif how == "close button":
            page.get_by_role("button", name="Close").click()
        elif how == "cancel button":
            page.get_by_role("button", name="Cancel").click()
        else:
            page.mouse.click(5, 450)  # on the backdrop, left of the dialog

    # Unsaved changes: the first close asks in the modal (tests/browser/test_drafts.py), a second one closes.
    close()
    expect(page.locator(".unsaved-bar")).to_be_visible()
    expect(dialog).to_be_visible()
    close()
    expect(dialog).to_be_hidden()
    expect(page.locator('.model-name[data-model-name="microsoft/phi-2"]')).to_be_focused()
    assert page.watch.writes() == []
    assert registry.row("microsoft/phi-2") == before


def test_a_click_inside_the_dialog_does_not_close_it(page, registry):
    registry.add(model_name="microsoft/phi-2")
    page.goto("/")
    dialog = open_modal(page, "microsoft/phi-2")
    page.get_by_text("Model Information").click()
    expect(dialog).to_be_visible()


def test_usable_by_keyboard_alone(page, registry):
    registry.add(model_name="microsoft/phi-2")
    page.goto("/")
    page.get_by_role("button", name="Rescan").focus()
    page.keyboard.press("Tab")  # the scan's list of libraries (its summary opens it)
    expect(page.locator(".library-roots > summary")).to_be_focused()
    page.keyboard.press("Tab")  # the first model name
    expect(page.locator('.model-name[data-model-name="microsoft/phi-2"]')).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#model-modal")).to_be_visible()
    expect(page.get_by_label("Compatibility Status")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.type("typed with the keyboard")
    for _ in range(40):  # tab on to the save button
        if page.evaluate("document.activeElement.textContent") == "Save All Changes":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#model-modal")).to_be_hidden()
    assert registry.row("microsoft/phi-2")["compatibility_notes"] == "typed with the keyboard"


def test_every_field_has_a_label_and_the_seed_sections(page, registry, tmp_path):
    model_dir = tmp_path / "models" / "phi-2"
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text('{"model_type": "phi"}')
    registry.add(model_name="microsoft/phi-2", cache_location="custom", cache_path=str(model_dir))
    page.goto("/")
    dialog = open_modal(page, "microsoft/phi-2")
    unlabeled = dialog.locator("input, select, textarea").evaluate_all(
        "(els) => els.filter((e) => e.labels.length === 0).map((e) => e.name)"
    )
    assert unlabeled == []
    expect(dialog.locator(".readonly")).to_contain_text("HuggingFace Path")
    expect(dialog.locator(".readonly .cache-location")).to_have_text(f"custom — {model_dir}")
    options = page.get_by_label("Compatibility Status").locator("option").evaluate_all("(o) => o.map((e) => e.value)")
    assert options == ["unknown", "compatible", "incompatible", "degraded", "testing"]
    # An empty config reads as the system defaults, not as a made-up config (issue 16).
    assert page.get_by_label("Custom Load Configuration (JSON)").get_attribute("placeholder") == (
        "Using system defaults (empty = no custom settings)")
    metrics = dialog.locator("details.metrics")
    expect(metrics).not_to_have_attribute("open", "")
    expect(metrics.locator("summary")).to_have_text("📊 Benchmark Metrics")
    for label, hint in [("MMLU", "General knowledge"), ("Perplexity", "Fluency (lower is better, no max)"),
                        ("Avg Latency TTFT", "Time to first token (milliseconds)")]:
        field = dialog.locator(".field", has=page.get_by_label(label, exact=True))
        expect(field.locator(".hint")).to_have_text(hint)


# ---- escaping ----------------------------------------------------------------------------------------

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def test_user_text_is_shown_as_text_never_run(page, registry):
    registry.add(model_name="microsoft/phi-2", compatibility_notes=XSS, quantization='<b onmouseover="x">Q4</b>')
    page.goto("/")
    notes = card(page, "microsoft/phi-2").locator(".model-notes")
    expect(notes).to_have_text(XSS)
    expect(card(page, "microsoft/phi-2").locator(".metric-badge")).to_have_text(['<b onmouseover="x">Q4</b>'])
    open_modal(page, "microsoft/phi-2")
    expect(page.get_by_label("Compatibility Notes")).to_have_value(XSS)
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("window.__xss") is None


# ---- htmx -------------------------------------------------------------------------------------------

def test_the_modal_opens_and_the_card_refreshes_through_htmx(page, registry):
    registry.add(model_name="microsoft/phi-2")
    sent = []
    page.on("request", lambda request: sent.append((request.method, request.url, request.headers)))
    page.goto("/?q=phi")  # a filter on the page: the name button must not send it along
    open_modal(page, "microsoft/phi-2")
    page.get_by_label("Compatibility Notes").fill("saved through the API, card through htmx")
    save(page)
    expect(card(page, "microsoft/phi-2").locator(".model-notes")).to_have_text("saved through the API, card through htmx")

    details = [(m, url, h) for m, url, h in sent if "/details" in url]
    assert [(m, url) for m, url, _ in details] == [("GET", f"{registry.server.url}/models/microsoft/phi-2/details")]
    assert details[0][2].get("hx-request") == "true" and details[0][2].get("hx-target") == "modal-body"
    patch = [(url, h) for m, url, h in sent if m == "PATCH"]
    assert [url for url, _ in patch] == [f"{registry.api}/microsoft/phi-2"]
    assert patch[0][1]["content-type"] == "application/json" and patch[0][1]["if-match"].startswith('"')
    cards = [h for m, url, h in sent if url.endswith("/microsoft/phi-2/card")]
    assert len(cards) == 1 and cards[0].get("hx-request") == "true"
    expect(page.locator('.model-name[data-model-name="microsoft/phi-2"]')).to_be_focused()


def test_a_model_that_cannot_be_loaded_is_reported_and_no_modal_opens(page, registry):
    registry.add(model_name="microsoft/phi-2")
    page.goto("/")
    assert requests.delete(f"{registry.api}/microsoft/phi-2", timeout=5).status_code == 204
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    page.locator('.model-name[data-model-name="microsoft/phi-2"]').click()

    for _ in range(100):
        if alerts:
            break
        page.wait_for_timeout(100)
    assert alerts == ["Could not load microsoft/phi-2 (404). It may have been removed: reload the page."]
    errors = [m.text for m in page.watch.console if m.type == "error"]
    assert "Could not load model microsoft/phi-2 404" in errors
    expect(page.locator("#model-modal")).to_be_hidden()
    expect(page.locator("#flash")).to_be_hidden()  # the alert says it, not the flash above the page
