"""Export and import carry where a model loads: each run's environment (by fingerprint) and its status
there, so that moving a registry (a laptop's SQLite into the PostgreSQL several hosts share) keeps the
Where it loads table, the per-environment rules and what each load really was."""

import json

import pytest

from modelhub import compatibility, environments, registry
from modelhub.exceptions import InvalidDocument
from modelhub.loading import attempts
from tests.exchange.conftest import export_text, import_text

NAME = "acme/alpha"
REPORT = {"dtype": "float32", "attention": "sdpa", "degraded_reason": "2 of 4 layers sit on the CPU"}


def as_host(app, host):
    app.config["MODELHUB_HOST_NAME"] = host
    environments.forget_cached(app)


def two_hosts(app):
    """A failure on the ROCm desktop, a degraded success on the CUDA laptop."""
    with app.app_context():
        registry.create_model({"model_name": NAME})
        as_host(app, "rocm-desktop")
        failed = attempts.begin(registry.get_model(NAME))
        attempts.finish(failed.id, "failure", error_type="RuntimeError", error_message="HIP error")
        as_host(app, "cuda-laptop")
        loaded = attempts.begin(registry.get_model(NAME))
        attempts.finish(loaded.id, "success", load_report=REPORT, warnings=["a degenerate continuation"])


def where(app):
    with app.app_context():
        rows = compatibility.results(app, registry.get_model(NAME))
        return sorted((row.environment.host, row.environment.fingerprint, row.status) for row in rows)


def test_an_empty_registry_gets_where_each_model_loads_exactly(app, other_app):
    two_hosts(app)
    exported = export_text(app)
    document = json.loads(exported)
    assert sorted(e["host"] for e in document["environments"]) == ["cuda-laptop", "rocm-desktop"]
    (model,) = document["models"]
    assert [(a["outcome"], a["environment_status"]) for a in model["attempts"]] == [
        ("failure", "incompatible"), ("success", "degraded")]
    assert model["attempts"][1]["load_report"] == REPORT

    import_text(other_app, exported)
    assert where(other_app) == where(app)
    assert [status for _, _, status in where(other_app)] == ["degraded", "incompatible"]
    assert export_text(other_app) == exported  # the same bytes: nothing lost, nothing invented
    import_text(other_app, exported)
    assert export_text(other_app) == exported  # twice: still one row per environment


def test_a_registry_that_knows_an_environment_keeps_its_own_record(app, other_app):
    two_hosts(app)
    exported = export_text(app)
    with other_app.app_context():
        as_host(other_app, "cuda-laptop")  # the same facts as the laptop of ``app``: the same fingerprint
        mine = environments.current(other_app)
        first_seen = mine.first_seen_at
    import_text(other_app, exported)
    with other_app.app_context():
        assert environments.current(other_app).first_seen_at == first_seen
        laptop = [row for row in compatibility.results(other_app, registry.get_model(NAME)) if row.here]
        assert [row.status for row in laptop] == ["degraded"]  # the imported result is this host's own


def test_a_run_naming_an_environment_the_document_lacks_is_refused(app, other_app):
    two_hosts(app)
    document = json.loads(export_text(app))
    document["environments"] = document["environments"][:1]
    with pytest.raises(InvalidDocument) as refused:
        import_text(other_app, json.dumps(document))
    messages = json.dumps(refused.value.messages if hasattr(refused.value, "messages") else str(refused.value))
    assert "not among the document's environments" in messages
    with other_app.app_context():
        assert not registry.has_models()
