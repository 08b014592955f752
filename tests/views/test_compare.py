"""The Compare page through the test client: provenance marks, sorting, the chart's SVG and its empty state."""

import re

import pytest

from modelhub import chart, registry

HX = {"HX-Request": "true"}


def add(client, name, **fields):
    response = client.post("/api/models", json={"model_name": name, **fields})
    assert response.status_code == 201, response.text


def cells(text, field):
    """(source, text) of each table cell of FIELD, in row order."""
    found = re.findall(rf'data-field="{field}"(?: data-source="(\w+)")?[^>]*>([^<]*)', text)
    return [(source or None, value) for source, value in found]


def row_names(text):
    return re.findall(r'class="model-name compare-name"[^>]*>([^<]+)</button>', text)


def chart_svg(text, css_class="chart"):
    """The wide chart's SVG (css_class="chart-compact": the phone's) out of a page or fragment."""
    found = re.search(rf'<svg class="{css_class}".*?</svg>', text, re.DOTALL)
    return found.group(0) if found else ""


def circles(text, css_class="chart"):
    return re.findall(r"<title>([^<]*)</title><circle\b", chart_svg(text, css_class))


def test_each_value_says_whether_it_was_typed_or_from_the_card(app, client):
    add(client, "org/typed", mmlu_score=50.0)
    add(client, "org/from-card", mmlu_score=61.5, gpqa_score=30.0)
    with app.app_context():
        registry.update_model("org/from-card", {"metric_sources": {"mmlu_score": {"source": "card", "dataset": "cais/mmlu"}}})
    text = client.get("/compare").text
    assert cells(text, "mmlu_score") == [("card", "61.5"), ("typed", "50")]
    assert cells(text, "gpqa_score") == [("typed", "30"), (None, "—")]  # typed: no entry in metric_sources
    assert 'title="From the model card · dataset: cais/mmlu"' in text
    assert 'title="Typed by a user"' in text


def test_headers_sort_best_first_then_reverse_and_bad_sorts_are_the_models_400(client):
    add(client, "org/low", mmlu_score=20.0)
    add(client, "org/high", mmlu_score=80.0)
    add(client, "org/none")
    first = client.get("/compare", headers=HX).text
    assert row_names(first) == ["org/high", "org/low", "org/none"]
    assert 'href="/compare?sort=-mmlu_score&amp;x=mmlu_score"' in first  # first click: best first
    descending = client.get("/compare?sort=-mmlu_score", headers=HX).text
    assert row_names(descending) == ["org/high", "org/low", "org/none"]
    assert 'aria-sort="descending"' in descending and "sort=mmlu_score&amp;" in descending  # next click reverses
    assert row_names(client.get("/compare?sort=mmlu_score", headers=HX).text) == ["org/low", "org/high", "org/none"]
    bad = client.get("/compare?sort=password")
    assert bad.status_code == 400 and "That address holds an invalid filter" in bad.text and "sort" in bad.text
    assert client.get("/compare?x=perplexity").status_code == 400  # the chart's x is a quality score


def test_fragment_is_the_results_section_of_the_page(client):
    add(client, "org/a", mmlu_score=50.0, max_throughput_tokens_sec=10.0)
    page = client.get("/compare")
    fragment = client.get("/compare", headers=HX)
    assert "<html" in page.text and "<html" not in fragment.text
    assert fragment.text.strip().startswith('<section id="compare-results"')
    assert fragment.text.strip() in page.text
    assert "HX-Request" in fragment.headers["Vary"]
    assert 'aria-current="page">Compare</a>' in page.text and 'aria-current="page">Models' not in page.text


def test_chart_has_one_point_per_model_with_both_values_and_escapes_their_text(client):
    add(client, "org/fast", mmlu_score=40.0, max_throughput_tokens_sec=300.0, compatibility_status="compatible",
        quantization="<script>Q4</script>")
    add(client, "org/slow", mmlu_score=70.0, max_throughput_tokens_sec=25.0, compatibility_status="incompatible")
    add(client, "org/no-throughput", mmlu_score=90.0)
    add(client, "org/no-mmlu", max_throughput_tokens_sec=100.0, gpqa_score=10.0)
    text = client.get("/compare").text
    titles = circles(text)
    assert titles == [
        "org/fast · MMLU 40 · 300 tok/s · compatible · &lt;script&gt;Q4&lt;/script&gt;",
        "org/slow · MMLU 70 · 25 tok/s · incompatible",
    ]
    assert "<script>Q4" not in text
    assert 'fill="#28a745"' in text and 'fill="#dc3545"' in text
    assert ">org/fast</text>" in text and ">org/slow</text>" in text  # labels: the full name, org included
    assert circles(text, "chart-compact") == titles  # the phone's chart: the same dots
    gpqa = client.get("/compare?x=gpqa_score", headers=HX).text
    assert [t.split(" · ")[0] for t in circles(gpqa)] == ["org/no-mmlu"]
    assert "GPQA score" in gpqa


def test_chart_follows_the_filters(client):
    add(client, "org/a", mmlu_score=40.0, max_throughput_tokens_sec=300.0, compatibility_status="compatible")
    add(client, "org/b", mmlu_score=70.0, max_throughput_tokens_sec=25.0, compatibility_status="degraded")
    text = client.get("/compare?status=degraded", headers=HX).text
    assert [t.split(" · ")[0] for t in circles(text)] == ["org/b"]
    assert row_names(text) == ["org/b"]


def test_empty_chart_says_what_is_missing(client):
    add(client, "org/only-mmlu", mmlu_score=50.0)
    text = client.get("/compare").text
    assert "No model has both MMLU and a throughput yet" in text
    assert "<svg" not in text
    assert "No model has both MATH and a throughput yet" in client.get("/compare?x=math_score").text


def test_empty_registry_says_how_to_add_models(client):
    assert "No models registered yet" in client.get("/compare").text


def test_table_pages_at_100_and_shows_the_total(client):
    for i in range(105):
        add(client, f"bulk/m{i:03d}")
    first = client.get("/compare").text
    assert len(row_names(first)) == 100 and "105 models" in first and "showing 1–100" in first
    second = client.get("/compare?page=2", headers=HX).text
    assert row_names(second) == ["bulk/m100", "bulk/m101", "bulk/m102", "bulk/m103", "bulk/m104"]


@pytest.mark.parametrize(("low", "high"), [(0, 97.3), (23.5, 24.1), (5, 5), (0, 0), (0, 12_345)])
def test_ticks_are_round_and_cover_the_data(low, high):
    ticks = chart.nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 12
    steps = {round(b - a, 6) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1


def test_svg_text_is_escaped():
    svg = chart.scatter(
        [chart.Point(1, 2, label="a<b", title='x"&y', status="weird")],
        x_label="<x>", y_label="y&", title="t<",
    )
    assert "a&lt;b" in svg and "x&#34;&amp;y" in svg and "&lt;x&gt;" in svg and "y&amp;" in svg and "t&lt;" in svg
    assert 'fill="#6c757d"' in svg  # an unknown status is drawn gray


def test_every_filter_of_the_query_reaches_the_table_the_chart_and_the_links(client, monkeypatch):
    """A filter the Models page adds to ModelListQuerySchema narrows Compare too, with no change here."""
    from marshmallow import fields

    from modelhub.views import compare

    class WithNewFilter(compare.CompareQuerySchema):
        shelf = fields.String()

    seen = {}
    real_list, real_with = registry.list_models, registry.models_with

    def list_models(**kwargs):
        seen["list_models"] = kwargs
        return real_list(**{k: v for k, v in kwargs.items() if k != "shelf"})

    def models_with(*fields_, **kwargs):
        seen["models_with"] = kwargs
        return real_with(*fields_, **{k: v for k, v in kwargs.items() if k != "shelf"})

    monkeypatch.setattr(compare, "_query_schema", WithNewFilter(unknown="exclude"))
    monkeypatch.setattr(registry, "list_models", list_models)
    monkeypatch.setattr(registry, "models_with", models_with)
    for i in range(105):
        add(client, f"org/m{i:03d}", mmlu_score=50.0 + i / 10, max_throughput_tokens_sec=10.0)
    text = client.get("/compare?shelf=disk-2&status=compatible&status=unknown&q=org&x=gpqa_score&sort=-mmlu_score").text
    assert seen["list_models"] == {"shelf": "disk-2", "status": ["compatible", "unknown"], "q": "org",
                                   "sort": "-mmlu_score", "page": 1, "per_page": 100}
    assert seen["models_with"] == {"shelf": "disk-2", "status": ["compatible", "unknown"], "q": "org",
                                   "highest_first": "max_throughput_tokens_sec", "limit": 2000}
    # The header links, the pager and the refresh after a save keep it (and the statuses, repeated).
    links = re.findall(r'(?:href|hx-get)="(/compare\?[^"]*)"', text)
    assert links and all("shelf=disk-2" in link and "status=compatible&amp;status=unknown" in link for link in links)
    refresh = re.search(r'data-compare-refresh hx-get="([^"]*)"', text).group(1)
    assert "shelf=disk-2" in refresh and "x=gpqa_score" in refresh and "sort=-mmlu_score" in refresh


def test_headers_show_the_sort_in_arrows_words_and_aria_sort(client):
    add(client, "org/a", mmlu_score=50.0, avg_latency_ms=20.0)
    text = client.get("/compare?sort=avg_latency_ms", headers=HX).text
    latency_head = re.search(r'<th class="num" data-sort="ascending">\s*<a [^>]*data-sort-field="avg_latency_ms"'
                             r'[^>]*title="([^"]*)">Avg Latency TTFT<span class="sort-arrow" aria-hidden="true">▲</span>'
                             r'<span class="visually-hidden">, sorted lowest first</span></a>', text)
    assert latency_head and latency_head.group(1).endswith("Sorted lowest first: click for highest first")
    assert re.search(r'<th scope="col" aria-sort="ascending" class="num"><span class="th-label">Avg Latency TTFT'
                     r'<span class="sort-arrow" aria-hidden="true">▲</span>', text)
    assert ' · Sort highest first">MMLU<span class="sort-arrow" aria-hidden="true"></span>' in text
    by_name = client.get("/compare?sort=-model_name", headers=HX).text
    assert 'Model<span class="sort-arrow" aria-hidden="true">▼</span><span class="visually-hidden">, sorted Z–A</span>' in by_name


def test_a_name_and_a_dot_open_the_models_details_on_this_page(client):
    add(client, "Org/a.b_c", mmlu_score=50.0, max_throughput_tokens_sec=10.0)
    page = client.get("/compare").text
    assert '<div id="modal-body"></div>' in page and 'id="toast"' in page
    assert re.search(r'<button type="button" class="model-name compare-name" data-model-name="Org/a.b_c"\s+'
                     r'hx-get="/models/Org/a.b_c/details"\s+hx-target="#modal-body"', page)
    assert 'data-model-name="Org/a.b_c" data-details="/models/Org/a.b_c/details"' in chart_svg(page)
    assert 'data-model-name="Org/a.b_c" data-details="/models/Org/a.b_c/details"' in chart_svg(page, "chart-compact")
    assert "/?q=" not in page and "models?q=" not in page  # no longer a filtered Models page
