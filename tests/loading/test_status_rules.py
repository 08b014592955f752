"""The status rules per environment (modelhub/loading/status_rules.py): an attempt's end moves the model's
status in its own environment, and the registry's status becomes the summary of the environments'.

Environments are switched the way a second host or an upgrade switches them (MODELHUB_HOST_NAME, library
versions, then ``environments.forget_cached``); attempts are opened and closed through the real service
functions on a real database (SQLite, PostgreSQL)."""

import pytest

from modelhub import compatibility, registry
from modelhub.extensions import db
from modelhub.loading import attempts, status_rules
from modelhub.models import LoadAttempt
from tests.test_compatibility import load, on_host, status, upgrade

NAME = "acme/alpha"


@pytest.fixture
def ctx(app):
    from modelhub import environments

    with app.app_context():
        registry.create_model({"model_name": NAME})
        yield app
        environments.forget_cached(app)


@pytest.mark.parametrize("outcome, previous, reason, expected", [
    ("success", None, None, "compatible"),
    ("success", "success", None, "compatible"),
    ("success", "failure", None, "degraded"),
    ("success", None, "3 layers offloaded to CPU", "degraded"),
    ("failure", None, None, "incompatible"),
    ("failure", "failure", None, "incompatible"),
    ("failure", "success", None, "degraded"),
    ("interrupted", "success", None, None),
])
def test_the_environment_table(outcome, previous, reason, expected):
    assert status_rules.environment_status(outcome, previous, reason) == expected


def test_the_summary_is_the_best_counted_status():
    assert status_rules.summary(["incompatible", "compatible", "degraded"]) == "compatible"
    assert status_rules.summary(["incompatible", "degraded"]) == "degraded"
    assert status_rules.summary(["incompatible"]) == "incompatible"
    assert status_rules.summary([]) is None


def test_a_success_on_one_host_after_a_failure_on_another_is_not_degraded(ctx, monkeypatch):
    on_host(ctx, "rocm-desktop", monkeypatch)
    failed = load(NAME, "failure", error_type="RuntimeError", error_message="HIP error")
    on_host(ctx, "cuda-laptop", monkeypatch)
    loaded = load(NAME, "success")
    assert failed.environment_status == "incompatible"
    assert loaded.environment_status == "compatible"
    assert status(NAME) == "compatible"  # the old rule said "degraded": whichever host loaded last decided

    # In the laptop's own environment a failure right after its success is degraded; the desktop is
    # still incompatible, so the best counted status is degraded.
    again = load(NAME, "failure")
    assert again.environment_status == "degraded"
    assert status(NAME) == "degraded"
    statuses = {row.environment.host: row.status for row in compatibility.results(ctx, registry.get_model(NAME))}
    assert statuses == {"rocm-desktop": "incompatible", "cuda-laptop": "degraded"}


def test_within_one_environment_the_rules_are_as_before(ctx, monkeypatch):
    on_host(ctx, "laptop", monkeypatch)
    assert load(NAME, "success").environment_status == "compatible" and status(NAME) == "compatible"
    assert load(NAME, "failure").environment_status == "degraded" and status(NAME) == "degraded"
    assert load(NAME, "failure").environment_status == "incompatible" and status(NAME) == "incompatible"
    assert load(NAME, "success").environment_status == "degraded" and status(NAME) == "degraded"


def test_a_load_that_worked_only_offloaded_is_degraded_with_its_reason(ctx, monkeypatch):
    on_host(ctx, "laptop", monkeypatch)
    reason = "2 of 4 layers sit on the CPU (not enough GPU memory): it runs, slowly"
    attempt = load(NAME, "success", load_report={"degraded_reason": reason, "dtype": "float16"})
    assert attempt.environment_status == "degraded" and status(NAME) == "degraded"
    (row,) = compatibility.results(ctx, registry.get_model(NAME))
    assert (row.status, row.reason) == ("degraded", reason)

    # A full load next (a config that fits): compatible again.
    assert load(NAME, "success", load_report={"degraded_reason": None}).environment_status == "compatible"
    assert status(NAME) == "compatible"


def test_an_upgrade_supersedes_the_old_result_once_the_new_environment_has_one(ctx, monkeypatch):
    on_host(ctx, "laptop", monkeypatch)
    load(NAME, "success")
    upgrade(ctx, monkeypatch, transformers="5.25.0")
    assert status(NAME) == "compatible"  # nothing learned yet in the new environment: the old result stands
    failed = load(NAME, "failure")
    # The first result in the new environment: incompatible (not "degraded after a success": that success
    # was another environment's), and the old environment no longer counts for this host.
    assert failed.environment_status == "incompatible"
    assert status(NAME) == "incompatible"


def test_another_hosts_older_environment_counts_until_its_newer_one_has_a_result(ctx, monkeypatch):
    on_host(ctx, "desktop", monkeypatch)
    load(NAME, "success")
    upgrade(ctx, monkeypatch)  # the desktop upgrades; no result there yet
    monkeypatch.undo()
    on_host(ctx, "laptop", monkeypatch)
    load(NAME, "failure")
    assert status(NAME) == "compatible"  # the desktop's last result still counts (shown stale)


def test_results_from_before_environments_count_only_when_no_environment_has_one(ctx, monkeypatch):
    model = registry.get_model(NAME)
    db.session.add(LoadAttempt(model_id=model.id, previous_status="unknown", outcome="success", environment_id=None))
    db.session.commit()
    assert compatibility.summary_status(model.id) == "compatible"
    on_host(ctx, "laptop", monkeypatch)
    # Not degraded: the success from before environments is not this environment's previous attempt.
    assert load(NAME, "failure").environment_status == "incompatible"
    assert status(NAME) == "incompatible"


def test_interruptions_restore_and_user_edits_stay_until_the_next_attempt_ends(ctx, monkeypatch):
    on_host(ctx, "desktop", monkeypatch)
    load(NAME, "failure")
    registry.update_model(NAME, {"compatibility_status": "compatible"})  # the user knows better
    on_host(ctx, "laptop", monkeypatch)
    interrupted = load(NAME, "interrupted")
    assert interrupted.environment_status is None and status(NAME) == "compatible"
    load(NAME, "failure")
    assert status(NAME) == "incompatible"  # the next ending: the summary of what was learned


def test_a_death_while_loaded_is_a_failure_in_the_loaded_environment(ctx, monkeypatch):
    on_host(ctx, "desktop", monkeypatch)
    load(NAME, "success")
    laptop = on_host(ctx, "laptop", monkeypatch)
    loaded = load(NAME, "success")
    on_host(ctx, "desktop", monkeypatch)  # whichever environment this process has now
    death = attempts.record_death_while_loaded(loaded.id, error_message="killed", explanation="it died")
    assert (death.environment_id, death.config_version_id) == (laptop, loaded.config_version_id)
    assert death.environment_status == "degraded"  # a failure after a success, on the laptop
    assert status(NAME) == "compatible"  # the desktop loads it fully
