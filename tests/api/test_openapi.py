"""The OpenAPI document describes every endpoint and every error it really returns, names its operations,
enums and headers, and states the rules the server enforces (see modelhub/api/openapi.py)."""

import pytest
from openapi_spec_validator import validate

from modelhub import models as m
from modelhub.security import SECURITY_HEADERS

# Statuses each operation's view answers; the security layer in front of every view adds FRONT
# (Host 400, token 401, body size 413), and 403 (cross-site) to writes; GETs answer 304 to If-None-Match.
# modelhub serve's front adds 408 (too slow), 414 and 431 (request line, header fields too long).
FRONT = {"400", "401", "408", "413", "414", "431"}
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
    ("/api/models/{model_name}/primary-copy", "put"): {"200", "400", "404", "409", "412", "413", "415", "422", "503"},
    ("/api/models/{model_name}/card-scores", "post"): {"200", "404", "503"},
    ("/api/export", "get"): {"200", "503"},
    ("/api/import", "post"): {"200", "400", "409", "413", "415", "422", "503"},
    ("/api/models/{model_name}/report", "get"): {"200", "404", "409", "503"},
    ("/api/hosts", "get"): {"200", "503"},
    ("/api/host-jobs", "get"): {"200", "422", "503"},
    ("/api/host-jobs/{job_id}", "get"): {"200", "404", "503"},
    ("/api/host-jobs/{job_id}", "delete"): {"200", "404", "409", "503"},
    ("/api/retest", "get"): {"200", "503"},
    ("/api/retest", "post"): {"202", "409", "503"},
    ("/api/retest", "delete"): {"200", "409", "503"},
    ("/api/models/{model_name}/configs", "get"): {"200", "404", "503"},
    ("/api/models/{model_name}/configs/{number}", "get"): {"200", "404", "503"},
    ("/api/models/{model_name}/configs/{number}/restore", "post"): {"201", "404", "409", "412", "422", "503"},
    ("/api/models/{model_name}/compatibility", "get"): {"200", "404", "503"},
    ("/api/models/{model_name}/preflight", "get"): {"200", "404", "409", "422", "503"},
    ("/api/models/{model_name}/autoconfigure", "get"): {"200", "404", "503"},
    ("/api/models/{model_name}/autoconfigure", "post"): {"202", "400", "404", "409", "413", "415", "422", "503"},
    ("/api/models/{model_name}/autoconfigure", "delete"): {"200", "404", "409", "503"},
    ("/api/autoconfigure-runs/{run_id}", "get"): {"200", "404", "503"},
    ("/api/autoconfigure-runs/{run_id}/apply", "post"): {"201", "404", "409", "503"},
    ("/api/environments", "get"): {"200", "503"},
    ("/api/environments/{environment_id}", "get"): {"200", "404", "503"},
    ("/api/health", "get"): {"200"},
}


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method != "parameters":
                yield path, method, operation


def test_every_endpoint_and_its_status_codes_are_documented(spec):
    documented = {(path, method): set(operation["responses"]) for path, method, operation in operations(spec)}
    expected = {(path, method): codes | FRONT | ({"403"} if method != "get" else {"304"})
                for (path, method), codes in EXPECTED.items()}
    assert documented == expected


def test_request_bodies_name_the_seed_fields(spec):
    schemas = spec["components"]["schemas"]
    assert set(schemas["ConfigUpdate"]["properties"]) == {"compatibility_status", "compatibility_notes", "load_config"}
    assert schemas["ConfigUpdate"]["properties"]["compatibility_status"] == {"$ref": "#/components/schemas/CompatibilityStatus"}
    assert schemas["CompatibilityStatus"]["enum"] == [
        "unknown", "compatible", "incompatible", "degraded", "testing",
    ]
    assert {"mmlu_score", "perplexity", "max_throughput_tokens_sec", "avg_latency_ms", "quantization"} <= set(
        schemas["MetadataUpdate"]["properties"]
    )
    assert schemas["MetadataUpdate"]["properties"]["mmlu_score"]["maximum"] == 100
    assert set(schemas["CombinedUpdate"]["properties"]) == {"config", "metadata"}


def test_guarded_writes_document_if_match(spec):
    for path, method in [("/api/models/{model_name}/config", "patch"), ("/api/models/{model_name}", "delete"),
                         ("/api/models/{model_name}/primary-copy", "put")]:
        names = [p["name"] for p in spec["paths"][path][method].get("parameters", [])]
        assert "If-Match" in names


OPERATION_IDS = {
    ("/api/models", "get"): "listModels",
    ("/api/models", "post"): "registerModel",
    ("/api/models/{model_name}", "get"): "getModel",
    ("/api/models/{model_name}", "patch"): "updateModel",
    ("/api/models/{model_name}", "delete"): "deleteModel",
    ("/api/models/{model_name}/config", "patch"): "updateModelConfig",
    ("/api/models/{model_name}/metadata", "patch"): "updateModelMetadata",
    ("/api/models/{model_name}/load", "post"): "startLoad",
    ("/api/models/{model_name}/unload", "post"): "unloadModel",
    ("/api/models/{model_name}/attempts", "get"): "listAttempts",
    ("/api/plugins", "get"): "listPlugins",
    ("/api/scan", "post"): "startScan",
    ("/api/scan", "get"): "getScanStatus",
    ("/api/models/{model_name}/benchmark", "post"): "startBenchmark",
    ("/api/models/{model_name}/measurements", "get"): "listMeasurements",
    ("/api/models/{model_name}/copies", "get"): "listCopies",
    ("/api/models/{model_name}/primary-copy", "put"): "setPrimaryCopy",
    ("/api/models/{model_name}/card-scores", "post"): "importCardScores",
    ("/api/export", "get"): "exportRegistry",
    ("/api/import", "post"): "importRegistry",
    ("/api/models/{model_name}/report", "get"): "getCompatibilityReport",
    ("/api/hosts", "get"): "listHosts",
    ("/api/host-jobs", "get"): "listHostJobs",
    ("/api/host-jobs/{job_id}", "get"): "getHostJob",
    ("/api/host-jobs/{job_id}", "delete"): "cancelHostJob",
    ("/api/retest", "get"): "getRetest",
    ("/api/retest", "post"): "startRetest",
    ("/api/retest", "delete"): "stopRetest",
    ("/api/models/{model_name}/configs", "get"): "listConfigVersions",
    ("/api/models/{model_name}/configs/{number}", "get"): "getConfigVersion",
    ("/api/models/{model_name}/configs/{number}/restore", "post"): "restoreConfigVersion",
    ("/api/models/{model_name}/compatibility", "get"): "getModelCompatibility",
    ("/api/models/{model_name}/preflight", "get"): "getModelPreflight",
    ("/api/models/{model_name}/autoconfigure", "get"): "listAutoconfigureRuns",
    ("/api/models/{model_name}/autoconfigure", "post"): "startAutoconfigure",
    ("/api/models/{model_name}/autoconfigure", "delete"): "stopAutoconfigure",
    ("/api/autoconfigure-runs/{run_id}", "get"): "getAutoconfigureRun",
    ("/api/autoconfigure-runs/{run_id}/apply", "post"): "applyAutoconfigureResult",
    ("/api/environments", "get"): "listEnvironments",
    ("/api/environments/{environment_id}", "get"): "getEnvironment",
    ("/api/health", "get"): "getHealth",
}


def test_the_document_is_valid_openapi(spec):
    validate(spec)  # openapi-spec-validator: raises on the first error


def test_every_operation_has_its_own_operation_id(spec):
    assert {(path, method): operation.get("operationId") for path, method, operation in operations(spec)} == OPERATION_IDS


def test_the_links_from_a_created_model_name_existing_operations(spec):
    links = spec["paths"]["/api/models"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} <= set(OPERATION_IDS.values())
    assert len(links) == 17


def _resolve(spec, response):
    if "$ref" in response:
        return spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def test_every_response_declares_the_headers_the_server_sends(spec):
    headers = spec["components"]["headers"]
    assert headers["ETag"]["required"] and headers["Retry-After"]["schema"]["type"] == "string"
    for path, method, operation in operations(spec):
        for code, response in operation["responses"].items():
            declared = set(_resolve(spec, response)["headers"])
            assert {"ETag", *SECURITY_HEADERS} <= declared, (path, method, code)
            if code in ("201", "202"):
                assert "Location" in declared, (path, method, code)
            if code == "503":
                assert "Retry-After" in declared, (path, method, code)
    for path in ("/api/export", "/api/models/{model_name}/report"):
        assert "Content-Disposition" in spec["paths"][path]["get"]["responses"]["200"]["headers"]
    assert "Allow" in spec["components"]["responses"]["MethodNotAllowed"]["headers"]


def test_every_error_answer_has_the_error_schema(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "status", "message"} and "errors" in error["properties"]
    for path, method, operation in operations(spec):
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                schema = _resolve(spec, response)["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, code)


def _walk(node, where=""):
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}/{index}")


@pytest.mark.parametrize("component, values", [
    ("CompatibilityStatus", m.COMPATIBILITY_STATUSES), ("CacheLocation", m.CACHE_LOCATIONS),
    ("RunOutcome", m.ATTEMPT_OUTCOMES), ("WorkerJob", m.WORKER_JOBS),
])
def test_each_enum_is_one_named_component_every_use_refers_to(spec, component, values):
    assert spec["components"]["schemas"][component] == {"type": "string", "enum": list(values)}
    inline = [where for where, node in _walk(spec) if node.get("enum") == list(values)]
    assert inline == [f"/components/schemas/{component}"]
    uses = [where for where, node in _walk(spec) if node.get("$ref") == f"#/components/schemas/{component}"]
    assert uses


def test_every_array_says_what_its_items_are(spec):
    untyped = [where for where, node in _walk(spec)
               if (node.get("type") == "array" or "array" in (node.get("type") or [])) and "items" not in node]
    assert untyped == []


def test_load_config_keys_are_the_plugins_and_a_string_must_hold_that_object(spec, app):
    keys = sorted(app.extensions["modelhub.plugins"].fields)
    schemas = spec["components"]["schemas"]
    config_object = schemas["LoadConfigObject"]
    assert config_object["propertyNames"] == {"enum": keys}
    assert set(config_object["properties"]) == set(keys)
    assert all(key in config_object["description"] for key in keys)
    assert schemas["LoadConfigText"]["contentMediaType"] == "application/json"
    assert schemas["LoadConfigText"]["contentSchema"] == {"$ref": "#/components/schemas/LoadConfigObject"}
    for schema in ("ConfigUpdate", "ModelCreate", "ModelEntry", "CompatibilityReport"):
        branches = schemas[schema]["properties"]["load_config"]["oneOf"]
        assert {"$ref": "#/components/schemas/LoadConfigText"} in branches, schema
        assert {"$ref": "#/components/schemas/LoadConfigObject"} in branches, schema
