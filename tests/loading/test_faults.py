"""Loads cut short by the user, and a second load while one runs. The ways a load fails on its own (hangs,
crashes, kills, broken files, the server killed) are the fault matrix: test_fault_matrix.py."""

import os
import time

import pytest

from tests.loading.test_loads import SQLITE_ONLY

pytestmark = [pytest.mark.slow, SQLITE_ONLY]


def test_cancel_a_load_in_progress_restores_the_status(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_hang_seconds": 60},
                    compatibility_status="degraded")
    loader.load("tiny/llama")
    state = loader.wait_for_stage("tiny/llama", "loading")
    # The registry stays writable while a model loads: no transaction is held open.
    assert loader.client.patch("/api/models/tiny/llama/config", json={"compatibility_notes": "edited"}).status_code == 200
    assert loader.client.post("/api/models/tiny/llama/unload").status_code == 200
    attempt = loader.attempts("tiny/llama")["items"][0]
    assert attempt["outcome"] == "interrupted"
    assert loader.status("tiny/llama") == "degraded"
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(state["pid"], 0)


def test_a_second_load_while_loading_is_409(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_hang_seconds": 60})
    assert loader.load("tiny/llama").status_code == 202
    second = loader.load("tiny/llama")
    assert second.status_code == 409
    assert "already loading" in second.json["message"]
    loader.client.post("/api/models/tiny/llama/unload")


@pytest.mark.parametrize("hang", [True, False], ids=["loading", "loaded"])
def test_deleting_a_model_ends_its_worker(loader, tiny_models, hang):
    """The model's lease goes with it (ON DELETE CASCADE); the owner sees its lease gone and ends the
    worker, so no process keeps memory for a model that is no longer registered."""
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_hang_seconds": 60} if hang else None)
    loader.load("tiny/llama")
    if hang:
        state = loader.wait_for_stage("tiny/llama", "loading")
    else:
        assert loader.wait("tiny/llama")["outcome"] == "success"
        state = loader.attempts("tiny/llama")["load_state"]
    assert state["state"] == ("loading" if hang else "loaded")
    assert loader.client.delete("/api/models/tiny/llama").status_code == 204
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(state["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the deleted model's worker is still running")
    assert loader.app.extensions["modelhub.supervisor"].workers == {}
