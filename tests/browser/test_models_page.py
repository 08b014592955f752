"""The Models page in a real browser: cards, badge colours, the clickable name, filters without reloads,
loading more, and the empty registry."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.slow

# The status badge colours: light background, dark text of the same hue.
BADGE_COLOURS = {
    "compatible": ("rgb(212, 237, 218)", "rgb(21, 87, 36)"),
    "incompatible": ("rgb(248, 215, 218)", "rgb(114, 28, 36)"),
    "degraded": ("rgb(255, 243, 205)", "rgb(133, 100, 4)"),
    "testing": ("rgb(204, 229, 255)", "rgb(0, 64, 133)"),
    "unknown": ("rgb(226, 227, 229)", "rgb(56, 61, 65)"),
}


def style(locator, prop: str) -> str:
    return locator.evaluate(f"(el) => getComputedStyle(el).{prop}")


def card(page, name):
    return page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{name}"]'))


@pytest.fixture
def five_models(registry):
    for status in BADGE_COLOURS:
        registry.add(model_name=f"org/{status}-model", compatibility_status=status)
    registry.add(model_name="microsoft/phi-2", compatibility_status="degraded", mmlu_score=56.7, quantization="None")


def test_each_status_badge_has_the_seed_colours(page, five_models):
    page.goto("/")
    for status, (background, text) in BADGE_COLOURS.items():
        badge = card(page, f"org/{status}-model").locator(".status-badge")
        expect(badge).to_have_text(status)
        assert style(badge, "backgroundColor") == background, status
        assert style(badge, "color") == text, status
    screenshot(page, "models-page")


def test_model_name_is_blue_and_reacts_to_hover(page, five_models):
    page.goto("/")
    name = page.locator('.model-name[data-model-name="microsoft/phi-2"]')
    assert style(name, "color") == "rgb(0, 123, 255)"
    assert style(name, "cursor") == "pointer"
    assert "underline" not in style(name, "textDecorationLine")

    name.hover()
    page.wait_for_timeout(300)  # the shift is animated
    assert style(name, "color") == "rgb(0, 86, 179)"
    assert "underline" in style(name, "textDecorationLine")
    transform = style(name, "transform")
    assert transform.startswith("matrix(") and float(transform.split(",")[4]) > 0  # shifted right


def test_card_shows_path_location_and_benchmark_badges(page, five_models):
    page.goto("/")
    phi = card(page, "microsoft/phi-2")
    expect(phi.locator(".hf-path")).to_have_text("microsoft/phi-2")
    expect(phi.locator(".cache-location")).to_have_text("primary")
    expect(phi.locator(".metric-badge")).to_have_text(["MMLU 56.7", "None"])
    expect(card(page, "org/unknown-model").locator(".metric-badge")).to_have_count(0)


def test_filter_search_and_sort_update_the_list_without_reloading(page, registry):
    registry.add(model_name="microsoft/phi-2", compatibility_status="degraded", mmlu_score=56.7)
    registry.add(model_name="microsoft/Phi-3-mini", compatibility_status="compatible", mmlu_score=68.8)
    registry.add(model_name="gpt2", compatibility_status="compatible", mmlu_score=26.0)
    registry.add(model_name="Qwen/Qwen2.5-0.5B", compatibility_status="incompatible")
    page.goto("/")
    page.evaluate("window.__sameDocument = true")
    names = page.locator(".model-name")
    expect(names).to_have_text(["gpt2", "microsoft/phi-2", "microsoft/Phi-3-mini", "Qwen/Qwen2.5-0.5B"])

    page.select_option("#filter-status", "compatible")
    expect(names).to_have_text(["gpt2", "microsoft/Phi-3-mini"])
    assert "status=compatible" in page.url

    page.fill("#filter-q", "phi")
    expect(names).to_have_text(["microsoft/Phi-3-mini"])

    page.select_option("#filter-status", "")
    page.select_option("#filter-sort", "-mmlu_score")
    expect(names).to_have_text(["microsoft/Phi-3-mini", "microsoft/phi-2"])

    page.fill("#filter-q", "nothing-like-this")
    expect(page.locator("#model-results")).to_contain_text("No models match these filters")
    assert page.evaluate("window.__sameDocument") is True  # never a full page load


def test_filtered_address_can_be_reloaded_and_shared(page, registry):
    registry.add(model_name="gpt2", compatibility_status="compatible")
    registry.add(model_name="distilgpt2", compatibility_status="incompatible")
    page.goto("/models?status=incompatible&q=gpt")
    expect(page.locator(".model-name")).to_have_text(["distilgpt2"])
    expect(page.locator("#filter-status")).to_have_value("incompatible")
    expect(page.locator("#filter-q")).to_have_value("gpt")


def test_long_lists_load_more_as_the_user_scrolls(page, registry):
    for i in range(120):
        registry.add(model_name=f"bulk/model-{i:03d}")
    page.goto("/")
    cards = page.locator(".model-card")
    expect(cards).to_have_count(50)
    expect(page.locator(".result-count")).to_have_text("120 models")
    page.locator(".load-more").scroll_into_view_if_needed()
    expect(cards).to_have_count(100)
    page.locator(".load-more").scroll_into_view_if_needed()
    expect(cards).to_have_count(120)
    expect(page.locator(".load-more")).to_have_count(0)
    expect(cards.last.locator(".model-name")).to_have_text("bulk/model-119")


def test_empty_registry_says_how_to_add_models(page):
    page.goto("/")
    empty = page.locator(".empty")
    expect(empty).to_contain_text("No models registered yet")
    expect(empty).to_contain_text("modelhub add microsoft/phi-2")
    expect(empty).to_contain_text("/api/models")
    screenshot(page, "models-page-empty")


def test_htmx_is_served_from_this_server(page, five_models):
    page.goto("/")
    scripts = page.locator("script[src]").evaluate_all("(els) => els.map((e) => e.src)")
    assert any("/static/vendor/htmx-2.0.11.min.js" in src for src in scripts)
    assert all(src.startswith(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2]) for src in scripts)
    assert page.evaluate("typeof htmx.version") == "string"
