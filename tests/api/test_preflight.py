"""``GET /api/models/{name}/preflight``: will it load here, term by term, for the saved load_config or one
being typed (not saved); bad input refused per field with nothing changed. Real tiny models registered with
their cache_path; a header-only checkpoint (tests/header_only.py) for sizes near this host's memory limit."""

import json
import math

import pytest
from safetensors import safe_open

from modelhub.preflight import host as host_facts
from tests.header_only import build_llama

NAME = "tiny/llama"
API = f"/api/models/{NAME}/preflight"
GIB = 2**30


@pytest.fixture
def llama(app, client, tiny_models):
    """The tiny Llama registered with its folder, checked against a 4 GiB worker memory limit (whatever
    this host has free, the verdict is the same)."""
    limit(app, 4 * GIB)
    response = client.post("/api/models", json={"model_name": NAME, "cache_location": "custom",
                                                "cache_path": str(tiny_models["llama"])})
    assert response.status_code == 201
    return tiny_models["llama"]


def limit(app, size: int) -> None:
    app.config["MODELHUB_WORKER_MEMORY_LIMIT"] = size
    host_facts.forget(app)  # the host's facts are cached for a few seconds


def terms(device: dict) -> dict[str, int]:
    return {term["name"]: term["bytes"] for term in device["terms"]}


def test_a_tiny_model_fits_term_by_term(client, llama):
    body = client.get(API).json
    assert (body["model_name"], body["config_source"], body["load_config"]) == (NAME, "saved", {})
    assert body["verdict"] == "fits" and "headroom" in body["reason"]
    (cpu,) = body["devices"]
    assert cpu["device"] == "cpu" and cpu["available_bytes"] == 4 * GIB
    assert {"weights", "kv_cache", "activations", "overhead"} <= set(terms(cpu))
    assert sum(terms(cpu).values()) == cpu["needed_bytes"] == body["total_bytes"]
    assert cpu["headroom"] == pytest.approx((4 * GIB - cpu["needed_bytes"]) / (4 * GIB), abs=1e-3)
    with safe_open(llama / "model.safetensors", framework="pt") as weights:  # what the header says, read here
        parameters = sum(math.prod(weights.get_slice(name).get_shape()) for name in weights.keys())
    assert body["metadata"]["parameters"] == parameters
    assert body["metadata"]["dtype"] == "float32" and body["metadata"]["shards"] == 1
    assert terms(cpu)["weights"] >= parameters * 4  # float32, as saved
    assert body["calibration"] is None and body["problems"] == [] and body["fitting_config"] is None
    assert body["host"]["memory_limit_bytes"] == 4 * GIB


def test_a_config_being_typed_is_checked_and_not_saved(client, llama, stored):
    before = stored(NAME)
    saved = client.get(API).json
    typed = client.get(API, query_string={"load_config": '{"dtype": "float16"}'}).json
    assert (typed["config_source"], typed["load_config"]) == ("given", {"dtype": "float16"})
    assert terms(typed["devices"][0])["kv_cache"] * 2 == terms(saved["devices"][0])["kv_cache"]  # float16 vs 32
    assert stored(NAME) == before
    assert len(client.get(f"/api/models/{NAME}/configs").json["items"]) == 1


def test_the_saved_config_is_the_default_and_an_empty_text_the_system_defaults(client, llama):
    assert client.patch(f"/api/models/{NAME}/config", json={"load_config": '{"dtype": "float16"}'}).status_code == 200
    body = client.get(API).json
    assert (body["config_source"], body["load_config"]) == ("saved", {"dtype": "float16"})
    body = client.get(API, query_string={"load_config": ""}).json
    assert (body["config_source"], body["load_config"]) == ("given", {})


def test_the_kv_cache_is_sized_for_the_context_asked(client, llama):
    short = client.get(API, query_string={"context": 64}).json
    long = client.get(API, query_string={"context": 128}).json
    assert (short["context_tokens"], long["context_tokens"]) == (64, 128)
    assert terms(long["devices"][0])["kv_cache"] == 2 * terms(short["devices"][0])["kv_cache"]


def test_each_verdict_against_this_hosts_memory_and_a_config_that_fits(app, client, tmp_path):
    folder = build_llama(tmp_path / "llama-0.8b")
    client.post("/api/models", json={"model_name": "big/llama", "cache_location": "custom", "cache_path": str(folder)})
    url = "/api/models/big/llama/preflight"
    limit(app, 64 * GIB)
    needed = client.get(url).json["total_bytes"]
    assert needed > 1.5 * GIB  # 1.6 GiB of bfloat16 weights, and the rest

    limit(app, int(needed * 1.5))
    assert client.get(url).json["verdict"] == "fits"
    limit(app, int(needed * 1.05))
    tight = client.get(url).json
    assert tight["verdict"] == "tight" and tight["fitting_config"] is None
    limit(app, int(needed * 0.9))
    short = client.get(url).json
    assert short["verdict"] == "wont_fit" and "too much" in short["reason"]
    assert short["devices"][0]["headroom"] < 0
    assert isinstance(short["fitting_config"], dict) and short["fitting_reason"]
    # The config it offers does fit, judged the same way.
    offered = client.get(url, query_string={"load_config": json.dumps(short["fitting_config"])}).json
    assert offered["verdict"] in ("fits", "tight")


def test_a_model_without_local_files_answers_unknown(client):
    assert client.post("/api/models", json={"model_name": "acme/elsewhere"}).status_code == 201
    body = client.get("/api/models/acme/elsewhere/preflight").json
    assert (body["verdict"], body["devices"], body["metadata"]) == ("unknown", [], None)
    assert body["reason"]


@pytest.mark.parametrize("parameter, value, message", [
    ("load_config", "{not json", "Invalid JSON"),
    ("load_config", '{"dtype": "float16",}', "Invalid JSON"),
    ("load_config", '{"flash": true}', "Unknown key 'flash'. Known keys: "),
    ("load_config", '{"dtype": "float8"}', "dtype: Must be one of: float32, float16, bfloat16, auto"),
    ("load_config", '{"dtype": "float16", "dtype": "float32"}', "the key 'dtype' appears twice"),
    ("load_config", "[1, 2]", "Must be a JSON object"),
    ("load_config", '{"dtype": NaN}', "Invalid JSON"),
    ("context", str(10**12), "less than or equal to"),
    ("context", "0", "greater than or equal to 1"),
    ("context", "many", "Not a valid integer"),
    ("contxt", "4096", "Unknown field"),
])
def test_bad_input_is_refused_per_field_and_changes_nothing(client, llama, stored, parameter, value, message):
    before = stored(NAME)
    response = client.get(API, query_string={parameter: value})
    assert response.status_code == 422
    body = response.json
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    (field_messages,) = body["errors"]["query"].values()
    assert list(body["errors"]["query"]) == [parameter]
    assert any(message in line for line in field_messages), field_messages
    assert message in body["message"]
    assert stored(NAME) == before


def test_an_unknown_model_is_a_404(client):
    response = client.get("/api/models/acme/nothing/preflight")
    assert response.status_code == 404
    assert response.json["message"] == "No model named 'acme/nothing' in the registry."
    # Bad input about a model that does not exist: the input is what is wrong first.
    assert client.get("/api/models/acme/nothing/preflight", query_string={"context": "0"}).status_code == 422


def test_a_model_cannot_be_named_after_the_endpoint(client):
    response = client.post("/api/models", json={"model_name": "acme/preflight"})
    assert response.status_code == 422
    assert "/api/models/acme/preflight is the preflight endpoint" in response.json["message"]
