"""The Compare tab in a real browser: the table sorts by its headers without a reload, and the chart
shows one dot per model with both values, each with its hover text."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.slow

MODELS = [
    ("microsoft/phi-2", "degraded", 56.7, 48.0, "None"),
    ("microsoft/Phi-3-mini-4k-instruct", "compatible", 68.8, 35.5, "GGUF Q4_K_M"),
    ("gpt2", "compatible", 26.0, 310.0, None),
    ("Qwen/Qwen2.5-0.5B", "incompatible", 47.5, 150.0, None),
    ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "testing", 25.3, 220.0, "AWQ"),
    ("meta-llama/Llama-3.2-1B", "unknown", 49.3, 120.0, None),
]


@pytest.fixture
def models(registry):
    for name, status, mmlu, throughput, quantization in MODELS:
        registry.add(model_name=name, compatibility_status=status, mmlu_score=mmlu, max_throughput_tokens_sec=throughput,
                     quantization=quantization, gpqa_score=round(mmlu / 2, 1), avg_latency_ms=throughput / 3)
    registry.add(model_name="org/no-scores-yet")


def test_compare_tab_sorts_by_header_and_charts_every_model(page, models):
    page.goto("/")
    page.get_by_role("link", name="Compare").click()
    expect(page).to_have_url(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/compare")
    expect(page.locator('.tab[aria-current="page"]')).to_have_text("Compare")
    page.evaluate("window.__sameDocument = true")

    names = page.locator(".compare-name")
    expect(names).to_have_count(7)
    expect(names.first).to_have_text("gpt2")
    page.locator("thead a", has_text="MMLU").click()
    expect(names.first).to_have_text("microsoft/Phi-3-mini-4k-instruct")
    assert "sort=-mmlu_score" in page.url
    page.locator("thead a", has_text="MMLU").click()
    expect(names.first).to_have_text("TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    expect(names.last).to_have_text("org/no-scores-yet")  # empty values last either way
    assert page.evaluate("window.__sameDocument") is True  # never a full page load

    points = page.locator("svg.chart circle.point")
    expect(points).to_have_count(6)
    gpt2 = page.locator("svg.chart circle.point", has=page.locator("title", has_text="gpt2 ·"))
    expect(gpt2.locator("title")).to_have_text("gpt2 · MMLU 26 · 310 tok/s · compatible")
    gpt2.hover()
    screenshot(page, "compare-page")

    page.select_option("#chart-x", "gpqa_score")
    expect(page.locator("svg.chart .axis-title").first).to_have_text("GPQA score")
    expect(points).to_have_count(6)
    assert "x=gpqa_score" in page.url and "sort=mmlu_score" in page.url  # the sort survives
    page.select_option("#filter-status", "compatible")
    expect(points).to_have_count(2)
    expect(names).to_have_count(2)
    assert page.evaluate("window.__sameDocument") is True


def test_empty_chart_state(page, registry):
    registry.add(model_name="org/only-mmlu", mmlu_score=50.0)
    page.goto("/compare")
    expect(page.locator(".chart-empty")).to_have_text("No model has both MMLU and a throughput yet.")
    expect(page.locator(".compare-name")).to_have_text(["org/only-mmlu"])
