"""The documented API of /api/models, reproduced exactly, and the rest of /api/models, through the test client."""

import json
import re
import subprocess

import pytest
from sqlalchemy.engine import make_url

SEED_CONFIG = {
    "compatibility_status": "degraded",
    "compatibility_notes": "Works after restart",
    "load_config": '{"attn_implementation": "eager"}',
}
SEED_METADATA = {"mmlu_score": 72.5, "humaneval_score": 45.2, "max_throughput_tokens_sec": 38.7, "avg_latency_ms": 125.3}


@pytest.fixture
def phi2(client):
    response = client.post("/api/models", json={"model_name": "microsoft/phi-2"})
    assert response.status_code == 201, response.json
    return response


def sqlite3_cli(database_url: str, sql: str) -> str:
    """What a user sees with ``sqlite3 models.db "<sql>"`` (the troubleshooting command users know)."""
    path = make_url(database_url).database
    return subprocess.run(["sqlite3", path, sql], capture_output=True, text=True, check=True, timeout=10).stdout


def test_seed_config_example(client, phi2, stored, database_url):
    response = client.patch("/api/models/microsoft/phi-2/config", json=SEED_CONFIG)

    assert response.status_code == 200
    assert {k: response.json[k] for k in SEED_CONFIG} == SEED_CONFIG
    row = stored("microsoft/phi-2")
    assert row["compatibility_status"] == "degraded"
    assert row["compatibility_notes"] == "Works after restart"
    assert row["load_config"] == '{"attn_implementation": "eager"}'
    if database_url.startswith("sqlite"):
        output = sqlite3_cli(database_url, "SELECT model_name, load_config FROM modelregistry;")
        assert output == 'microsoft/phi-2|{"attn_implementation": "eager"}\n'


def test_seed_metadata_example(client, phi2, stored, database_url):
    response = client.patch("/api/models/microsoft/phi-2/metadata", json=SEED_METADATA)

    assert response.status_code == 200
    assert {k: response.json[k] for k in SEED_METADATA} == SEED_METADATA
    row = stored("microsoft/phi-2")
    assert {k: row[k] for k in SEED_METADATA} == SEED_METADATA
    if database_url.startswith("sqlite"):
        output = sqlite3_cli(
            database_url, "SELECT mmlu_score, humaneval_score, max_throughput_tokens_sec, avg_latency_ms FROM modelregistry;"
        )
        assert output == "72.5|45.2|38.7|125.3\n"


def test_register_returns_the_model_with_location_and_etag(phi2):
    assert phi2.headers["Location"] == "/api/models/microsoft/phi-2"
    assert re.fullmatch(r'"\d+\.1"', phi2.headers["ETag"])
    body = phi2.json
    assert body["model_name"] == body["hf_path"] == "microsoft/phi-2"
    assert body["cache_location"] == "primary"
    assert body["compatibility_status"] == "unknown"
    assert body["load_config"] is None
    assert body["created_at"].endswith("+00:00")


def test_register_with_every_field(client, stored, tmp_path):
    model_dir = tmp_path / "models" / "llama"
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text('{"model_type": "llama"}')
    body = {
        "model_name": "local-llama",
        "hf_path": "meta-llama/Llama-3.2-1B",
        "cache_location": "custom",
        "cache_path": str(model_dir),
        "compatibility_status": "compatible",
        "load_config": {"dtype": "bfloat16"},
        "mmlu_score": 49.3,
        "quantization": "None",
    }
    response = client.post("/api/models", json=body)

    assert response.status_code == 201, response.json
    row = stored("local-llama")
    assert row["hf_path"] == "meta-llama/Llama-3.2-1B"
    assert row["cache_path"] == str(model_dir)
    assert json.loads(row["load_config"]) == {"dtype": "bfloat16"}
    assert row["mmlu_score"] == 49.3


def test_duplicate_name_is_409(client, phi2, stored):
    before = stored("microsoft/phi-2")
    response = client.post("/api/models", json={"model_name": "microsoft/phi-2", "hf_path": "other/repo"})

    assert response.status_code == 409
    assert response.json["message"] == "A model named 'microsoft/phi-2' is already registered."
    assert stored("microsoft/phi-2") == before


def test_get_one_and_unknown_model(client, phi2):
    response = client.get("/api/models/microsoft/phi-2")
    assert response.status_code == 200
    assert response.json["model_name"] == "microsoft/phi-2"
    assert response.headers["ETag"] == phi2.headers["ETag"]

    missing = client.get("/api/models/microsoft/phi-3")
    assert missing.status_code == 404
    assert missing.json == {"code": 404, "status": "Not Found", "message": "No model named 'microsoft/phi-3' in the registry."}


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("patch", "/api/models/nope/config", {"compatibility_status": "unknown"}),
        ("patch", "/api/models/nope/metadata", {"mmlu_score": 1}),
        ("patch", "/api/models/nope", {"config": {"compatibility_status": "unknown"}}),
        ("delete", "/api/models/nope", None),
        ("get", "/api/models/no%00pe", None),
    ],
)
def test_unknown_model_is_404_on_every_endpoint(client, method, path, body):
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 404
    assert "No model named" in response.json["message"]


def test_delete(client, phi2, stored):
    response = client.delete("/api/models/microsoft/phi-2")
    assert response.status_code == 204
    assert stored("microsoft/phi-2") is None
    assert client.get("/api/models/microsoft/phi-2").status_code == 404


def test_load_config_object_is_stored_as_json_text(client, phi2, stored):
    config = {"device_map": "auto", "max_memory": {"0": "15GiB"}}
    response = client.patch("/api/models/microsoft/phi-2/config", json={"load_config": config})
    assert response.status_code == 200
    assert json.loads(stored("microsoft/phi-2")["load_config"]) == config


def test_load_config_string_is_stored_exactly_as_typed(client, phi2, stored):
    typed = '{\n    "torch_dtype": "bfloat16",\n    "attn_implementation": "eager"\n}'
    client.patch("/api/models/microsoft/phi-2/config", json={"load_config": typed})
    assert stored("microsoft/phi-2")["load_config"] == typed


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_empty_load_config_clears_it(client, phi2, stored, empty):
    client.patch("/api/models/microsoft/phi-2/config", json={"load_config": '{"a": 1}'})
    response = client.patch("/api/models/microsoft/phi-2/config", json={"load_config": empty})
    assert response.status_code == 200
    assert response.json["load_config"] is None
    assert stored("microsoft/phi-2")["load_config"] is None


def test_null_clears_a_metric(client, phi2, stored):
    client.patch("/api/models/microsoft/phi-2/metadata", json=SEED_METADATA)
    response = client.patch("/api/models/microsoft/phi-2/metadata", json={"mmlu_score": None})
    assert response.status_code == 200
    row = stored("microsoft/phi-2")
    assert row["mmlu_score"] is None
    assert row["humaneval_score"] == 45.2


@pytest.mark.parametrize("value", [0, 100, 0.0, 99.99])
def test_score_bounds_are_inclusive(client, phi2, value):
    assert client.patch("/api/models/microsoft/phi-2/metadata", json={"gpqa_score": value}).status_code == 200


def test_perplexity_has_no_maximum(client, phi2, stored):
    assert client.patch("/api/models/microsoft/phi-2/metadata", json={"perplexity": 123456.75}).status_code == 200
    assert stored("microsoft/phi-2")["perplexity"] == 123456.75


def test_writes_never_touch_fields_the_request_did_not_name(client, phi2, stored):
    client.patch("/api/models/microsoft/phi-2/config", json=SEED_CONFIG)
    client.patch("/api/models/microsoft/phi-2/metadata", json=SEED_METADATA)
    client.patch("/api/models/microsoft/phi-2/config", json={"compatibility_status": "compatible"})
    client.patch("/api/models/microsoft/phi-2/metadata", json={"quantization": "None"})

    row = stored("microsoft/phi-2")
    assert row["compatibility_status"] == "compatible"
    assert row["compatibility_notes"] == "Works after restart"
    assert row["load_config"] == SEED_CONFIG["load_config"]
    assert {k: row[k] for k in SEED_METADATA} == SEED_METADATA
    assert row["quantization"] == "None"


def test_combined_patch_writes_both_halves(client, phi2, stored):
    response = client.patch("/api/models/microsoft/phi-2", json={"config": SEED_CONFIG, "metadata": SEED_METADATA})
    assert response.status_code == 200
    row = stored("microsoft/phi-2")
    assert row["compatibility_status"] == "degraded"
    assert row["mmlu_score"] == 72.5
    assert row["version"] == phi2.json["version"] + 1  # one write, not two


def test_combined_patch_with_invalid_metadata_saves_nothing(client, phi2, stored):
    before = stored("microsoft/phi-2")
    response = client.patch(
        "/api/models/microsoft/phi-2",
        json={"config": SEED_CONFIG, "metadata": {"mmlu_score": 150, "humaneval_score": 45.2}},
    )
    assert response.status_code == 422
    assert response.json["errors"] == {
        "json": {"metadata": {"mmlu_score": ["Must be greater than or equal to 0 and less than or equal to 100."]}}
    }
    assert stored("microsoft/phi-2") == before


def test_combined_patch_with_invalid_config_saves_nothing(client, phi2, stored):
    before = stored("microsoft/phi-2")
    response = client.patch(
        "/api/models/microsoft/phi-2",
        json={"config": {"compatibility_status": "broken"}, "metadata": SEED_METADATA},
    )
    assert response.status_code == 422
    assert "config.compatibility_status: Must be one of" in response.json["message"]
    assert stored("microsoft/phi-2") == before


def test_combined_patch_fails_as_a_whole_when_the_write_fails(client, phi2, stored, app, monkeypatch):
    """The two halves share one transaction: a database failure after validation leaves both unsaved."""
    from sqlalchemy.exc import OperationalError

    from modelhub.extensions import db

    before = stored("microsoft/phi-2")
    with app.app_context():
        session_class = type(db.session())

    def failing_commit(self):
        self.flush()  # the UPDATE reaches the database...
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))  # ...and the commit fails

    monkeypatch.setattr(session_class, "commit", failing_commit)
    response = client.patch("/api/models/microsoft/phi-2", json={"config": SEED_CONFIG, "metadata": SEED_METADATA})
    monkeypatch.undo()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert stored("microsoft/phi-2") == before
