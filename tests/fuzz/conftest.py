"""Fixtures for fuzzing the API: an app on which loads and scans are cheap, and its OpenAPI schema.

Load and benchmark requests start real worker processes: the models the fuzzer registers are not on
disk, so each worker fails within seconds, and a short load timeout bounds any that would not. Scans
walk empty caches in tmp directories. Workers still running at the end are stopped.
"""

import copy
import json

import pytest
import schemathesis
from schemathesis.generation.modes import GenerationMode

from modelhub.app import create_app

# load_config values every default plugin set accepts, as text and as an object.
VALID_LOAD_CONFIGS = ('{"dtype": "float16"}', {"dtype": "bfloat16", "attn_implementation": "eager"})


@pytest.fixture
def fuzz_app(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("MODELHUB_SECONDARY_CACHE", str(tmp_path / "disk2"))
    app = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_HOME": str(tmp_path),
        "MODELHUB_LOAD_TIMEOUT": 10.0,
    })
    yield app
    app.extensions["modelhub.supervisor"].shutdown()
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture
def model_dir(tmp_path):
    """A folder that passes cache_path's checks (a config.json, nothing else)."""
    folder = tmp_path / "custom-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return str(folder)


@pytest.fixture
def api_schema(fuzz_app, model_dir):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)

    @schema.hook("map_case")
    def valid_beyond_json_schema(context, case):
        """Some rules of a valid request depend on more than its JSON: cache_path must be a model folder
        on this disk, a load_config string must hold a JSON object and its keys must be ones the loaded
        plugins know, If-Match must name the model's current version (else the answer is a correct 412).
        In cases meant to be valid, such values are swapped for valid ones; everything else, and every
        value of the cases meant to be invalid, is the fuzzer's own."""
        if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
            return case
        # Copies: the generator may hand the same objects to later cases.
        if case.headers and "If-Match" in case.headers:
            case.headers = {**case.headers, "If-Match": "*"}
        if not isinstance(case.body, dict):
            return case
        case.body = copy.deepcopy(case.body)
        if case.operation.path == "/api/import":
            # History (environments, kwargs, results) is free-form JSON, but no database stores NUL.
            case.body = _without_nul(case.body)
        models = case.body.get("models")  # POST /api/import of a whole registry
        if isinstance(models, list):
            # Names are unique in a registry, as are the start times of one model's runs.
            models = case.body["models"] = _unique(models, "model_name")
            for entry in models:
                for runs in ("attempts", "measurements"):
                    if isinstance(entry.get(runs), list):
                        entry[runs] = _unique(entry[runs], "started_at")
        for fields in (case.body, case.body.get("config"), *(models if isinstance(models, list) else ())):
            if not isinstance(fields, dict):
                continue
            if isinstance(fields.get("cache_path"), str):
                fields["cache_path"] = model_dir
            if fields is not case.body and "metric_sources" in fields:
                # In an import, a source must match a value and a measurement of the same entry.
                fields["metric_sources"] = None
            load_config = fields.get("load_config")
            if (isinstance(load_config, str) and load_config.strip()) or (isinstance(load_config, dict) and load_config):
                fields["load_config"] = VALID_LOAD_CONFIGS[isinstance(load_config, dict)]
        return case

    return schema


def _unique(items: list, key: str) -> list:
    seen = set()
    kept = []
    for item in items:
        if isinstance(item, dict) and item.get(key) in seen:
            continue
        kept.append(item)
        if isinstance(item, dict) and isinstance(item.get(key), str):
            seen.add(item[key])
    return kept


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    # schemathesis' from_fixture() reads and rewrites the private ``Function._nodeid``, which
    # pytest 9 no longer has; it only uses it to name each operation in reports.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
