"""Export and import carry auto-configure runs: each model's finished runs with their tries, each
attempt's failure kind, limitation, predicted and measured peaks and the run it was a try of, and each
measurement's predicted peak. A run still going (and its tries) is left out; an import adds the runs a
registry lacks and links attempts to them by the moment they started; bad references are refused per
field and change nothing; files without any of this still import."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from modelhub import config_history, registry
from modelhub.exceptions import InvalidDocument
from modelhub.extensions import db
from modelhub.exchange.merge import as_utc
from modelhub.models import AutoconfigureRun, LoadAttempt, LoadConfigVersion, Measurement
from tests.exchange.conftest import export_text, import_text, register

NAME = "acme/alpha"
START = '{"dtype": "bfloat16"}'
FOUND = '{"dtype": "bfloat16", "quantization_config": {"load_in_4bit": true}}'
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PREDICTED = {"host_bytes": 2_000_000_000, "gpu_bytes": 0, "raw_host_bytes": 1_800_000_000, "verdict": "fits", "plan": {}}
MEASURED = {"host_peak_rss_bytes": 2_100_000_000, "host_baseline_rss_bytes": 400_000_000, "gpu_peak_allocated_bytes": 0}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def attempt(model_id: int, minutes: float, outcome: str, **columns) -> LoadAttempt:
    row = LoadAttempt(model_id=model_id, started_at=at(minutes), finished_at=at(minutes + 1), outcome=outcome,
                      previous_status="unknown", **columns)
    db.session.add(row)
    db.session.flush()
    return row


def searched(app) -> None:
    """acme/alpha: a succeeded run (an out-of-memory try, a skipped config, a 4-bit try that loaded,
    applied as version 2), a failed run with one try, a load outside any run, a measurement, and a run
    still going whose finished try is not exported yet."""
    with app.app_context():
        model = register(NAME, load_config=START)
        won = AutoconfigureRun(model_id=model.id, host="rocm-desktop", state="succeeded", started_at=at(0),
                               finished_at=at(5), start_config=START, result_config=FOUND, result_status="degraded",
                               result_reason="4-bit weights", max_tries=8, max_seconds=1800.0, apply=True)
        lost = AutoconfigureRun(model_id=model.id, host="rocm-desktop", state="failed", started_at=at(10),
                                finished_at=at(12), start_config=FOUND, result_reason="Out of memory whatever the config",
                                max_tries=1, max_seconds=60.0, apply=False)
        going = AutoconfigureRun(model_id=model.id, host="rocm-desktop", state="running", started_at=at(20),
                                 start_config=FOUND, max_tries=8, max_seconds=1800.0, tries=[])
        db.session.add_all([won, lost, going])
        db.session.flush()
        oom = attempt(model.id, 1, "failure", load_config=START, autoconfigure_run_id=won.id, failure_kind="out_of_memory",
                      error_type="OutOfMemoryError", predicted_peak=PREDICTED, measured_peak=MEASURED)
        four_bit = attempt(model.id, 3, "success", load_config=FOUND, autoconfigure_run_id=won.id,
                           limitation="4-bit weights", predicted_peak=PREDICTED, measured_peak=MEASURED)
        again = attempt(model.id, 11, "failure", load_config=FOUND, autoconfigure_run_id=lost.id, failure_kind="crash")
        attempt(model.id, 15, "success", load_config=START)
        pending = attempt(model.id, 21, "failure", load_config=FOUND, autoconfigure_run_id=going.id, failure_kind="attention")
        db.session.add(Measurement(model_id=model.id, started_at=at(16), finished_at=at(17), outcome="success",
                                   predicted_peak=PREDICTED, results={"peak_memory": MEASURED}))
        won.tries = [
            {"config": {"dtype": "bfloat16"}, "why": "the saved config", "attempt_id": oom.id, "outcome": "failure",
             "kind": "out_of_memory", "cause": "Out of GPU memory."},
            {"config": {"dtype": "bfloat16", "device_map": "auto"}, "why": "offload", "outcome": "skipped"},
            {"config": json.loads(FOUND), "why": "4-bit", "limitation": "4-bit weights", "attempt_id": four_bit.id,
             "outcome": "success", "status": "degraded"},
        ]
        lost.tries = [{"config": json.loads(FOUND), "why": "the saved config", "attempt_id": again.id,
                       "outcome": "failure", "kind": "crash"}]
        going.tries = [{"config": json.loads(FOUND), "attempt_id": pending.id, "outcome": "failure"}]
        db.session.commit()
        with config_history.made_by("auto-configure", via="api"):
            registry.update_model(NAME, {"load_config": FOUND})
        won.applied_version_id = db.session.scalar(db.select(LoadConfigVersion.id).where(
            LoadConfigVersion.model_id == model.id, LoadConfigVersion.number == 2))
        db.session.commit()


def runs_of(app, name: str = NAME) -> list[dict]:
    """Each auto-configure run of the model as values comparable across registries: tries name their
    attempt by its start, the applied version is its text and moment (numbers are each registry's own),
    and the attempts linked to it are named by their start."""
    with app.app_context():
        model = registry.get_model(name)
        attempts = {row.id: row for row in db.session.scalars(db.select(LoadAttempt).where(LoadAttempt.model_id == model.id))}
        versions = {row.id: (row.load_config, as_utc(row.created_at)) for row in db.session.scalars(db.select(LoadConfigVersion))}
        runs = db.session.scalars(db.select(AutoconfigureRun).where(AutoconfigureRun.model_id == model.id)
                                  .order_by(AutoconfigureRun.started_at))
        return [{
            "started_at": as_utc(run.started_at), "finished_at": run.finished_at and as_utc(run.finished_at),
            "state": run.state, "host": run.host, "start_config": run.start_config, "result_config": run.result_config,
            "result_status": run.result_status, "result_reason": run.result_reason, "max_tries": run.max_tries,
            "max_seconds": run.max_seconds, "apply": run.apply, "applied_version": versions.get(run.applied_version_id),
            "tries": [{**entry, "attempt_id": as_utc(attempts[entry["attempt_id"]].started_at)} if "attempt_id" in entry
                      else entry for entry in run.tries or []],
            "attempts": sorted(as_utc(a.started_at) for a in attempts.values() if a.autoconfigure_run_id == run.id),
        } for run in runs]


def attempt_details(app, name: str = NAME) -> list[tuple]:
    with app.app_context():
        model = registry.get_model(name)
        rows = db.session.scalars(db.select(LoadAttempt).where(LoadAttempt.model_id == model.id).order_by(LoadAttempt.started_at))
        return [(as_utc(row.started_at), row.failure_kind, row.limitation, row.predicted_peak, row.measured_peak)
                for row in rows]


def test_the_export_holds_finished_runs_their_tries_and_the_attempts_links(app):
    searched(app)
    (entry,) = json.loads(export_text(app))["models"]

    runs = entry["autoconfigure_runs"]
    assert [(run["started_at"], run["state"], run["applied_version"]) for run in runs] == [
        (at(0).isoformat(), "succeeded", 2), (at(10).isoformat(), "failed", None)]  # the run going is left out
    assert list(runs[0]) == ["started_at", "finished_at", "state", "host", "environment_fingerprint", "start_config",
                             "result_config", "result_status", "result_reason", "tries", "max_tries", "max_seconds",
                             "apply", "applied_version"]
    assert [entry.get("attempt") for entry in runs[0]["tries"]] == [at(1).isoformat(), None, at(3).isoformat()]
    assert all("attempt_id" not in entry for run in runs for entry in run["tries"])
    assert [(a["started_at"], a["autoconfigure_run"], a["failure_kind"], a["limitation"]) for a in entry["attempts"]] == [
        (at(1).isoformat(), at(0).isoformat(), "out_of_memory", None),
        (at(3).isoformat(), at(0).isoformat(), None, "4-bit weights"),
        (at(11).isoformat(), at(10).isoformat(), "crash", None),
        (at(15).isoformat(), None, None, None),
    ]  # the try of the run still going comes with its run, once it has ended
    assert entry["attempts"][0]["predicted_peak"] == PREDICTED and entry["attempts"][0]["measured_peak"] == MEASURED
    assert entry["measurements"][0]["predicted_peak"] == PREDICTED


def test_an_empty_registry_gets_the_runs_their_tries_and_links_exactly(app, other_app):
    searched(app)
    exported = export_text(app)

    first = import_text(other_app, exported)
    again = import_text(other_app, exported)

    assert first["summary"]["autoconfigure_runs_added"] == 2 and first["models"][0]["autoconfigure_runs_added"] == 2
    mine, theirs = runs_of(app), runs_of(other_app)
    assert theirs == [run for run in mine if run["state"] != "running"]
    assert [len(run["attempts"]) for run in theirs] == [2, 1]
    assert attempt_details(other_app) == [row for row in attempt_details(app) if row[0] != at(21)]
    assert export_text(other_app) == exported  # the same bytes: nothing lost, nothing invented
    assert again["summary"]["autoconfigure_runs_added"] == 0 and again["models"] == []


def test_a_registry_with_some_of_the_runs_gets_the_others_and_links_new_attempts_to_its_own(app, other_app):
    searched(app)
    document = json.loads(export_text(app))
    (entry,) = document["models"]
    with other_app.app_context():
        register(NAME, load_config=START)
    partial = {**entry, "autoconfigure_runs": entry["autoconfigure_runs"][:1], "attempts": entry["attempts"][:2]}
    import_text(other_app, json.dumps({**document, "models": [partial]}))
    assert [run["state"] for run in runs_of(other_app)] == ["succeeded"]

    dry = import_text(other_app, json.dumps(document), dry_run=True)
    assert dry["models"][0]["autoconfigure_runs_added"] == 1 and dry["models"][0]["attempts_added"] == 2
    import_text(other_app, json.dumps(document))

    assert runs_of(other_app) == [run for run in runs_of(app) if run["state"] != "running"]


def _entry(app) -> tuple[dict, dict]:
    searched(app)
    document = json.loads(export_text(app))
    return document, document["models"][0]


def _set(entry: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        entry = entry[int(key) if key.isdigit() else key]
    entry[int(last) if last.isdigit() else last] = value


@pytest.mark.parametrize("path, value, where, says", [
    ("autoconfigure_runs.1.started_at", at(0).isoformat(), ["autoconfigure_runs", 1, "started_at"], "same moment"),
    ("attempts.2.autoconfigure_run", at(30).isoformat(), ["attempts", 2, "autoconfigure_run"],
     "not among this model's autoconfigure_runs"),
    ("autoconfigure_runs.1.state", "running", ["autoconfigure_runs", 1, "state"], "Must be one of"),
    ("autoconfigure_runs.0.applied_version", 9, ["autoconfigure_runs", 0, "applied_version"],
     "not in this model's config_history"),
    ("autoconfigure_runs.0.tries.0.attempt", at(40).isoformat(), ["autoconfigure_runs", 0, "tries", 0, "attempt"],
     "not among this model's attempts"),
    ("autoconfigure_runs.0.tries.0.attempt_id", 3, ["autoconfigure_runs", 0, "tries", 0, "attempt_id"], "database id"),
    ("autoconfigure_runs.0.max_tries", "8", ["autoconfigure_runs", 0, "max_tries"], "whole number"),
    ("attempts.0.failure_kind", "gremlins", ["attempts", 0, "failure_kind"], "Must be one of"),
    ("autoconfigure_runs.0.tries", {"a": 1}, ["autoconfigure_runs", 0, "tries"], "JSON array"),
])
def test_a_bad_run_is_refused_per_field_and_changes_nothing(app, other_app, path, value, where, says):
    document, entry = _entry(app)
    _set(entry, path, value)

    with pytest.raises(InvalidDocument) as refused:
        import_text(other_app, json.dumps(document))

    messages = refused.value.messages["models"][0]
    for key in where:
        messages = messages[key]
    assert says in " ".join(messages)
    with other_app.app_context():
        assert not registry.has_models()


def test_the_api_answers_a_bad_run_with_422_per_field(app, other_app):
    document, entry = _entry(app)
    entry["autoconfigure_runs"][1]["started_at"] = entry["autoconfigure_runs"][0]["started_at"]

    response = other_app.test_client().post("/api/import", json=document)

    assert response.status_code == 422
    assert "same moment" in json.dumps(response.json["errors"]["json"]["models"]["0"]["autoconfigure_runs"]["1"])


def test_a_document_without_runs_or_their_fields_still_imports(app, other_app):
    document, entry = _entry(app)
    del entry["autoconfigure_runs"]
    for run in entry["attempts"]:
        for key in ("failure_kind", "limitation", "predicted_peak", "measured_peak", "autoconfigure_run"):
            del run[key]
    del entry["measurements"][0]["predicted_peak"]

    result = import_text(other_app, json.dumps(document))

    assert result["summary"]["attempts_added"] == 4 and result["summary"]["autoconfigure_runs_added"] == 0
    assert runs_of(other_app) == []
    assert {details[1:] for details in attempt_details(other_app)} == {(None, None, None, None)}


def test_a_run_imported_without_its_tries_has_an_empty_chain_as_the_api_documents(app, other_app):
    """A document may hold ``"tries": null``; the API answers every run's tries as an array."""
    searched(app)
    document = json.loads(export_text(app))
    document["models"][0]["autoconfigure_runs"][1]["tries"] = None
    import_text(other_app, json.dumps(document))
    client = other_app.test_client()
    runs = client.get(f"/api/models/{NAME}/autoconfigure").json["items"]
    assert sorted(len(run["tries"]) for run in runs) == [0, 3]
    for run in runs:
        assert client.get(f"/api/autoconfigure-runs/{run['id']}").json["tries"] == run["tries"]
