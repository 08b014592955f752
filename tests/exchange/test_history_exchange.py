"""Export and import carry the load_config history: an empty registry gets it exactly, a registry with
its own history gets the versions it lacks appended, an import's own change is a version, importing
twice adds nothing, version 1 files still import, and a bad history is refused with nothing changed."""

import json

import pytest

from modelhub import config_history, registry
from modelhub.exceptions import InvalidDocument
from modelhub.exchange.merge import as_utc
from modelhub.exchange.report import build_report
from modelhub.models import LoadAttempt
from tests.exchange.conftest import export_text, fill, import_text, load_attempt, register

EAGER = '{"attn_implementation": "eager"}'
AUTO = '{"attn_implementation": "eager", "device_map": "auto"}'
PHI_CONFIG = '{"attn_implementation": "eager",  "dtype": "bfloat16"}'  # as conftest.fill saves it


def history(app, name: str) -> list[tuple]:
    """(number, load_config, source, via, host, restored_from, created_at) per version, oldest first."""
    with app.app_context():
        versions = config_history.history(registry.get_model(name)).versions[::-1]
        return [(v.number, v.load_config, v.source, v.via, v.host, v.restored_from,
                 as_utc(v.created_at)) for v in versions]


def numbers_run(app, name: str) -> list[int | None]:
    """The version number each of the model's load attempts ran, oldest first."""
    with app.app_context():
        model = registry.get_model(name)
        numbers = {v.id: v.number for v in config_history.versions_of([model.id])[model.id]}
        return [numbers.get(attempt.config_version_id) for attempt in reversed(registry_attempts(model))]


def registry_attempts(model):
    from modelhub.loading import attempts

    return attempts.recent(model, limit=100)


def with_history(app):
    """fill(), then phi-2's config changed twice (a suggestion, a restore) and loaded with each."""
    app.config["MODELHUB_HOST_NAME"] = "rocm-desktop"
    fill(app)
    with app.app_context():
        with config_history.made_by("suggestion", via="page"):
            registry.update_model("microsoft/phi-2", {"load_config": AUTO})
        load_attempt(registry.get_model("microsoft/phi-2"), "success")
        config_history.restore("microsoft/phi-2", 1, if_match=None, via="page")
        load_attempt(registry.get_model("microsoft/phi-2"), "failure", error_type="RuntimeError", error_message="x")


def test_the_export_holds_each_models_history_and_the_version_each_run_ran(app):
    with_history(app)
    document = json.loads(export_text(app))

    assert document["version"] == 2
    phi = next(entry for entry in document["models"] if entry["model_name"] == "microsoft/phi-2")
    assert [(v["number"], v["source"], v["via"], v["restored_from"]) for v in phi["config_history"]] == [
        (1, "created", None, None), (2, "suggestion", "page", None), (3, "restore", "page", 1)]
    assert phi["config_history"][1] == {**phi["config_history"][1], "load_config": AUTO, "host": "rocm-desktop"}
    assert list(phi["config_history"][0]) == ["number", "load_config", "source", "via", "host", "restored_from",
                                              "created_at"]
    assert [attempt["config_version"] for attempt in phi["attempts"]] == [1, 1, 2, 3]
    assert [m["config_version"] for m in phi["measurements"]] == [1, 1]


def test_an_empty_registry_gets_the_history_exactly_and_a_second_import_adds_nothing(app, other_app):
    with_history(app)
    exported = export_text(app)

    first = import_text(other_app, exported)
    again = import_text(other_app, exported)

    assert first["summary"]["config_versions_added"] == 6  # phi-2's 3, one per other model
    for name in ("microsoft/phi-2", "gpt2", "Qwen/Qwen2.5-0.5B"):
        assert history(other_app, name) == history(app, name)
    assert numbers_run(other_app, "microsoft/phi-2") == numbers_run(app, "microsoft/phi-2") == [1, 1, 2, 3]
    assert export_text(other_app) == exported
    assert again["summary"]["config_versions_added"] == 0 and again["models"] == []
    assert history(other_app, "microsoft/phi-2") == history(app, "microsoft/phi-2")


def test_a_registry_with_its_own_history_gets_the_missing_versions_after_its_own(app, other_app):
    with_history(app)
    other_app.config["MODELHUB_HOST_NAME"] = "cuda-laptop"
    with other_app.app_context():
        register("microsoft/phi-2", load_config=EAGER)  # its own version 1, made here
    exported = export_text(app)

    result = import_text(other_app, exported)  # keep: the laptop's load_config stays

    phi_plan = next(m for m in result["models"] if m["model_name"] == "microsoft/phi-2")
    assert phi_plan["config_versions_added"] == 4
    rows = history(other_app, "microsoft/phi-2")
    assert [(n, config, source, via, host, restored) for n, config, source, via, host, restored, _ in rows] == [
        (1, EAGER, "created", None, "cuda-laptop", None),
        (2, PHI_CONFIG, "created", None, "rocm-desktop", None),  # the desktop's versions, numbered on from here
        (3, AUTO, "suggestion", "page", "rocm-desktop", None),
        (4, PHI_CONFIG, "restore", "page", "rocm-desktop", 2),  # it restored the desktop's 1: here that is 2
        (5, EAGER, "import", "import", "cuda-laptop", None),  # the config kept here is the one in force
    ]
    assert [row[6] for row in rows[1:4]] == [row[6] for row in history(app, "microsoft/phi-2")]
    assert numbers_run(other_app, "microsoft/phi-2") == [2, 2, 3, 4]
    with other_app.app_context():
        assert registry.get_model("microsoft/phi-2").load_config == EAGER
        assert config_history.history(registry.get_model("microsoft/phi-2")).current == 5

    again = import_text(other_app, exported)
    assert again["summary"]["config_versions_added"] == 0
    assert len(history(other_app, "microsoft/phi-2")) == 5


def test_an_import_that_changes_the_load_config_records_that_change_as_an_import(app, other_app):
    with_history(app)
    with other_app.app_context():
        register("microsoft/phi-2", load_config=EAGER)

    import_text(other_app, export_text(app), on_conflict="replace")

    rows = history(other_app, "microsoft/phi-2")
    # The file's newest version (the restore) is the config taken: no extra version is needed.
    assert [(row[0], row[2]) for row in rows] == [(1, "created"), (2, "created"), (3, "suggestion"), (4, "restore")]
    with other_app.app_context():
        assert registry.get_model("microsoft/phi-2").load_config == PHI_CONFIG


def test_a_version_1_file_without_history_still_imports(app, other_app):
    with other_app.app_context():
        register("gpt2")
    old_file = json.dumps({"format": "modelhub-registry", "version": 1, "models": [
        {"model_name": "gpt2", "load_config": EAGER},
        {"model_name": "microsoft/phi-2", "load_config": AUTO},
    ]})

    result = import_text(other_app, old_file)

    assert result["summary"]["config_versions_added"] == 2
    assert [(row[0], row[1], row[2], row[3]) for row in history(other_app, "gpt2")] == [
        (1, None, "created", None), (2, EAGER, "import", "import")]
    assert [(row[0], row[1], row[2], row[3]) for row in history(other_app, "microsoft/phi-2")] == [
        (1, AUTO, "import", "import")]
    assert import_text(other_app, old_file)["summary"]["config_versions_added"] == 0


def test_a_compatibility_report_that_fills_the_load_config_makes_an_import_version(app, other_app):
    fill(app)
    with app.app_context():
        report = build_report(registry.get_model("microsoft/phi-2"))
    with other_app.app_context():
        register("microsoft/phi-2")

    import_text(other_app, json.dumps(report))

    assert [(row[0], row[1], row[2]) for row in history(other_app, "microsoft/phi-2")] == [
        (1, None, "created"), (2, PHI_CONFIG, "import")]


def test_a_dry_run_counts_the_versions_and_writes_none(app, other_app):
    with_history(app)

    plan = import_text(other_app, export_text(app), dry_run=True)

    assert plan["summary"]["config_versions_added"] == 6
    with other_app.app_context():
        assert not registry.has_models()


def _phi_entry(**changes) -> dict:
    entry = {"model_name": "microsoft/phi-2", "load_config": EAGER, "config_history": [
        {"number": 1, "load_config": None, "source": "created", "via": "api", "host": "a", "restored_from": None,
         "created_at": "2026-11-01T10:00:00+00:00"},
        {"number": 2, "load_config": EAGER, "source": "typed", "via": "page", "host": "a", "restored_from": None,
         "created_at": "2026-11-01T10:05:00+00:00"}],
        "attempts": [{"started_at": "2026-11-01T10:06:00+00:00", "finished_at": "2026-11-01T10:07:00+00:00",
                      "outcome": "success", "previous_status": "unknown", "config_version": 2}]}
    for path, value in changes.items():
        target = entry
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key) if key.isdigit() else key]
        target[int(last) if last.isdigit() else last] = value
    return entry


@pytest.mark.parametrize("change, where, says", [
    ({"config_history.1.number": 1}, ["config_history", "1", "number"], "Two versions numbered 1"),
    ({"config_history.1.number": 0}, ["config_history", "1", "number"], "greater than or equal to 1"),
    ({"config_history.1.number": "2"}, ["config_history", "1", "number"], "whole number"),
    ({"config_history.1.restored_from": 7}, ["config_history", "1", "restored_from"], "not in this model's"),
    ({"config_history.1.source": "magic"}, ["config_history", "1", "source"], "Must be one of"),
    ({"config_history.1.created_at": "2026-11-01T10:05:00"}, ["config_history", "1", "created_at"], "UTC offset"),
    ({"attempts.0.config_version": 3}, ["attempts", "0", "config_version"], "not in this model's"),
    ({"config_history.1.id": 12}, ["config_history", "1", "id"], "Unknown field"),
])
def test_a_bad_history_is_refused_per_field_and_changes_nothing(other_app, change, where, says):
    document = json.dumps({"format": "modelhub-registry", "version": 2, "models": [_phi_entry(**change)]})

    with pytest.raises(InvalidDocument) as refused:
        import_text(other_app, document)

    messages = refused.value.messages["models"][0]
    for key in where:
        messages = messages[int(key) if key.isdigit() else key]
    assert says in " ".join(messages)
    with other_app.app_context():
        assert not registry.has_models()


def test_a_good_hand_written_history_imports_with_its_runs_linked(other_app):
    document = json.dumps({"format": "modelhub-registry", "version": 2, "models": [_phi_entry()]})

    import_text(other_app, document)

    assert [(row[0], row[2], row[4]) for row in history(other_app, "microsoft/phi-2")] == [
        (1, "created", "a"), (2, "typed", "a")]
    assert numbers_run(other_app, "microsoft/phi-2") == [2]
    with other_app.app_context():
        assert other_app.extensions["sqlalchemy"].session.query(LoadAttempt).count() == 1


def test_a_version_without_its_optional_fields_imports_as_null(app):
    """Found by the fuzzer: a history version leaving out load_config (optional: null means the defaults)
    made the import fail with a KeyError, a 500."""
    document = {"format": "modelhub-registry", "version": 2, "models": [{
        "model_name": "acme/bare", "load_config": None,
        "config_history": [{"number": 1.0, "source": "typed", "created_at": "2000-01-01T00:22:23Z"},
                           {"number": 3, "source": "typed", "created_at": "2000-01-01T01:00:00Z"}]}]}
    response = app.test_client().post("/api/import", json=document)
    assert response.status_code == 200, response.json
    assert [(number, text, source, via) for number, text, source, via, *_ in history(app, "acme/bare")] == [
        (1, None, "typed", None), (3, None, "typed", None)]  # an empty registry keeps the numbers
