"""Loads asked of another host through the API: queued jobs, their states, cancel, the hosts listed,
and the refusals (unknown host: 400 with nothing queued; the same load twice: 409; a claimed job: 409;
an unknown job: 404). The host's side (claiming, loading) is tests/loading/test_host_jobs.py."""

import pytest
from sqlalchemy import func, select

from modelhub import environments
from modelhub.extensions import db
from modelhub.loading import host_jobs
from modelhub.models import HostJob

OTHER = "rocm-desktop"


@pytest.fixture
def api(app, client):
    """The app as host "cuda-laptop", a registered model, and a second host known to the registry (its
    modelhub registered its environment, as it does when it starts on this database)."""
    app.config["MODELHUB_HOST_NAME"] = "cuda-laptop"
    assert client.post("/api/models", json={"model_name": "org/tiny"}).status_code == 201
    with app.app_context():
        environments._register({**environments.read_facts(OTHER)}, "f" * 16)
    return client


def queued_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(HostJob))


def test_a_load_for_another_host_is_queued_and_answered_with_the_job(api, app):
    response = api.post("/api/models/org/tiny/load", json={"host": OTHER, "timeout": 60})

    assert response.status_code == 202, response.json
    job = response.json
    assert {key: job[key] for key in ("host", "state", "run_id", "model_name", "requested_by", "timeout", "force")} == {
        "host": OTHER, "state": "queued", "run_id": None, "model_name": "org/tiny", "requested_by": "cuda-laptop",
        "timeout": 60.0, "force": False}
    assert job["requested_at"].endswith("+00:00") and job["attempt_outcome"] is None
    assert response.headers["Location"] == f"/api/host-jobs/{job['id']}"
    assert api.get(response.headers["Location"]).json == job
    # Nothing started here: no attempt, no worker.
    assert api.get("/api/models/org/tiny/attempts").json == {"load_state": {"state": "idle"}, "items": []}
    assert [listed["id"] for listed in api.get(f"/api/host-jobs?host={OTHER}").json] == [job["id"]]
    assert api.get("/api/host-jobs?host=cuda-laptop").json == []
    assert api.get("/api/host-jobs?state=queued").json == [job]


def test_an_unknown_host_is_a_400_naming_the_known_ones_and_nothing_is_queued(api, app):
    response = api.post("/api/models/org/tiny/load", json={"host": "rocm-dekstop"})

    assert response.status_code == 400
    [message] = response.json["errors"]["json"]["host"]
    assert "'rocm-dekstop'" in message and f"'{OTHER}'" in message and "'cuda-laptop'" in message
    assert queued_count(app) == 0
    for bad, field_message in ([{"host": ""}, "Shorter than minimum length 1."], [{"host": 5}, "Not a valid string."],
                               [{"host": "x" * 256}, "Longer than the maximum of 255 characters."]):
        answer = api.post("/api/models/org/tiny/load", json=bad)
        assert answer.status_code == 422, answer.json
        assert answer.json["errors"]["json"]["host"] == [field_message]
    assert queued_count(app) == 0
    assert api.post("/api/models/org/nope/load", json={"host": OTHER}).status_code == 404
    assert queued_count(app) == 0


def test_the_same_load_twice_for_one_host_is_a_409_until_the_first_is_taken(api, app):
    first = api.post("/api/models/org/tiny/load", json={"host": OTHER}).json
    again = api.post("/api/models/org/tiny/load", json={"host": OTHER, "force": True})

    assert again.status_code == 409
    assert f"job {first['id']}" in again.json["message"]
    assert queued_count(app) == 1
    assert api.delete(f"/api/host-jobs/{first['id']}").json["state"] == "cancelled"
    assert api.post("/api/models/org/tiny/load", json={"host": OTHER}).status_code == 202  # asked anew


def test_a_queued_job_can_be_cancelled_a_claimed_one_cannot(api, app):
    kept = api.post("/api/models/org/tiny/load", json={"host": OTHER}).json
    with app.app_context():
        claimed = host_jobs.claim_next(OTHER)  # what the other host's poller does
        assert claimed.id == kept["id"] and claimed.claimed_by_pid is not None

    refused = api.delete(f"/api/host-jobs/{kept['id']}")

    assert refused.status_code == 409
    assert "claimed" in refused.json["message"] and "unload" in refused.json["message"]
    assert api.get(f"/api/host-jobs/{kept['id']}").json["state"] == "claimed"
    for unknown in (999999, 2**31, 10**30, 0):
        assert api.delete(f"/api/host-jobs/{unknown}").status_code == 404
        assert api.get(f"/api/host-jobs/{unknown}").status_code == 404
    cancelled = api.post("/api/models/org/tiny/load", json={"host": OTHER}).json
    answer = api.delete(f"/api/host-jobs/{cancelled['id']}")
    assert answer.status_code == 200 and answer.json["state"] == "cancelled" and answer.json["finished_at"]
    assert api.delete(f"/api/host-jobs/{cancelled['id']}").status_code == 409  # already cancelled
    with app.app_context():
        assert host_jobs.claim_next(OTHER) is None  # a cancelled job is never claimed


def test_hosts_lists_each_host_once_with_its_newest_environment(api, app):
    api.post("/api/models/org/tiny/load", json={"host": OTHER})

    hosts = {host["host"]: host for host in api.get("/api/hosts").json}

    assert set(hosts) == {"cuda-laptop", OTHER}
    assert hosts["cuda-laptop"]["this_host"] and not hosts[OTHER]["this_host"]
    assert hosts[OTHER]["queued_jobs"] == 1 and hosts["cuda-laptop"]["queued_jobs"] == 0
    assert hosts[OTHER]["fingerprint"] == "f" * 16 and hosts[OTHER]["description"].startswith(f"{OTHER} · ")
    with app.app_context():
        assert hosts["cuda-laptop"]["environment_id"] == environments.current_id(app)


def test_the_own_host_name_loads_here_as_before(api, app):
    response = api.post("/api/models/org/tiny/load", json={"host": "cuda-laptop", "timeout": 5})
    try:
        assert response.status_code == 202, response.json
        assert response.json["outcome"] == "running" and "state" not in response.json  # an attempt, not a job
        assert response.headers["Location"] == "/api/models/org/tiny/attempts"
        assert queued_count(app) == 0
    finally:
        app.extensions["modelhub.supervisor"].shutdown()


def test_a_benchmark_runs_here_only(api, app):
    answer = api.post("/api/models/org/tiny/benchmark", json={"host": OTHER})
    assert answer.status_code == 422 and answer.json["errors"]["json"]["host"] == ["Unknown field."]
    assert queued_count(app) == 0


def test_bad_queries_are_refused_per_field(api):
    answer = api.get("/api/host-jobs?state=running")
    assert answer.status_code == 422 and "state" in answer.json["errors"]["query"]
    assert api.get("/api/host-jobs?hots=x").status_code == 422
