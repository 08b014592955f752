"""A model found by a scan in the hub cache (symlinked snapshot files) loads like any other."""

import time

import pytest

from tests.discovery.trees import add_hub_repo, read_files

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def test_a_scanned_hub_cache_model_loads(loader, tiny_models, tmp_path, monkeypatch):
    hub = tmp_path / "hf" / "hub"
    snapshot = add_hub_repo(hub, "tiny-org/llama", read_files(tiny_models["llama"]))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    client = loader.client
    assert client.post("/api/scan").status_code == 202
    for _ in range(300):
        if client.get("/api/scan").json["state"] != "running":
            break
        time.sleep(0.05)
    model = client.get("/api/models/tiny-org/llama").json
    assert (model["cache_location"], model["cache_path"]) == ("primary", str(snapshot))

    attempt = loader.load_and_wait("tiny-org/llama")

    assert attempt["outcome"] == "success", attempt
    assert loader.status("tiny-org/llama") == "compatible"
