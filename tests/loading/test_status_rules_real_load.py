"""The status rules per environment with real loads of a tiny model: each attempt records the environment
it ran in and the model's status there, and GET /api/models/{name}/compatibility lists this host."""

import pytest

from modelhub import environments

pytestmark = pytest.mark.slow


def become(app, host, monkeypatch):
    """This app now runs as ``host`` (a host of its own sharing the registry)."""
    monkeypatch.setitem(app.config, "MODELHUB_HOST_NAME", host)
    environments.forget_cached(app)


def test_conflicting_real_loads_on_two_hosts(loader, tiny_models, monkeypatch):
    become(loader.app, "rocm-desktop", monkeypatch)
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_oom": True})
    failed = loader.load_and_wait("tiny/llama")
    assert failed["outcome"] == "failure" and failed["environment_status"] == "incompatible", failed
    assert failed["environment_id"] is not None
    assert loader.status("tiny/llama") == "incompatible"
    refused = loader.load("tiny/llama")  # it failed here: trying again needs force
    assert refused.status_code == 409 and "marked incompatible" in refused.json["message"], refused.json

    become(loader.app, "cuda-laptop", monkeypatch)
    response = loader.client.patch("/api/models/tiny/llama/config", json={"load_config": None})
    assert response.status_code == 200, response.json
    # The registry says incompatible, but that was learned on the desktop: the laptop may try without force.
    loaded = loader.load_and_wait("tiny/llama")
    assert loaded["outcome"] == "success" and loaded["environment_status"] == "compatible", loaded
    assert loaded["environment_id"] not in (None, failed["environment_id"])
    assert loader.status("tiny/llama") == "compatible"  # not "degraded": the failure was the desktop's

    body = loader.client.get("/api/models/tiny/llama/compatibility").json
    assert body["summary"] == "compatible"
    assert body["here"] == {"environment_id": loaded["environment_id"], "status": "compatible", "stale": False}
    laptop, desktop = body["environments"]
    assert (laptop["host"], laptop["here"], laptop["status"], laptop["attempt_id"]) == (
        "cuda-laptop", True, "compatible", loaded["id"])
    assert laptop["load_config"] is None and laptop["config_version_id"] == loaded["config_version_id"]
    assert (desktop["host"], desktop["here"], desktop["status"], desktop["attempt_id"]) == (
        "rocm-desktop", False, "incompatible", failed["id"])
    assert '"fault_oom": true' in desktop["load_config"]
    with loader.app.app_context():
        this_host = environments.current(loader.app)
        assert laptop["fingerprint"] == this_host.fingerprint
        assert laptop["description"] == environments.describe(this_host)
    loader.client.post("/api/models/tiny/llama/unload")
