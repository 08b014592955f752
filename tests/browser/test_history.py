"""The URL is the state: after several filter steps, Back and Forward restore the results and every
control of the filter bar (search box, status, sort; on Compare the sorted column and the chart's score),
on the Models and Compare pages, with no Content-Security-Policy violation (conftest.py fails the test on
one) and no script error (the ``page`` fixture fails it on one)."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

# name: (status, MMLU)
MODELS = {
    "meta-llama/Llama-2-7b-hf": ("compatible", 45.3),
    "meta-llama/Meta-Llama-3-8B": ("incompatible", 66.6),
    "TinyLlama/TinyLlama-1.1B-Chat": ("incompatible", 25.3),
    "openlm-research/open_llama_3b": ("degraded", 27.1),
    "microsoft/phi-2": ("incompatible", 56.7),
    "gpt2": ("compatible", 26.0),
}
LLAMAS_BY_NAME = ["meta-llama/Llama-2-7b-hf", "meta-llama/Meta-Llama-3-8B", "openlm-research/open_llama_3b",
                  "TinyLlama/TinyLlama-1.1B-Chat"]
LLAMAS_BY_MMLU = ["meta-llama/Meta-Llama-3-8B", "meta-llama/Llama-2-7b-hf", "openlm-research/open_llama_3b",
                  "TinyLlama/TinyLlama-1.1B-Chat"]
INCOMPATIBLE_LLAMAS_BY_MMLU = ["meta-llama/Meta-Llama-3-8B", "TinyLlama/TinyLlama-1.1B-Chat"]


@pytest.fixture
def models(registry):
    for name, (status, mmlu) in MODELS.items():
        registry.add(model_name=name, compatibility_status=status, mmlu_score=mmlu)


def models_page_shows(page, names, q, status, sort):
    """The cards and each control of the Models page's filter bar."""
    expect(page.locator("#model-list .model-name")).to_have_text(names)
    expect(page.locator("#filter-q")).to_have_value(q)
    expect(page.locator("#filter-status")).to_have_value(status)
    expect(page.locator("#filter-sort")).to_have_value(sort)
    page.wait_for_load_state("load")


def test_back_and_forward_restore_the_models_page_and_its_controls(page, models):
    page.goto("/")
    models_page_shows(page, sorted(MODELS, key=str.lower), "", "", "model_name")

    page.fill("#filter-q", "llama")
    expect(page).to_have_url(re.compile(r"q=llama"))
    models_page_shows(page, LLAMAS_BY_NAME, "llama", "", "model_name")
    page.select_option("#filter-sort", "-mmlu_score")
    expect(page).to_have_url(re.compile(r"sort=-mmlu_score"))
    models_page_shows(page, LLAMAS_BY_MMLU, "llama", "", "-mmlu_score")
    page.select_option("#filter-status", "incompatible")
    expect(page).to_have_url(re.compile(r"status=incompatible"))
    models_page_shows(page, INCOMPATIBLE_LLAMAS_BY_MMLU, "llama", "incompatible", "-mmlu_score")

    page.go_back()
    expect(page).not_to_have_url(re.compile(r"status=incompatible"))
    models_page_shows(page, LLAMAS_BY_MMLU, "llama", "", "-mmlu_score")
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"sort=-mmlu_score"))
    models_page_shows(page, LLAMAS_BY_NAME, "llama", "", "model_name")
    page.go_forward()
    expect(page).to_have_url(re.compile(r"sort=-mmlu_score"))
    models_page_shows(page, LLAMAS_BY_MMLU, "llama", "", "-mmlu_score")
    page.go_forward()
    expect(page).to_have_url(re.compile(r"status=incompatible"))
    models_page_shows(page, INCOMPATIBLE_LLAMAS_BY_MMLU, "llama", "incompatible", "-mmlu_score")

    # And back to the start, step by step: the empty search box and every model.
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"status=incompatible"))
    models_page_shows(page, LLAMAS_BY_MMLU, "llama", "", "-mmlu_score")
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"sort=-mmlu_score"))
    models_page_shows(page, LLAMAS_BY_NAME, "llama", "", "model_name")
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"q=llama"))
    models_page_shows(page, sorted(MODELS, key=str.lower), "", "", "model_name")


def test_a_reload_keeps_what_the_address_says_not_what_the_fields_held(page, models):
    """Chromium puts a reloaded page's form values back; the filter bar shows the address's filters."""
    page.goto("/?q=llama&sort=-mmlu_score")
    # Changed without a request (as if reloaded before the search went out): the address still says llama.
    page.evaluate("""() => {
        document.querySelector("#filter-q").value = "phi";
        document.querySelector("#filter-status").value = "compatible";
        document.querySelector("#filter-sort").value = "model_name";
    }""")
    page.reload()
    models_page_shows(page, LLAMAS_BY_MMLU, "llama", "", "-mmlu_score")


def compare_page_shows(page, names, q, status, sorted_by_mmlu):
    expect(page.locator(".compare-table tbody th[scope=row]")).to_have_text(names)
    expect(page.locator("#filter-q")).to_have_value(q)
    expect(page.locator("#filter-status")).to_have_value(status)
    expect(page.locator('input[type=hidden][name=sort]')).to_have_value("-mmlu_score" if sorted_by_mmlu else "model_name")
    mmlu_header = page.locator(".compare-body-table thead th", has_text="MMLU")  # the table's own, with aria-sort
    expect(mmlu_header).to_have_attribute("aria-sort", "descending" if sorted_by_mmlu else "none")
    expect(page.locator("#chart-x")).to_have_value("mmlu_score")
    page.wait_for_load_state("load")


def test_back_and_forward_restore_the_compare_page_and_its_controls(page, models):
    page.goto("/compare")
    compare_page_shows(page, sorted(MODELS, key=str.lower), "", "", False)

    page.fill("#filter-q", "llama")
    page.press("#filter-q", "Enter")
    expect(page).to_have_url(re.compile(r"q=llama"))
    compare_page_shows(page, LLAMAS_BY_NAME, "llama", "", False)
    page.locator('[data-sort-field="mmlu_score"]').click()
    expect(page).to_have_url(re.compile(r"sort=-mmlu_score"))
    compare_page_shows(page, LLAMAS_BY_MMLU, "llama", "", True)
    page.select_option("#filter-status", "incompatible")
    expect(page).to_have_url(re.compile(r"status=incompatible"))
    compare_page_shows(page, INCOMPATIBLE_LLAMAS_BY_MMLU, "llama", "incompatible", True)

    page.go_back()
    expect(page).not_to_have_url(re.compile(r"status=incompatible"))
    compare_page_shows(page, LLAMAS_BY_MMLU, "llama", "", True)
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"sort=-mmlu_score"))
    compare_page_shows(page, LLAMAS_BY_NAME, "llama", "", False)
    page.go_forward()
    expect(page).to_have_url(re.compile(r"sort=-mmlu_score"))
    compare_page_shows(page, LLAMAS_BY_MMLU, "llama", "", True)
    page.go_forward()
    expect(page).to_have_url(re.compile(r"status=incompatible"))
    compare_page_shows(page, INCOMPATIBLE_LLAMAS_BY_MMLU, "llama", "incompatible", True)


def test_back_from_compare_to_a_filtered_models_page(page, models):
    """Between pages too: Models filtered -> the Compare tab -> Back shows the filtered Models page."""
    page.goto("/")
    page.select_option("#filter-status", "incompatible")
    expect(page).to_have_url(re.compile(r"status=incompatible"))
    page.click("nav.tabs >> text=Compare")
    expect(page).to_have_url(re.compile(r"/compare"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"status=incompatible"))
    models_page_shows(page, ["meta-llama/Meta-Llama-3-8B", "microsoft/phi-2", "TinyLlama/TinyLlama-1.1B-Chat"],
                      "", "incompatible", "model_name")
