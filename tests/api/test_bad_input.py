"""Every kind of bad input gets a clear 4xx with a message per field, and the stored row stays as it was."""

import json

import pytest

NAME = "microsoft/phi-2"
CONFIG = f"/api/models/{NAME}/config"
METADATA = f"/api/models/{NAME}/metadata"
COMBINED = f"/api/models/{NAME}"
RANGE_0_100 = "Must be greater than or equal to 0 and less than or equal to 100."
NOT_A_NUMBER = "Must be a number (not a string or a boolean)."
NON_NEGATIVE = "Must be greater than or equal to 0."


@pytest.fixture
def model(client, stored):
    """A model with values in every column the PATCH endpoints write, so that changes would show."""
    body = {
        "model_name": NAME,
        "compatibility_status": "degraded",
        "compatibility_notes": "CreateContext fails on first load",
        "load_config": '{"attn_implementation": "eager"}',
        "mmlu_score": 56.7,
        "perplexity": 9.5,
        "quantization": "None",
    }
    assert client.post("/api/models", json=body).status_code == 201
    return stored(NAME)


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


# (path, json body, field path in errors["json"], message)
FIELD_ERRORS = [
    (CONFIG, {"compatibility_status": "broken"}, ("compatibility_status",),
     "Must be one of: unknown, compatible, incompatible, degraded, testing."),
    (CONFIG, {"compatibility_status": None}, ("compatibility_status",), "Field may not be null."),
    (CONFIG, {"compatibility_status": 3}, ("compatibility_status",), "Not a valid string."),
    (CONFIG, {"compatibility_notes": ["a"]}, ("compatibility_notes",), "Not a valid string."),
    (CONFIG, {"compatibility_notes": "x" * 10_001}, ("compatibility_notes",), "Longer than the maximum of 10000 characters."),
    (CONFIG, {"compatibility_notes": "a\x00b"}, ("compatibility_notes",), "Must not contain NUL characters."),
    (CONFIG, {"load_config": '{"attn_implementation": "eager" "x": 1}'}, ("load_config",),
     "Invalid JSON: Expecting ',' delimiter: line 1 column 33"),
    (CONFIG, {"load_config": '{"a": 1,}'}, ("load_config",),
     "Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 9"),
    (CONFIG, {"load_config": "[1, 2]"}, ("load_config",), "Must be a JSON object ({...}), not an array."),
    (CONFIG, {"load_config": '"eager"'}, ("load_config",), "Must be a JSON object ({...}), not a string."),
    (CONFIG, {"load_config": "42"}, ("load_config",), "Must be a JSON object ({...}), not a number."),
    (CONFIG, {"load_config": "true"}, ("load_config",), "Must be a JSON object ({...}), not a boolean."),
    (CONFIG, {"load_config": '{"max_memory": NaN}'}, ("load_config",), "Invalid JSON: NaN is not allowed."),
    (CONFIG, {"load_config": '{"x": -Infinity}'}, ("load_config",), "Invalid JSON: -Infinity is not allowed."),
    (CONFIG, {"load_config": "[" * 5000 + "]" * 5000}, ("load_config",), "Invalid JSON: nested too deeply."),
    (CONFIG, {"load_config": _nested(40)}, ("load_config",), "Nested deeper than 32 levels."),
    (CONFIG, {"load_config": 42}, ("load_config",), "Must be a JSON object, or a string holding one."),
    (CONFIG, {"load_config": ["a"]}, ("load_config",), "Must be a JSON object, or a string holding one."),
    (CONFIG, {"load_config": "x" * 70_000}, ("load_config",), "Longer than the maximum of 65536 characters."),
    (CONFIG, {"bogus": 1}, ("bogus",), "Unknown field."),
    (CONFIG, {"mmlu_score": 1}, ("mmlu_score",), "Unknown field."),
    (CONFIG, {}, ("_schema",), "Send at least one of: compatibility_status, compatibility_notes, load_config."),
    (METADATA, {"mmlu_score": 150}, ("mmlu_score",), RANGE_0_100),
    (METADATA, {"gpqa_score": -0.1}, ("gpqa_score",), RANGE_0_100),
    (METADATA, {"truthfulqa_score": 100.01}, ("truthfulqa_score",), RANGE_0_100),
    (METADATA, {"mmlu_score": "72.5"}, ("mmlu_score",), NOT_A_NUMBER),
    (METADATA, {"mmlu_score": True}, ("mmlu_score",), NOT_A_NUMBER),
    (METADATA, {"hellaswag_score": False}, ("hellaswag_score",), NOT_A_NUMBER),
    (METADATA, {"mbpp_score": [50]}, ("mbpp_score",), NOT_A_NUMBER),
    (METADATA, {"perplexity": -1}, ("perplexity",), NON_NEGATIVE),
    (METADATA, {"max_throughput_tokens_sec": -38.7}, ("max_throughput_tokens_sec",), NON_NEGATIVE),
    (METADATA, {"avg_latency_ms": -0.5}, ("avg_latency_ms",), NON_NEGATIVE),
    (METADATA, {"quantization": "Q" * 65}, ("quantization",), "Longer than the maximum of 64 characters."),
    (METADATA, {"quantization": 4}, ("quantization",), "Not a valid string."),
    (METADATA, {"compatibility_status": "compatible"}, ("compatibility_status",), "Unknown field."),
    (METADATA, {}, ("_schema",), None),
    (COMBINED, {"config": {"compatibility_status": "compatible"}, "metadata": {"math_score": 101}},
     ("metadata", "math_score"), RANGE_0_100),
    (COMBINED, {"config": {"load_config": "{"}, "metadata": {"math_score": 50}}, ("config", "load_config"),
     "Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2"),
    (COMBINED, {"config": "degraded"}, ("config", "_schema"), "Invalid input type."),
    (COMBINED, {"compatibility_status": "degraded"}, ("compatibility_status",), "Unknown field."),
    (COMBINED, {"config": {"bogus": 1}}, ("config", "bogus"), "Unknown field."),
    (COMBINED, {}, ("_schema",), "Send at least one of: config, metadata."),
]


def _dig(errors: dict, path: tuple[str, ...]):
    for key in path:
        errors = errors[key]
    return errors


@pytest.mark.parametrize("path, body, field, message", FIELD_ERRORS, ids=lambda v: None)
def test_invalid_field_is_422_with_its_message_and_changes_nothing(client, model, stored, path, body, field, message):
    response = client.patch(path, json=body)

    assert response.status_code == 422, response.json
    assert response.json["code"] == 422
    messages = _dig(response.json["errors"]["json"], field)
    if message:
        assert messages == [message]
    assert response.json["message"].startswith("Invalid request: ")
    assert stored(NAME) == model


@pytest.mark.parametrize(
    "raw, field",
    [
        ('{"mmlu_score": NaN}', "mmlu_score"),
        ('{"perplexity": Infinity}', "perplexity"),
        ('{"avg_latency_ms": -Infinity}', "avg_latency_ms"),
    ],
)
def test_nan_and_infinity_are_refused(client, model, stored, raw, field):
    response = client.patch(METADATA, data=raw, content_type="application/json")
    assert response.status_code == 422
    assert response.json["errors"]["json"][field] == ["Special numeric values (nan or infinity) are not permitted."]
    assert stored(NAME) == model


def test_nan_inside_a_load_config_object_is_refused(client, model, stored):
    response = client.patch(CONFIG, data='{"load_config": {"x": NaN}}', content_type="application/json")
    assert response.status_code == 422
    assert response.json["errors"]["json"]["load_config"] == ["NaN and Infinity are not valid JSON numbers."]
    assert stored(NAME) == model


def test_lone_surrogate_is_refused(client, model, stored):
    response = client.patch(CONFIG, data='{"compatibility_notes": "\\ud800"}', content_type="application/json")
    assert response.status_code == 422
    assert response.json["errors"]["json"]["compatibility_notes"] == ["Must be valid Unicode text (no lone surrogates)."]
    assert stored(NAME) == model


@pytest.mark.parametrize(
    "raw, status, message",
    [
        ('{"compatibility_status": "degraded"', 400, "Invalid JSON body: Expecting ',' delimiter: line 1 column 36."),
        ("not json", 400, "Invalid JSON body: Expecting value: line 1 column 1."),
        ("[" * 100_000 + "]" * 100_000, 400, "Invalid JSON body: nested too deeply."),
        ('{"a":' * 50_000 + "1" + "}" * 50_000, 400, "Invalid JSON body: nested too deeply."),
        (b"\xff\xfe{}", 400, None),
        ("[]", 422, "Invalid request: Invalid input type."),
        ('"degraded"', 422, "Invalid request: Invalid input type."),
    ],
    ids=["syntax", "not-json", "deep-array", "deep-object", "bad-utf8", "array", "string"],
)
@pytest.mark.parametrize("path", [CONFIG, METADATA, COMBINED])
def test_malformed_body_is_4xx(client, model, stored, path, raw, status, message):
    response = client.patch(path, data=raw, content_type="application/json")
    assert response.status_code == status
    if message:
        assert response.json["message"] == message
    assert stored(NAME) == model


@pytest.mark.parametrize("path", [CONFIG, METADATA, COMBINED])
def test_body_not_declared_as_json_is_415(client, model, stored, path):
    response = client.patch(path, data='{"compatibility_status": "degraded"}', content_type="text/plain")
    assert response.status_code == 415
    assert response.json["message"] == "Send the request body as JSON, with 'Content-Type: application/json'."
    assert stored(NAME) == model


def test_oversized_body_is_413(client, model, stored):
    body = json.dumps({"compatibility_notes": "x" * (2 * 1024 * 1024)})
    response = client.patch(CONFIG, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json["code"] == 413
    assert stored(NAME) == model


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({}, "model_name", "Missing data for required field."),
        ({"model_name": ""}, "model_name", None),
        ({"model_name": "../etc/passwd"}, "model_name", None),
        ({"model_name": "a/b/c"}, "model_name", None),
        ({"model_name": "org/"}, "model_name", None),
        ({"model_name": "x" * 201}, "model_name", "Longer than the maximum of 200 characters."),
        ({"model_name": "ok", "hf_path": "bad path"}, "hf_path", None),
        ({"model_name": "ok", "cache_location": "tertiary"}, "cache_location", "Must be one of: primary, secondary, custom."),
        ({"model_name": "ok", "cache_path": "/a\x00b"}, "cache_path", "Must not contain NUL characters."),
        ({"model_name": "ok", "version": 7}, "version", "Unknown field."),
        ({"model_name": "ok", "mmlu_score": 101}, "mmlu_score", RANGE_0_100),
    ],
)
def test_invalid_registration_is_422_and_creates_nothing(client, stored, body, field, message):
    response = client.post("/api/models", json=body)
    assert response.status_code == 422
    messages = response.json["errors"]["json"][field]
    if message:
        assert messages == [message]
    else:
        assert "Hugging Face id" in messages[0] or messages[0].startswith("Longer")
    assert client.get("/api/models").json["pagination"]["total"] == 0
