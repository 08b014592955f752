"""The Import / Export tab in a real browser: download the registry, preview an import (nothing written),
apply it, see a bad file refused with its reasons; and the modal's compatibility report link."""

import json

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.slow

LOADED = {
    "started_at": "2026-11-02T09:30:00+00:00", "finished_at": "2026-11-02T09:30:41.5+00:00", "outcome": "success",
    "previous_status": "unknown", "load_config": '{"attn_implementation": "eager"}',
    "final_kwargs": {"attn_implementation": "eager"}, "smoke_test": {"output": "Hello"},
    "environment": {"torch": "2.13.0", "transformers": "5.24.0", "rocm": "6.2", "wsl": True,
                    "gpus": [{"index": 0, "name": "AMD Radeon RX 7900 XTX", "memory_bytes": 25753026560}]},
}
DOCUMENT = {"format": "modelhub-registry", "version": 1, "models": [
    {"model_name": "gpt2", "compatibility_notes": "Theirs.", "load_config": '{"dtype": "float32"}', "mmlu_score": 26.0,
     "metric_sources": {"mmlu_score": {"source": "card", "card": "README.md", "dataset": "MMLU", "metric": "acc"}}},
    {"model_name": "microsoft/phi-2", "compatibility_status": "compatible", "load_config": '{"attn_implementation": "eager"}',
     "compatibility_notes": "Needs eager attention on ROCm.", "mmlu_score": 56.7, "attempts": [LOADED]},
]}


@pytest.fixture
def files(tmp_path):
    good, bad = tmp_path / "registry.json", tmp_path / "broken.json"
    good.write_text(json.dumps(DOCUMENT))
    broken = json.loads(json.dumps(DOCUMENT))
    broken["models"][1]["mmlu_score"] = 156.7
    broken["models"].append({"model_name": "gpt2"})
    bad.write_text(json.dumps(broken))
    return good, bad


def test_preview_then_apply_an_import(page, registry, server, files):
    good, bad = files
    registry.add(model_name="gpt2", compatibility_notes="Mine.")
    page.goto("/")
    page.get_by_role("link", name="Import / Export").click()
    expect(page.locator('.tab[aria-current="page"]')).to_have_text("Import / Export")
    expect(page.locator("#export-summary")).to_contain_text("1 model (load configs")

    page.set_input_files("#import-file", str(bad))
    page.get_by_role("button", name="Preview import").click()
    errors = page.locator(".import-errors")
    expect(errors).to_contain_text("broken.json cannot be imported. Nothing was changed.")
    expect(errors.locator("li")).to_have_count(1)  # a duplicate is only checked once each model is valid
    expect(errors.locator("li")).to_have_text("models.1.mmlu_score: Must be greater than or equal to 0 and less than or equal to 100.")

    page.set_input_files("#import-file", str(good))
    page.get_by_role("button", name="Preview import").click()
    plan = page.locator(".import-plan")
    expect(plan.locator("h3")).to_have_text("Preview of registry.json: nothing has been changed yet")
    expect(plan.locator(".import-summary")).to_contain_text("Would add 1 model, update 1, 0 unchanged; 1 load attempt")
    expect(plan.locator(".plan-conflict")).to_have_text(
        "conflict on compatibility_notes: here “Mine.”, in the file “Theirs.”; keeping this registry's value")
    assert requests.get(f"{registry.api}/microsoft/phi-2", timeout=5).status_code == 404  # a preview writes nothing
    screenshot(page, "exchange-preview")

    page.get_by_role("button", name="Apply import").click()
    expect(plan.locator("h3")).to_have_text("Imported registry.json")
    expect(page.locator("#export-summary")).to_contain_text("2 models (load configs")  # the export panel follows
    gpt2 = requests.get(f"{registry.api}/gpt2", timeout=5).json()
    assert gpt2["compatibility_notes"] == "Mine." and gpt2["load_config"] == '{"dtype": "float32"}'
    assert gpt2["metric_sources"]["mmlu_score"]["source"] == "card"
    assert requests.get(f"{registry.api}/microsoft/phi-2", timeout=5).json()["compatibility_status"] == "compatible"
    screenshot(page, "exchange-applied")

    page.get_by_role("button", name="Preview import").click()  # the same file again
    expect(page.locator(".import-nothing")).to_have_text("Nothing to import: the registry already holds everything in this file.")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download registry export").click()
    exported = json.loads(download.value.path().read_text())
    assert [m["model_name"] for m in exported["models"]] == ["gpt2", "microsoft/phi-2"]
    assert not [m for m in page.watch.console if "Content Security Policy" in m.text]


def test_the_modal_offers_the_compatibility_report(page, registry, server, files):
    good, _ = files
    assert requests.post(f"{server.url}/api/import", data=good.read_bytes(), timeout=5,
                         headers={"Content-Type": "application/json"}).status_code == 200
    page.goto("/")
    page.locator(".model-name", has_text="gpt2").click()
    expect(page.locator("#model-modal .report-link")).to_contain_text("Once it loads successfully")
    page.locator("#model-modal [data-close-modal]").first.click()

    page.locator(".model-name", has_text="microsoft/phi-2").click()
    link = page.get_by_role("link", name="Download compatibility report")
    expect(link).to_be_visible()
    expect(page.locator("#model-modal .report-link")).to_contain_text("loaded with on 2026-11-02")
    screenshot(page, "exchange-report-link", full_page=False)
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "modelhub-report-microsoft--phi-2.json"
    report = json.loads(download.value.path().read_text())
    assert report["load_config"] == '{"attn_implementation": "eager"}'
    assert report["proven_on"]["environment"]["rocm"] == "6.2"
