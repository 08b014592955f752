"""``GET /api/models/{name}/compatibility`` and ``/api/environments``: results per environment as a
client reads them, and clear 404s for what does not exist."""

import pytest

from modelhub import environments, registry
from tests.test_compatibility import load, on_host, upgrade

NAME = "acme/alpha"


@pytest.fixture
def ctx(app):
    with app.app_context():
        registry.create_model({"model_name": NAME})
        yield app
        environments.forget_cached(app)


def test_a_model_never_loaded_has_no_environments(client, ctx):
    body = client.get(f"/api/models/{NAME}/compatibility").json
    assert body == {"model_name": NAME, "summary": "unknown", "environments": [],
                    "here": {"environment_id": environments.current_id(ctx), "status": None, "stale": False}}


def test_results_per_environment_with_here_and_stale(client, ctx, monkeypatch):
    desktop = on_host(ctx, "rocm-desktop", monkeypatch)
    load(NAME, "failure", error_type="RuntimeError", error_message="HIP error")
    laptop = on_host(ctx, "cuda-laptop", monkeypatch)
    success = load(NAME, "success")
    load(NAME, "success")

    body = client.get(f"/api/models/{NAME}/compatibility").json
    assert body["summary"] == "compatible"
    assert body["here"] == {"environment_id": laptop, "status": "compatible", "stale": False}
    here, there = body["environments"]
    assert (here["environment_id"], here["host"], here["here"], here["stale"], here["counted"]) == (
        laptop, "cuda-laptop", True, False, True)
    assert (here["status"], here["outcome"], here["successes"], here["failures"]) == ("compatible", "success", 2, 0)
    assert here["config_version_id"] == success.config_version_id and here["load_config"] is None
    assert here["config_version"] == 1  # the version migration 0009 (or the model's creation) recorded
    assert here["description"].startswith("cuda-laptop · ") and here["fingerprint"]
    assert here["finished_at"].endswith("+00:00") and here["reason"] is None
    assert (there["environment_id"], there["status"], there["here"], there["stale"]) == (
        desktop, "incompatible", False, False)
    assert (there["successes"], there["failures"]) == (0, 1)

    # This host upgrades: its old result is stale, and the model needs a retest here.
    upgraded = upgrade(ctx, monkeypatch)
    body = client.get(f"/api/models/{NAME}/compatibility").json
    assert body["here"] == {"environment_id": upgraded, "status": None, "stale": True}
    old = next(row for row in body["environments"] if row["environment_id"] == laptop)
    assert old["stale"] and not old["here"] and old["counted"]  # it counts until the new one has a result

    load(NAME, "failure")
    body = client.get(f"/api/models/{NAME}/compatibility").json
    assert body["summary"] == "incompatible"
    first = body["environments"][0]
    assert (first["environment_id"], first["here"], first["status"]) == (upgraded, True, "incompatible")
    old = next(row for row in body["environments"] if row["environment_id"] == laptop)
    assert old["stale"] and not old["counted"]


def test_another_hosts_older_environment_is_stale_once_it_registered_a_newer_one(client, ctx, monkeypatch):
    old = on_host(ctx, "rocm-desktop", monkeypatch)
    load(NAME, "success")
    upgrade(ctx, monkeypatch)  # the desktop restarts after an upgrade, and loads nothing yet
    monkeypatch.undo()
    on_host(ctx, "cuda-laptop", monkeypatch)
    (row,) = client.get(f"/api/models/{NAME}/compatibility").json["environments"]
    assert (row["environment_id"], row["stale"], row["counted"], row["here"]) == (old, True, True, False)


def test_environments_list_and_one(client, ctx, monkeypatch):
    first = on_host(ctx, "rocm-desktop", monkeypatch)
    second = on_host(ctx, "cuda-laptop", monkeypatch)
    listed = client.get("/api/environments").json
    assert [(row["id"], row["host"], row["current"]) for row in listed] == [
        (second, "cuda-laptop", True), (first, "rocm-desktop", False)]
    one = client.get(f"/api/environments/{first}").json
    assert one == next(row for row in listed if row["id"] == first)
    assert set(one) == {"id", "fingerprint", "host", "description", "facts", "first_seen_at", "last_seen_at", "current"}
    assert one["facts"]["host"] == "rocm-desktop" and one["facts"]["libraries"]["transformers"]
    assert one["first_seen_at"].endswith("+00:00") and one["description"].startswith("rocm-desktop · ")


@pytest.mark.parametrize("path", ["/api/environments/999999", "/api/environments/0", "/api/environments/abc",
                                  "/api/environments/-1", "/api/environments/1.5",
                                  "/api/environments/99999999999999999999999"])
def test_unknown_environments_are_404_in_the_error_shape(client, ctx, path):
    response = client.get(path)
    assert response.status_code == 404
    assert set(response.json) == {"code", "status", "message"} and response.json["code"] == 404
    assert response.json["message"]


def test_unknown_model_is_404(client, ctx):
    response = client.get("/api/models/acme/nope/compatibility")
    assert response.status_code == 404 and "acme/nope" in response.json["message"]


def test_a_name_ending_in_compatibility_is_refused(client, ctx):
    response = client.post("/api/models", json={"model_name": "acme/compatibility"})
    assert response.status_code == 422 and "compatibility endpoint" in response.json["errors"]["json"]["model_name"][0]
