"""Model names and the API's per-model sub-resources (/api/models/{name}/config, /load, ...)."""

import re

from modelhub.fields import MODEL_SUBRESOURCES


def test_every_per_model_endpoint_is_a_reserved_last_part(app):
    suffixes = {
        match.group(1)
        for rule in app.url_map.iter_rules()
        if (match := re.fullmatch(r"/api/models/<[^>]*model_name>/([^/<]+)", rule.rule))
    }
    assert suffixes == set(MODEL_SUBRESOURCES)


def test_a_name_ending_in_a_sub_resource_is_refused_with_a_reason(client):
    response = client.post("/api/models", json={"model_name": "acme/load", "hf_path": "acme/load"})
    assert response.status_code == 422
    assert "/api/models/acme/load is the load endpoint of model 'acme'" in response.json["errors"]["json"]["model_name"][0]
    assert client.post("/api/models", json={"model_name": "acme/load-model", "hf_path": "acme/load"}).status_code == 201
    assert client.post("/api/models", json={"model_name": "load"}).status_code == 201


def test_undeclared_methods_on_a_sub_resource_answer_405_with_allow(client):
    client.post("/api/models", json={"model_name": "acme/tiny"})
    for method, path, allowed in [
        ("GET", "/api/models/acme/config", "PATCH"),
        ("DELETE", "/api/models/acme/load", "POST"),
        ("PATCH", "/api/models/acme/attempts", "GET"),
    ]:
        response = client.open(path, method=method)
        assert response.status_code == 405, (method, path)
        assert allowed in response.headers["Allow"]
        assert response.json["code"] == 405
    options = client.open("/api/models/acme/config", method="OPTIONS")
    assert set(options.headers["Allow"].split(", ")) == {"PATCH", "OPTIONS"}
    assert client.get("/api/models/acme/tiny").json["model_name"] == "acme/tiny"
