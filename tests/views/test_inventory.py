"""The Models page as an inventory, through the test client: the card's and the row's facts, the totals, the
Cards/Table view (in the address, remembered in a cookie), the new filters and sorts, and bad values refused
per field (a 400 page; 422 JSON from the API)."""

import pytest

from modelhub.extensions import db
from tests import inventory_models

HX = {"HX-Request": "true"}


@pytest.fixture
def seeded(app, client):
    with app.app_context():
        inventory_models.seed(db.session.connection(), 60)
        db.session.commit()
    return client


def test_a_card_shows_size_format_model_copies_and_last_load(seeded):
    text = seeded.get("/models?q=Llama-3.1-8B-Instruct&sort=model_name").text
    card = text[text.index('id="model-1"'):text.index("</li>", text.index('id="model-1"'))]
    assert "16.1 GB" in card and "safetensors" in card and "LlamaForCausalLM · 8B" in card
    assert 'class="badge copy-badge library-huggingface' in card
    assert "Loaded" in card and "on gpu-box" in card and 'datetime="2026-11-30T11:00:00Z"' in card
    assert "AMD Radeon RX 7900 XTX" in card  # the environment, in the last load's title


def test_the_whole_note_is_rendered(client):
    note = "Needs eager attention. " * 40
    client.post("/api/models", json={"model_name": "org/noted", "compatibility_notes": note})
    assert note.strip() in client.get("/").text


def test_totals_sit_above_the_results_and_follow_the_filters(seeded):
    # The results say the count at once and ask for the rest (adding up every copy) with the same filters.
    results = seeded.get("/models?library=ollama&tested=untested", headers=HX).text
    assert '<span class="result-count">8 models</span>' in results
    assert 'hx-get="/models/totals?library=ollama&amp;tested=untested"' in results
    everything = seeded.get("/models/totals").text
    assert '<span class="result-count">60 models</span>' in everything
    assert "40 never tested" in everything and "Folder /mnt/d/models" in everything and "HF cache" in everything
    ollama = seeded.get("/models/totals?library=ollama").text
    assert '<span class="result-count">12 models</span>' in ollama and "12 never tested" not in ollama
    assert '<span class="place-name">Ollama</span>' in ollama and "HF cache" not in ollama
    assert seeded.get("/models/totals?tested=sometimes").status_code == 400


def test_the_table_view_is_in_the_address_and_remembered_by_a_cookie(seeded):
    table = seeded.get("/models?view=table")
    assert 'class="model-table"' in table.text and 'class="model-card"' not in table.text
    assert "modelhub_view=table" in table.headers["Set-Cookie"]
    assert 'value="table" checked' in table.text
    # The next visit without the parameter renders the table at once (no flash of cards).
    again = seeded.get("/")
    assert 'class="model-table"' in again.text and "Set-Cookie" not in again.headers
    assert "Cookie" in again.headers["Vary"]
    more = seeded.get("/models/more?page=2&per_page=20")
    assert more.text.count('class="model-row"') > 0 and 'class="model-card"' not in more.text
    cards = seeded.get("/models?view=cards")
    assert 'class="model-card"' in cards.text and "modelhub_view=cards" in cards.headers["Set-Cookie"]


def test_a_strange_cookie_is_ignored(seeded):
    seeded.set_cookie("modelhub_view", "<script>")
    response = seeded.get("/")
    assert response.status_code == 200 and 'class="model-card"' in response.text


def test_load_more_keeps_every_filter_and_the_view(seeded):
    text = seeded.get("/models?view=table&library=huggingface&format=safetensors&tested=untested&sort=-size_bytes"
                      "&per_page=5").text
    (sentinel,) = [line for line in text.splitlines() if "/models/more?" in line]
    for part in ("library=huggingface", "format=safetensors", "tested=untested", "sort=-size_bytes", "view=table", "page=2"):
        assert part in sentinel


def test_a_table_row_is_re_rendered_as_a_row_after_a_save(seeded):
    row = seeded.get("/models/meta-llama/Llama-3.1-8B-Instruct/card", headers={**HX, "HX-Target": "model-row-1"})
    assert row.text.strip().startswith('<tr class="model-row" id="model-row-1"')
    card = seeded.get("/models/meta-llama/Llama-3.1-8B-Instruct/card", headers={**HX, "HX-Target": "model-1"})
    assert card.text.strip().startswith('<li class="model-card" id="model-1"')


def test_the_filter_bar_offers_the_formats_on_disk_and_the_new_sorts(seeded):
    text = seeded.get("/").text
    for option in ('<option value="gguf" >GGUF (any)</option>', '<option value="GGUF Q4_K_M" >',
                   '<option value="GPTQ" >', '<option value="ollama" >Ollama</option>',
                   '<option value="untested" >Never tested</option>', '<option value="-size_bytes" >Size (largest first)',
                   '<option value="-last_tested" >Last tested (recent first)'):
        assert option in text, option


@pytest.mark.parametrize("query, control", [("view=grid", "View"), ("library=dropbox", "Location"),
                                            ("tested=maybe", "Tested"), ("sort=-bytes", "Sort by"),
                                            ("format=" + "x" * 65, "Format")])
def test_bad_inventory_values_are_a_400_page_naming_the_field(client, query, control):
    response = client.get(f"/models?{query}")
    assert response.status_code == 400
    assert "That address holds an invalid filter" in response.text
    assert f"<li>{control}: " in response.text  # named as the filter bar names it


@pytest.mark.parametrize("query, field", [("library=dropbox", "library"), ("tested=maybe", "tested"),
                                          ("sort=-bytes", "sort"), ("view=table", "view")])
def test_the_api_refuses_bad_inventory_values_with_422_per_field(client, query, field):
    response = client.get(f"/api/models?{query}")
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["query"]


def test_the_api_lists_with_the_inventory_filters_and_sorts(seeded):
    body = seeded.get("/api/models?library=lmstudio&library=ollama&tested=tested&sort=-size_bytes&per_page=100").get_json()
    assert body["pagination"]["total"] > 0
    ids = {model["model_name"] for model in body["items"]}
    assert all(model["compatibility_status"] != "unknown" for model in body["items"]) and ids
    gguf = seeded.get("/api/models?format=GGUF&per_page=100").get_json()["pagination"]["total"]
    assert gguf == seeded.get("/api/models?library=lmstudio&library=ollama&per_page=100").get_json()["pagination"]["total"]
