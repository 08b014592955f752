"""Export → import into a fresh database → export gives the same document, byte for byte, with the
history (attempts, measurements) and the provenance of measured metrics intact."""

import json
import os

import pytest
from sqlalchemy import create_engine, text

from tests.exchange.conftest import export_text, fill, import_text, make_app


def rows(app, query: str) -> list[dict]:
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(text(query)).mappings()]
    finally:
        engine.dispose()


def test_round_trip_is_exact(app, other_app):
    fill(app)
    exported = export_text(app)

    result = import_text(other_app, exported)

    assert result["summary"] == {"models_added": 4, "models_updated": 0, "models_unchanged": 0,
                                 "attempts_added": 3, "measurements_added": 2, "config_versions_added": 4, "autoconfigure_runs_added": 0,
                                 "conflicts": 0}
    assert export_text(other_app) == exported


def test_the_document_holds_history_and_provenance_without_database_ids(app, other_app):
    fill(app)
    document = json.loads(export_text(app))

    assert document["format"] == "modelhub-registry" and document["version"] == 2
    names = [entry["model_name"] for entry in document["models"]]
    assert names == ["gpt2", "microsoft/phi-2", "org/loading-now", "Qwen/Qwen2.5-0.5B"]  # as the Models page sorts
    phi = document["models"][1]
    assert [a["outcome"] for a in phi["attempts"]] == ["failure", "success"]
    assert phi["attempts"][0]["suggestion"] == {"device_map": "auto"}
    assert phi["attempts"][1]["smoke_test"] == {"output": "Hello ✓", "tokens": 4}
    assert [m["outcome"] for m in phi["measurements"]] == ["failure", "success"]
    measured = phi["metric_sources"]["max_throughput_tokens_sec"]
    assert measured["source"] == "measured" and measured["measurement"] == phi["measurements"][1]["started_at"]
    assert phi["metric_sources"]["gpqa_score"]["source"] == "card"
    assert phi["max_throughput_tokens_sec"] == 88.125 and phi["load_config"].count("  ") == 1  # the text as typed
    # A load in progress is left out, and the model's status is the one it had before it began.
    loading = document["models"][2]
    assert loading["attempts"] == [] and loading["compatibility_status"] == "degraded"
    text_ = json.dumps(document["models"])
    for volatile in ('"id"', "measurement_id", "worker_pid", '"version": 2', "exported_at", '"missing"'):
        assert volatile not in text_


def test_imported_measured_metrics_point_at_the_imported_measurement(app, other_app):
    fill(app)
    import_text(other_app, export_text(app))

    (model,) = rows(other_app, "SELECT id, metric_sources FROM modelregistry WHERE model_name = 'microsoft/phi-2'")
    sources = model["metric_sources"] if isinstance(model["metric_sources"], dict) else json.loads(model["metric_sources"])
    successes = rows(other_app, f"SELECT id FROM measurement WHERE model_id = {model['id']} AND outcome = 'success'")
    assert sources["perplexity"]["measurement_id"] == successes[0]["id"]


def test_importing_the_same_file_again_changes_nothing(app, other_app):
    fill(app)
    exported = export_text(app)
    import_text(other_app, exported)
    before = rows(other_app, "SELECT model_name, version, updated_at FROM modelregistry ORDER BY model_name")

    again = import_text(other_app, exported)

    assert again["summary"] == {"models_added": 0, "models_updated": 0, "models_unchanged": 4,
                                "attempts_added": 0, "measurements_added": 0, "config_versions_added": 0, "autoconfigure_runs_added": 0,
                                "conflicts": 0}
    assert again["models"] == []
    assert rows(other_app, "SELECT model_name, version, updated_at FROM modelregistry ORDER BY model_name") == before
    assert len(rows(other_app, "SELECT id FROM load_attempt")) == 3
    # Importing a registry's own export into itself changes nothing either.
    assert import_text(app, exported)["summary"]["models_unchanged"] == 4


def test_sqlite_to_postgresql_and_back(tmp_path):
    base = os.environ.get("MODELHUB_TEST_DATABASE_URL")
    if not base:
        pytest.skip("set MODELHUB_TEST_DATABASE_URL to run the PostgreSQL variant")
    from tests.conftest import _postgres_schema

    sqlite_app = make_app(f"sqlite:///{tmp_path / 'a' / 'models.db'}", tmp_path / "a")
    schemas = _postgres_schema(base)
    postgres_app = make_app(next(schemas), tmp_path / "b")
    try:
        fill(sqlite_app)
        exported = export_text(sqlite_app)
        import_text(postgres_app, exported)
        assert export_text(postgres_app) == exported
    finally:
        with postgres_app.app_context():
            postgres_app.extensions["sqlalchemy"].engine.dispose()
        for _ in schemas:
            pass
