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

    document = schema.raw_schema["components"]["schemas"]

    @schema.hook("map_case")
    def valid_beyond_json_schema(context, case):
        """In cases meant to be valid, the rules the document cannot state (EXCLUDED_RULES) are made to
        hold; every other value, and every value of the cases meant to be invalid, is the fuzzer's own.
        positive_data_acceptance then holds the server to the document for everything else."""
        if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
            return case
        if case.headers and "If-Match" in case.headers:
            case.headers = {**case.headers, "If-Match": "*"}  # "current_version"
        if case.operation.path == "/api/models/{model_name}/preflight" and isinstance(case.query, dict):
            case.query = dict(case.query)
            _load_config_within_plugin_rules(case.query, document)  # "load_config_text", as a query parameter
        if not isinstance(case.body, dict):
            return case
        case.body = copy.deepcopy(case.body)  # the generator may hand the same objects to later cases
        models = case.body.get("models") if isinstance(case.body.get("models"), list) else None
        if case.operation.path == "/api/import":
            case.body = _without_nul(case.body)  # "nul_in_free_form_history"
            if models is not None:
                models = case.body["models"] = _unique(case.body["models"], "model_name")  # "unique_names"
                for entry in models:
                    _one_run_per_moment(entry)
                    _sources_only_for_values(entry)
                    _history_references_hold(entry)
                    _autoconfigure_references_hold(entry)
            _environment_references_hold(case.body)
        if case.operation.path == "/api/models/{model_name}/load":
            case.body.pop("host", None)  # "known_host"
        if case.operation.path == "/api/models" and isinstance(case.body.get("cache_path"), str):
            case.body["cache_path"] = model_dir  # "cache_path_exists" (an import's path need not exist)
        for fields in (case.body, case.body.get("config"), *(models or ())):
            if isinstance(fields, dict):
                _load_config_within_plugin_rules(fields, document)
        return case

    return schema


# What the OpenAPI document cannot state, by name and why; nothing else is adjusted (see the hook).
EXCLUDED_RULES = {
    "cache_path_exists": "a custom cache_path must be a model folder on this disk: filesystem state",
    "current_version": "If-Match must name the model's current version (else a correct 412): server state, "
                       "like the existence of a name",
    "known_host": "a load's host must be a host of this registry (one whose modelhub has run on it): server "
                  "state, like the existence of a name",
    "unique_names": "model names unique in an export, run start times unique per model: JSON Schema's "
                    "uniqueItems compares whole items, not one key",
    "metric_source_references": "a metric's source needs the metric's value (an if/then per metric, on which "
                                "schemathesis 4.32.5 gives up: UnsupportedSchema) and a measured source names "
                                "one of the same entry's measurements (a cross-reference)",
    "config_version_references": "load_config version numbers unique per model, and a restore's restored_from "
                                 "and a run's config_version naming one of them (a cross-reference)",
    "environment_references": "environment fingerprints unique in an export, and a run's (or an auto-configure "
                              "run's) environment_fingerprint naming one of them (a cross-reference)",
    "autoconfigure_references": "an auto-configure run's applied_version naming one of the model's load_config "
                                "versions, a try's attempt one of its attempts, and an attempt's autoconfigure_run "
                                "one of its auto-configure runs (cross-references)",
    "nul_in_free_form_history": "environments, kwargs and results are free-form JSON; no NUL in any nested "
                                "string would take a recursive schema no generator we use supports",
    "load_config_text": "schemathesis 4.32.5 draws a contentMediaType application/json string from any JSON "
                        "value, ignoring contentSchema (the document states it)",
    "plugin_value_rules": "device_map, max_memory, quantization_config: their plugins state the rules in "
                          "words only; trust_remote_code: true depends on the server's --allow-remote-code",
}
PLUGIN_WORDS_ONLY = ("trust_remote_code",)


def _load_config_within_plugin_rules(fields: dict, document: dict) -> None:
    properties = document["LoadConfigObject"]["properties"]
    value = fields.get("load_config")
    if isinstance(value, str) and value.strip():  # "load_config_text": the text of a document-valid object
        fields["load_config"] = json.dumps({key: schema["enum"][0] for key, schema in properties.items()
                                            if "enum" in schema})
    elif isinstance(value, dict):  # "plugin_value_rules"
        fields["load_config"] = {key: item for key, item in value.items()
                                 if "type" in properties.get(key, {}) and key not in PLUGIN_WORDS_ONLY}


def _one_run_per_moment(entry) -> None:
    for runs in ("attempts", "measurements", "autoconfigure_runs"):
        if isinstance(entry, dict) and isinstance(entry.get(runs), list):
            entry[runs] = _unique(entry[runs], "started_at")


def _sources_only_for_values(entry) -> None:
    sources = entry.get("metric_sources") if isinstance(entry, dict) else None
    if isinstance(sources, dict):
        entry["metric_sources"] = {metric: {key: value for key, value in source.items() if key != "measurement"}
                                   for metric, source in sources.items() if entry.get(metric) is not None}


def _history_references_hold(entry) -> None:
    if not isinstance(entry, dict):
        return
    history = entry.get("config_history") if isinstance(entry.get("config_history"), list) else []
    numbers, kept = set(), []
    for version in history:
        if isinstance(version, dict) and version.get("number") in numbers:
            continue
        kept.append(version)
        if isinstance(version, dict) and isinstance(version.get("number"), (int, float)):
            numbers.add(version["number"])  # 1.0 is the integer 1 to the document (and to the server)
    if "config_history" in entry and isinstance(entry["config_history"], list):
        entry["config_history"] = kept
    for version in kept:
        if isinstance(version, dict) and version.get("restored_from") not in numbers:
            version["restored_from"] = None
    for runs in ("attempts", "measurements"):
        for run in entry.get(runs) if isinstance(entry.get(runs), list) else []:
            if isinstance(run, dict) and run.get("config_version") not in numbers:
                run["config_version"] = None


def _autoconfigure_references_hold(entry) -> None:
    if not isinstance(entry, dict):
        return

    def items(key: str) -> list[dict]:
        return [item for item in entry.get(key) if isinstance(item, dict)] if isinstance(entry.get(key), list) else []

    numbers = {version.get("number") for version in items("config_history")}
    attempts = {attempt.get("started_at") for attempt in items("attempts")}
    searches = {run.get("started_at") for run in items("autoconfigure_runs")}
    for run in items("autoconfigure_runs"):
        if run.get("applied_version") not in numbers:
            run["applied_version"] = None
        for entry_try in run.get("tries") if isinstance(run.get("tries"), list) else []:
            if isinstance(entry_try, dict) and entry_try.get("attempt") not in attempts:
                entry_try.pop("attempt", None)
    for attempt in items("attempts"):
        if attempt.get("autoconfigure_run") not in searches:
            attempt["autoconfigure_run"] = None


def _environment_references_hold(document: dict) -> None:
    if isinstance(document.get("environments"), list):
        document["environments"] = _unique(document["environments"], "fingerprint")
    known = {environment.get("fingerprint") for environment in document.get("environments") or []
             if isinstance(environment, dict)}
    for entry in document.get("models") if isinstance(document.get("models"), list) else []:
        for runs in ("attempts", "measurements", "autoconfigure_runs"):
            for run in entry.get(runs) if isinstance(entry, dict) and isinstance(entry.get(runs), list) else []:
                if isinstance(run, dict) and run.get("environment_fingerprint") not in known:
                    run["environment_fingerprint"] = None


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
