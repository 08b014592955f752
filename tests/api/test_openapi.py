"""The OpenAPI document describes every endpoint and every error it really returns."""

import pytest

EXPECTED = {
    ("/api/models", "get"): {"200", "422", "503"},
    ("/api/models", "post"): {"201", "400", "409", "413", "415", "422", "503"},
    ("/api/models/{model_name}", "get"): {"200", "404", "503"},
    ("/api/models/{model_name}", "patch"): {"200", "400", "404", "412", "413", "415", "422", "503"},
    ("/api/models/{model_name}", "delete"): {"204", "404", "412", "503"},
    ("/api/models/{model_name}/config", "patch"): {"200", "400", "404", "412", "413", "415", "422", "503"},
    ("/api/models/{model_name}/metadata", "patch"): {"200", "400", "404", "412", "413", "415", "422", "503"},
    ("/api/models/{model_name}/load", "post"): {"202", "400", "404", "409", "413", "415", "422", "503"},
    ("/api/models/{model_name}/unload", "post"): {"200", "404", "409", "503"},
    ("/api/models/{model_name}/attempts", "get"): {"200", "404", "422", "503"},
    ("/api/plugins", "get"): {"200"},
    ("/api/scan", "post"): {"202", "409"},
    ("/api/models/{model_name}/benchmark", "post"): {"202", "400", "404", "409", "413", "415", "422", "503"},
    ("/api/models/{model_name}/measurements", "get"): {"200", "404", "503"},
    ("/api/scan", "get"): {"200"},
    ("/api/models/{model_name}/copies", "get"): {"200", "404", "503"},
    ("/api/models/{model_name}/card-scores", "post"): {"200", "404", "503"},
    ("/api/export", "get"): {"200", "503"},
    ("/api/import", "post"): {"200", "400", "409", "413", "415", "422", "503"},
    ("/api/models/{model_name}/report", "get"): {"200", "404", "409", "503"},
}


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def test_every_endpoint_and_its_status_codes_are_documented(spec):
    documented = {
        (path, method): set(operation["responses"]) - {"default"}
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method != "parameters"
    }
    assert documented == EXPECTED


def test_request_bodies_name_the_seed_fields(spec):
    schemas = spec["components"]["schemas"]
    assert set(schemas["ConfigUpdate"]["properties"]) == {"compatibility_status", "compatibility_notes", "load_config"}
    assert schemas["ConfigUpdate"]["properties"]["compatibility_status"]["enum"] == [
        "unknown", "compatible", "incompatible", "degraded", "testing",
    ]
    assert {"mmlu_score", "perplexity", "max_throughput_tokens_sec", "avg_latency_ms", "quantization"} <= set(
        schemas["MetadataUpdate"]["properties"]
    )
    assert schemas["MetadataUpdate"]["properties"]["mmlu_score"]["maximum"] == 100
    assert set(schemas["CombinedUpdate"]["properties"]) == {"config", "metadata"}


def test_guarded_writes_document_if_match(spec):
    for path, method in [("/api/models/{model_name}/config", "patch"), ("/api/models/{model_name}", "delete")]:
        names = [p["name"] for p in spec["paths"][path][method].get("parameters", [])]
        assert "If-Match" in names
