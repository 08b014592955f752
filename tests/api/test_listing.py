"""GET /api/models: filter by status, search by name, sort by any column, paginate."""

import pytest

MODELS = [
    {"model_name": "microsoft/phi-2", "compatibility_status": "degraded", "mmlu_score": 56.7},
    {"model_name": "microsoft/Phi-3-mini-4k-instruct", "compatibility_status": "compatible", "mmlu_score": 68.8},
    {"model_name": "meta-llama/Llama-3.2-1B", "compatibility_status": "compatible"},
    {"model_name": "Qwen/Qwen2.5-0.5B", "compatibility_status": "incompatible", "mmlu_score": 47.5},
    {"model_name": "gpt2", "mmlu_score": 26.0},
    {"model_name": "my_org/model_1"},
]


@pytest.fixture
def registry(client):
    for body in MODELS:
        assert client.post("/api/models", json=body).status_code == 201


def names(response):
    assert response.status_code == 200, response.json
    return [item["model_name"] for item in response.json["items"]]


def test_default_order_is_by_name_ignoring_case(client, registry):
    assert names(client.get("/api/models")) == sorted((m["model_name"] for m in MODELS), key=str.lower)
    assert names(client.get("/api/models?sort=-model_name")) == sorted((m["model_name"] for m in MODELS), key=str.lower)[::-1]


def test_filter_by_one_or_several_statuses(client, registry):
    assert names(client.get("/api/models?status=compatible")) == ["meta-llama/Llama-3.2-1B", "microsoft/Phi-3-mini-4k-instruct"]
    assert set(names(client.get("/api/models?status=degraded&status=incompatible"))) == {"microsoft/phi-2", "Qwen/Qwen2.5-0.5B"}
    assert names(client.get("/api/models?status=testing")) == []


def test_search_is_a_case_insensitive_substring_with_wildcards_taken_literally(client, registry):
    assert set(names(client.get("/api/models?q=PHI"))) == {"microsoft/phi-2", "microsoft/Phi-3-mini-4k-instruct"}
    assert names(client.get("/api/models?q=_")) == ["my_org/model_1"]
    assert names(client.get("/api/models?q=%25")) == []


def test_sort_by_a_score_descending_puts_empty_values_last(client, registry):
    ordered = names(client.get("/api/models?sort=-mmlu_score"))
    assert ordered[:4] == ["microsoft/Phi-3-mini-4k-instruct", "microsoft/phi-2", "Qwen/Qwen2.5-0.5B", "gpt2"]
    assert set(ordered[4:]) == {"meta-llama/Llama-3.2-1B", "my_org/model_1"}
    ascending = names(client.get("/api/models?sort=mmlu_score"))
    assert ascending[:4] == ["gpt2", "Qwen/Qwen2.5-0.5B", "microsoft/phi-2", "microsoft/Phi-3-mini-4k-instruct"]


@pytest.mark.parametrize("column", ["compatibility_status", "-updated_at", "hf_path", "-perplexity", "created_at"])
def test_every_column_sorts(client, registry, column):
    assert len(names(client.get(f"/api/models?sort={column}"))) == len(MODELS)


def test_pagination(client, registry):
    first = client.get("/api/models?per_page=4&page=1")
    second = client.get("/api/models?per_page=4&page=2")
    assert first.json["pagination"] == {"total": 6, "page": 1, "per_page": 4, "pages": 2}
    assert len(first.json["items"]) == 4 and len(second.json["items"]) == 2
    assert set(names(first)).isdisjoint(names(second))
    assert names(client.get("/api/models?per_page=4&page=9")) == []


def test_filters_combine_with_pagination_totals(client, registry):
    response = client.get("/api/models?status=compatible&q=llama&per_page=1")
    assert response.json["pagination"] == {"total": 1, "page": 1, "per_page": 1, "pages": 1}


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("status=broken", "status", {"0": ["Must be one of: unknown, compatible, incompatible, degraded, testing."]}),
        ("sort=password", "sort", None),
        ("sort=-", "sort", None),
        ("page=0", "page", ["Must be greater than or equal to 1 and less than or equal to 1000000."]),
        ("page=abc", "page", ["Not a valid integer."]),
        ("per_page=501", "per_page", ["Must be greater than or equal to 1 and less than or equal to 500."]),
        ("q=" + "x" * 201, "q", ["Longer than the maximum of 200 characters."]),
        ("q=a%00b", "q", ["Must not contain NUL characters."]),
        ("stauts=compatible", "stauts", ["Unknown field."]),
    ],
)
def test_invalid_query_is_422_with_the_field_named(client, registry, query, field, message):
    response = client.get(f"/api/models?{query}")
    assert response.status_code == 422
    errors = response.json["errors"]["query"][field]
    if message:
        assert errors == message
