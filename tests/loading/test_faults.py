"""Loads that hang, crash or are cut short: each ends in a final status with a readable cause, the
server keeps answering, and nothing stays ``testing``."""

import os
import signal
import time

import pytest

from tests.loading.test_loads import SQLITE_ONLY

pytestmark = [pytest.mark.slow, SQLITE_ONLY]


def wait_for_stage(loader, name, stage, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = loader.attempts(name)["load_state"]
        if state.get("stage") == stage:
            return state
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {stage}")


def test_worker_killed_mid_load(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_hang_seconds": 60})
    loader.load("tiny/llama")
    state = wait_for_stage(loader, "tiny/llama", "loading")
    os.kill(state["pid"], signal.SIGKILL)
    attempt = loader.wait("tiny/llama", timeout=30)
    assert attempt["outcome"] == "failure"
    assert attempt["error_type"] == "WorkerDied"
    assert "killed by SIGKILL" in attempt["error_message"]
    assert "out-of-memory killer" in attempt["explanation"]
    assert loader.status("tiny/llama") == "incompatible"


@pytest.mark.parametrize("crash, signal_name", [("segv", "SIGSEGV"), ("abort", "SIGABRT"), ("exit", "exit code 3")])
def test_worker_crashes(loader, tiny_models, crash, signal_name):
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_crash": crash})
    attempt = loader.load_and_wait("tiny/llama")
    assert attempt["outcome"] == "failure"
    assert signal_name in attempt["error_message"]
    assert loader.status("tiny/llama") == "incompatible"


def test_a_hang_past_the_timeout_is_stopped(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_hang_seconds": 600})
    started = time.monotonic()
    response = loader.load("tiny/llama", timeout=3)
    assert response.status_code == 202
    assert loader.client.get("/api/models").status_code == 200  # the server answers during the load
    attempt = loader.wait("tiny/llama", timeout=30)
    assert attempt["error_type"] == "Timeout"
    assert "did not finish within 3 s" in attempt["error_message"]
    assert time.monotonic() - started < 3 + 5
    assert loader.status("tiny/llama") == "incompatible"


def test_cancel_a_load_in_progress_restores_the_status(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_hang_seconds": 60},
                    compatibility_status="degraded")
    loader.load("tiny/llama")
    state = wait_for_stage(loader, "tiny/llama", "loading")
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
