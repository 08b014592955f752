"""The HTML views and their HTMX fragments, through the test client (the browser tests cover behaviour)."""

import html
import re

import pytest

HX = {"HX-Request": "true"}


@pytest.fixture
def phi2(client):
    client.post("/api/models", json={"model_name": "microsoft/phi-2", "compatibility_status": "degraded", "mmlu_score": 56.7})


def test_full_page_and_fragment_share_the_results_markup(client, phi2):
    page = client.get("/models?status=degraded")
    fragment = client.get("/models?status=degraded", headers=HX)
    assert "<html" in page.text and "<html" not in fragment.text
    assert fragment.text.strip().startswith('<section id="model-results"')
    assert fragment.text.strip() in page.text  # the same partial, rendered once for each
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]


def test_empty_filter_fields_mean_no_filter(client, phi2):
    assert "microsoft/phi-2" in client.get("/models?q=&status=&sort=model_name", headers=HX).text


def test_filters_that_match_nothing_say_so_rather_than_the_empty_registry_text(client, phi2):
    text = client.get("/models?status=compatible", headers=HX).text
    assert "No models match these filters" in text
    assert "No models registered yet" not in text


@pytest.mark.parametrize("query, control", [("sort=password", "Sort by"), ("status=broken", "Status"), ("page=0", "Page"),
                                            ("q=a%00b", "Search")])
def test_invalid_filter_in_the_address_is_a_400_page_that_names_it(client, query, control):
    response = client.get(f"/models?{query}")
    assert response.status_code == 400
    assert "That address holds an invalid filter" in response.text
    assert f"<li>{control}: " in response.text  # named as the filter bar names it


def test_more_returns_the_next_cards_and_a_sentinel_while_more_remain(client):
    for i in range(120):
        client.post("/api/models", json={"model_name": f"bulk/m{i:03d}"})
    second = client.get("/models/more?page=2")
    assert second.text.count('class="model-card"') == 50
    assert "/models/more?page=3" in second.text
    last = client.get("/models/more?page=3")
    assert last.text.count('class="model-card"') == 20
    assert "load-more" not in last.text


def test_card_fragment(client, phi2):
    response = client.get("/models/microsoft/phi-2/card")
    assert response.status_code == 200
    assert response.text.strip().startswith('<li class="model-card"')
    assert "MMLU 56.7" in response.text


def test_details_fragment_carries_the_etag_it_was_read_at(client, phi2):
    api_etag = client.get("/api/models/microsoft/phi-2").headers["ETag"]
    response = client.get("/models/microsoft/phi-2/details")
    assert response.headers["ETag"] == api_etag
    assert 'data-etag="{}"'.format(api_etag.replace('"', "&quot;")) in response.text


@pytest.mark.parametrize("path", ["/models/nope/card", "/models/nope/details"])
def test_fragments_of_an_unknown_model_are_404(client, path):
    assert client.get(path).status_code == 404


def test_page_renders_user_text_escaped(client):
    client.post("/api/models", json={"model_name": "gpt2", "compatibility_notes": "<script>alert(1)</script>",
                                     "quantization": "<img src=x onerror=alert(1)>"})
    text = client.get("/").text + client.get("/models/gpt2/details").text
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


@pytest.mark.parametrize(
    "path, code, message",
    [
        ("/models/nope/details", 404, "No model named 'nope'"),
        ("/no-such-page", 404, "The requested URL was not found on the server."),
    ],
)
def test_errors_on_pages_are_pages(client, path, code, message):
    response = client.get(path)
    assert response.status_code == code
    assert response.mimetype == "text/html"
    assert "<html" in response.text and f"<h1>{code} " in response.text and message in html.unescape(response.text)
    fragment = client.get(path, headers=HX)
    assert fragment.status_code == code and fragment.mimetype == "text/html" and "<html" not in fragment.text
    assert message in html.unescape(fragment.text)


@pytest.mark.parametrize("path", ["/api/models/nope", "/api/no-such-endpoint"])
def test_errors_under_the_api_stay_json(client, path):
    response = client.get(path)
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert set(response.json) == {"code", "status", "message"}


def test_a_wrong_method_on_a_page_is_a_page_that_says_what_is_allowed(client):
    response = client.delete("/models")
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert set(response.headers["Allow"].split(", ")) >= {"GET"}


def test_a_choice_not_in_its_menu_is_named_not_answered_with_every_choice(client):
    response = client.get("/models?q=llama&sort=password&status=compatible&status=broken")
    assert response.status_code == 400
    (sort_line,) = re.findall(r"<li>Sort by: [^<]*password[^<]*</li>", response.text)
    assert len(sort_line) < 250 and "gpqa_score" not in response.text  # not the wall of every sortable field
    assert "Status: “broken” is not one of its choices." in response.text
    # The way out keeps what was valid: the search, not the bad sort and status.
    assert 'href="/models?q=llama"' in response.text
