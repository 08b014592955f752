"""Every JSON endpoint parses its body strictly: a huge integer or a key given twice is a 400 naming the
problem (never a 500, never a silently dropped value), and nothing changes."""

import pytest

NAME = "tiny/model"
HUGE = "1" + "0" * 5000


def _json_operations(client) -> list[tuple[str, str]]:
    """(method, path) of every operation whose request body is JSON, from the live OpenAPI document."""
    document = client.get("/api/openapi.json").json
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters" and "application/json" in operation.get("requestBody", {}).get("content", {}):
                operations.append((method, path.replace("{model_name}", NAME)))
    return operations


@pytest.fixture
def model(client, stored):
    assert client.post("/api/models", json={"model_name": NAME, "compatibility_status": "degraded",
                                            "load_config": '{"dtype": "float32"}', "perplexity": 9.5}).status_code == 201
    return stored(NAME)


def _send(client, method, path, body):
    return client.open(path, method=method.upper(), data=body, content_type="application/json")


def test_every_json_endpoint_is_covered(client):
    methods_and_paths = _json_operations(client)
    assert ("patch", f"/api/models/{NAME}/config") in methods_and_paths
    assert ("post", "/api/import") in methods_and_paths
    assert len(methods_and_paths) >= 7


def test_a_huge_integer_is_refused_everywhere(client, model, stored):
    for method, path in _json_operations(client):
        response = _send(client, method, path, f'{{"x": {HUGE}}}')
        assert response.status_code == 400, (method, path, response.json)
        assert "Invalid JSON" in response.json["message"], path
        assert "an integer of 5,001 digits (the limit is 4,300)." in response.json["message"], path
    assert stored(NAME) == model


def test_a_key_given_twice_is_refused_everywhere(client, model, stored):
    for method, path in _json_operations(client):
        response = _send(client, method, path, '{"compatibility_status": "compatible", "compatibility_status": "x"}')
        assert response.status_code == 400, (method, path, response.json)
        assert "the key 'compatibility_status' appears twice in one object" in response.json["message"], path
    assert stored(NAME) == model


@pytest.mark.parametrize(
    "path, body, field, message",
    [
        (f"/api/models/{NAME}/metadata", '{"perplexity": 1' + "0" * 400 + "}", "perplexity", "Number too large."),
        (f"/api/models/{NAME}/config", '{"load_config": "{\\"x\\": ' + HUGE + '}"}', "load_config",
         "Invalid JSON: an integer of 5,001 digits (the limit is 4,300)."),
        (f"/api/models/{NAME}/config", '{"load_config": "{\\"dtype\\": \\"a\\", \\"dtype\\": \\"b\\"}"}', "load_config",
         "Invalid JSON: the key 'dtype' appears twice in one object."),
    ],
)
def test_inside_a_field_the_field_is_named(client, model, stored, path, body, field, message):
    response = client.patch(path, data=body, content_type="application/json")
    assert response.status_code == 422
    assert response.json["errors"]["json"][field] == [message]
    assert stored(NAME) == model
