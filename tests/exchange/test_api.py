"""``GET /api/export``, ``POST /api/import`` and ``GET /api/models/{name}/report`` over HTTP, and every
way a bad file is refused: a 4xx with per-field messages, and nothing changed."""

import copy
import json

import pytest

from tests.exchange.conftest import export_text, fill


@pytest.fixture
def exported(app) -> str:
    fill(app)
    return export_text(app)


def post(client, body, query: str = "", content_type: str = "application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/api/import{query}", data=data, content_type=content_type)


def test_export_downloads_the_document(client, exported):
    response = client.get("/api/export")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="modelhub-registry-')
    assert response.get_data(as_text=True) == exported  # the same bytes as `modelhub export`


def test_import_dry_run_then_apply_exactly_that_plan(client, other_app, exported):
    other = other_app.test_client()

    preview = post(other, exported, "?dry_run=true")
    assert preview.status_code == 200, preview.json
    assert preview.json["dry_run"] is True and preview.json["summary"]["models_added"] == 4
    assert other.get("/api/models").json["items"] == []

    applied = post(other, exported, f"?expect_plan={preview.json['plan_digest']}")
    assert applied.status_code == 200 and applied.json["dry_run"] is False
    assert other.get("/api/export").get_data(as_text=True) == exported

    stale = post(other, exported, f"?expect_plan={preview.json['plan_digest']}")
    assert stale.status_code == 409
    assert "changed since the preview" in stale.json["message"]


def test_import_options_are_checked(client, exported):
    response = post(client, exported, "?on_conflict=overwrite")
    assert response.status_code == 422
    assert response.json["errors"]["query"]["on_conflict"] == ["Must be one of: keep, replace."]
    assert post(client, exported, "?dryrun=1").status_code == 422  # a typo is not silently ignored


def _bad(exported: str, change) -> dict:
    document = json.loads(exported)
    change(document)
    return document


def _set(path, value):
    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


BAD_DOCUMENTS = [
    ("wrong format", _set(["format"], "something-else"), ["format"], "this file says 'something-else'"),
    # A file without a format is told so in words, not "this file says None".
    ("no format", lambda d: d.pop("format"), ["format"], 'has no \\"format\\" field'),
    ("null format", _set(["format"], None), ["format"], 'this file\'s \\"format\\" is null'),
    ("format not a text", _set(["format"], {"a": 1}), ["format"], "not a text"),
    ("newer version", _set(["version"], 3), ["version"], "newer modelhub"),
    ("version as text", _set(["version"], "1"), ["version"], "integer"),
    ("unknown top-level field", _set(["exported_at"], "today"), ["exported_at"], "Unknown field"),
    ("unknown model field", _set(["models", 1, "colour"], "blue"), ["models", "1", "colour"], "Unknown field"),
    ("score as text", _set(["models", 1, "mmlu_score"], "56.7"), ["models", "1", "mmlu_score"], "number"),
    ("score out of range", _set(["models", 1, "mmlu_score"], 156.7), ["models", "1", "mmlu_score"], "100"),
    ("boolean as a number", _set(["models", 0, "perplexity"], True), ["models", "0", "perplexity"], "boolean"),
    ("duplicate names", _set(["models", 2, "model_name"], "gpt2"), ["models", "2", "model_name"], "Duplicate"),
    ("bad model name", _set(["models", 0, "model_name"], "../etc"), ["models", "0", "model_name"], "Hugging Face id"),
    ("unknown load_config key", _set(["models", 1, "load_config"], '{"foo_bar": 1}'), ["models", "1", "load_config"], "foo_bar"),
    ("a run still going", _set(["models", 1, "attempts", 0, "outcome"], "running"), ["models", "1", "attempts", "0", "outcome"], "one of"),
    ("time without offset", _set(["models", 1, "attempts", 0, "started_at"], "2026-01-05T10:00:00"),
     ["models", "1", "attempts", "0", "started_at"], "UTC offset"),
    ("two runs at one moment", lambda d: d["models"][1]["attempts"].append(copy.deepcopy(d["models"][1]["attempts"][0])),
     ["models", "1", "attempts", "2", "started_at"], "same moment"),
    ("measurement not in the file", lambda d: d["models"][1]["measurements"].pop(),
     ["models", "1", "metric_sources", "perplexity"], "not among"),
    ("database id instead of a moment", _set(["models", 1, "metric_sources", "perplexity", "measurement"], 7),
     ["models", "1", "metric_sources", "perplexity"], "date and time"),
    ("a source without a value", _set(["models", 0, "metric_sources"], {"mmlu_score": {"source": "card"}}),
     ["models", "0", "metric_sources", "mmlu_score"], "no value"),
    ("NUL in notes", _set(["models", 1, "compatibility_notes"], "a\x00b"), ["models", "1", "compatibility_notes"], "NUL"),
    ("environment not an object", _set(["models", 1, "attempts", 0, "environment"], "ROCm"),
     ["models", "1", "attempts", "0", "environment"], "object"),
    ("nested too deep", _set(["models", 1, "attempts", 0, "environment"], json.loads("[" * 40 + "]" * 40)),
     ["models", "1", "attempts", "0", "environment"], "object"),
    ("models not a list", _set(["models"], {"gpt2": {}}), ["models"], "list"),
]


@pytest.mark.parametrize("case, change, where, says", BAD_DOCUMENTS, ids=[case[0] for case in BAD_DOCUMENTS])
def test_a_bad_document_is_refused_with_per_field_messages_and_changes_nothing(client, exported, case, change, where, says):
    client.delete("/api/models/gpt2")  # so that the file would add a model, were it accepted
    before = client.get("/api/export").get_data(as_text=True)

    response = post(client, _bad(exported, change))

    assert response.status_code == 422, response.json
    errors = response.json["errors"]["json"]
    for key in where:
        errors = errors[key]
    assert says.lower() in json.dumps(errors).lower()
    assert response.json["message"].startswith("Invalid request: ")
    assert client.get("/api/export").get_data(as_text=True) == before


@pytest.mark.parametrize("body, status, says", [
    # Not JSON at all (a file, unlike a typed request, has no business holding them): the whole file is refused.
    ('{"format": "modelhub-registry", "version": 1, "models": [{"model_name": "gpt2", "perplexity": NaN}]}', 400, "NaN"),
    ('{"format": "modelhub-registry", "version": 1, "models": [{"model_name": "gpt2", "perplexity": -Infinity}]}', 400, "Infinity"),
    ('{"format": "modelhub-registry", "version": 1, "models": [', 400, "Invalid JSON"),
    ("[1, 2]", 422, "JSON object"),
    ("", 400, "empty"),
    (b"\xff\xfe{}", 400, "UTF-8"),
    ("[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
])
def test_text_that_is_not_a_document_is_refused(client, body, status, says):
    response = post(client, body)
    assert response.status_code == status
    assert says.lower() in response.json["message"].lower()
    assert client.get("/api/models").json["items"] == []


def test_not_json_and_too_large(app, client, exported):
    assert post(client, exported, content_type="text/plain").status_code == 415
    app.config["MODELHUB_IMPORT_MAX_BYTES"] = 1000
    response = post(client, exported)
    assert response.status_code == 413
    assert client.get("/api/models").json["pagination"]["total"] == 4  # fill's four, nothing more


def test_an_import_bigger_than_an_ordinary_request_is_accepted(app, client, other_app, exported):
    document = json.loads(exported)
    for attempt in document["models"][1]["attempts"]:  # long tracebacks
        attempt["error_message"] = "x" * (app.config["MAX_CONTENT_LENGTH"] // 2 + 1000)
    response = post(other_app.test_client(), document)
    assert response.status_code == 200, response.json
    assert response.json["summary"]["attempts_added"] == 3


def test_report_endpoint(client, exported):
    response = client.get("/api/models/microsoft/phi-2/report")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="modelhub-report-microsoft--phi-2.json"'
    report = response.json
    assert report["format"] == "modelhub-compatibility-report" and report["version"] == 1
    assert report["load_config"] == '{"attn_implementation": "eager",  "dtype": "bfloat16"}'
    assert report["proven_on"]["environment"]["rocm"] == "6.2.41133"
    assert report["measured"]["results"]["throughput"]["best_tokens_per_sec"] == 88.125

    assert client.get("/api/models/Qwen/Qwen2.5-0.5B/report").status_code == 409  # never loaded successfully
    assert "never loaded successfully" in client.get("/api/models/gpt2/report").json["message"]
    assert client.get("/api/models/nobody/report").status_code == 404
