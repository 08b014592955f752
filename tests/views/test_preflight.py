"""Will it load here, on the pages: the modal's section (the same partial as its htmx fragment, which
follows the text typed in the load config editor) and each card's mark, through the test client (the
browser test covers the typing)."""

import html
import json
import re

import pytest

from modelhub import preflight
from modelhub.preflight import host as host_facts
from tests.header_only import build_llama

GIB = 2**30
NAME = "tiny/llama"


@pytest.fixture
def models(app, client, tiny_models, tmp_path):
    """The tiny Llama (fits), a header-only 0.85B Llama that does not fit in the limit (a config that would
    is offered), and a model without local files; against a worker memory limit, whatever the host has."""
    folder = build_llama(tmp_path / "llama-0.8b")
    for name, path in ((NAME, tiny_models["llama"]), ("big/llama", folder), ("acme/elsewhere", None)):
        fields = {"cache_location": "custom", "cache_path": str(path)} if path else {}
        assert client.post("/api/models", json={"model_name": name, **fields}).status_code == 201
    app.config["MODELHUB_WORKER_MEMORY_LIMIT"] = 64 * GIB
    host_facts.forget(app)
    needed = client.get("/api/models/big/llama/preflight").json["total_bytes"]
    app.config["MODELHUB_WORKER_MEMORY_LIMIT"] = int(needed * 0.9)
    host_facts.forget(app)


def section_of(page: str) -> str:
    return re.search(r'<section class="form-section preflight" id="preflight".*?</section>', page, re.S).group(0)


def test_the_modal_shows_the_section_its_fragment_renders(client, models):
    details = client.get(f"/models/{NAME}/details").text
    fragment = client.get(f"/models/{NAME}/preflight").text
    assert section_of(details) == fragment.strip()
    assert "<html" not in fragment
    assert 'data-verdict="fits"' in fragment and "status-compatible" in fragment
    assert "For the saved load config" in fragment
    for label in ("Weights", "KV cache", "Activations", "Framework overhead"):
        assert f'<th scope="row">{label}</th>' in fragment
    assert '<meter class="preflight-bar"' in fragment
    assert "Not calibrated on this host yet" in fragment


def test_the_editor_sends_its_text_debounced(client, models):
    details = client.get(f"/models/{NAME}/details").text
    textarea = re.search(r'<textarea id="field-load_config".*?>', details, re.S).group(0)
    assert f'hx-get="/models/{NAME}/preflight"' in textarea
    assert 'hx-trigger="input changed delay:400ms, primaryCopyChanged from:body"' in textarea
    assert 'hx-target="#preflight"' in textarea
    # the copy picked in the section's "Check copy" stays picked while the user types
    assert 'hx-include="#preflight [name=copy_id]"' in textarea and 'hx-params="load_config,copy_id"' in textarea


def test_a_config_being_typed_is_checked_and_not_saved(client, models, stored):
    before = stored(NAME)
    fragment = client.get(f"/models/{NAME}/preflight", query_string={"load_config": '{"dtype": "float16"}'})
    assert fragment.status_code == 200
    assert "For the load config being edited (not saved yet)" in fragment.text
    assert "float16" in fragment.text
    assert stored(NAME) == before


@pytest.mark.parametrize("text, message", [
    ('{"dtype": "float16"', "Invalid JSON"),
    ('{"flash": true}', "Unknown key &#39;flash&#39;"),
    ('{"dtype": "float8"}', "dtype: Must be one of"),
    ('{"dtype": "float16", "dtype": "float16"}', "appears twice"),
])
def test_an_invalid_text_is_the_section_saying_why(client, models, text, message):
    response = client.get(f"/models/{NAME}/preflight", query_string={"load_config": text})
    assert response.status_code == 422  # static/js/modelhub.js swaps it in anyway
    assert response.text.strip().startswith('<section class="form-section preflight" id="preflight"')
    assert "<html" not in response.text
    assert "The load config being edited cannot be checked" in response.text
    assert message in response.text
    assert "data-verdict" not in response.text


def test_a_config_that_fits_is_offered_with_a_button(client, models):
    fragment = client.get("/models/big/llama/preflight").text
    assert 'data-verdict="wont_fit"' in fragment and "status-incompatible" in fragment
    offered = re.search(r"data-apply-fitting-config='([^']*)'", fragment).group(1)
    config = json.loads(html.unescape(offered))
    assert config == client.get("/api/models/big/llama/preflight").json["fitting_config"]
    assert "Put it in the load config" in fragment and "Nothing is saved until you save" in fragment


def test_an_unknown_model_is_a_404(client):
    assert client.get("/models/acme/nothing/preflight").status_code == 404


def test_each_card_has_its_mark_computed_once_per_page(client, models, monkeypatch):
    calls = []
    real = preflight.marks
    monkeypatch.setattr(preflight, "marks", lambda app, rows: calls.append(len(rows)) or real(app, rows))
    page = client.get("/models").text
    assert calls == [3]  # one call for the page's three cards

    def mark(name):
        card = next(card for card in page.split('<li class="model-card"') if f'data-model-name="{name}"' in card)
        found = re.search(r'<span class="badge preflight-verdict (status-[a-z]+) preflight-mark"\s+'
                          r'data-verdict="([a-z_]+)" title="([^"]*)">([^<]*)</span>', card)
        return found and found.groups()

    fits, wont = mark(NAME), mark("big/llama")
    assert (fits[0], fits[1], fits[3]) == ("status-compatible", "fits", "fits here")
    assert (wont[0], wont[1], wont[3]) == ("status-incompatible", "wont_fit", "won&#39;t fit here")
    assert html.unescape(wont[2]).startswith("Preflight, before loading: Needs ")
    assert mark("acme/elsewhere") is None  # nothing to predict from: no mark


def test_the_card_fragment_and_the_next_page_carry_the_mark(client, models):
    assert 'data-verdict="fits"' in client.get(f"/models/{NAME}/card").text
    assert 'data-verdict="wont_fit"' in client.get("/models/more?page=1").text
