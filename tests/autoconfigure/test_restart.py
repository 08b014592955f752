"""A server killed in the middle of an auto-configure run: the next server on the same data directory
closes the run as interrupted (and its try's attempt), and a new run can start."""

import os
import signal
import time

import pytest
import requests

from tests.loading.test_fault_matrix import server_env
from tests.support import LiveServer

pytestmark = pytest.mark.slow


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


def test_a_run_whose_server_was_killed_reads_interrupted_after_the_restart(tmp_path, tiny_models, test_plugins_site):
    home, env = tmp_path / "home", server_env(test_plugins_site)
    first = LiveServer(home, env=env, inherit_env=False)
    first.start(timeout=60)
    api = f"{first.url}/api/models"
    body = {"model_name": "llama", "cache_location": "custom", "cache_path": str(tiny_models["llama"]),
            "load_config": {"fault_hang_seconds": 600}}
    assert requests.post(api, json=body, timeout=10).status_code == 201
    assert requests.post(f"{api}/llama/autoconfigure", json={}, timeout=10).status_code == 202
    _wait(lambda: requests.get(f"{api}/llama", timeout=10).json()["compatibility_status"] == "testing", 60,
          "the first try never started")
    os.killpg(first.process.pid, signal.SIGKILL)  # the server, its load worker: no handler runs
    first.process.wait()

    second = LiveServer(home, env=env, inherit_env=False)
    second.start(timeout=60)
    try:
        api = f"{second.url}/api/models"
        run = requests.get(f"{api}/llama/autoconfigure", timeout=10).json()["items"][0]
        assert run["state"] == "interrupted", run
        assert "stopped" in run["result_reason"]
        attempt = requests.get(f"{api}/llama/attempts", timeout=10).json()["items"][0]
        assert attempt["outcome"] == "interrupted" and attempt["autoconfigure_run_id"] == run["id"]
        assert requests.get(f"{api}/llama", timeout=10).json()["compatibility_status"] == "unknown"
        # Nothing is left holding the model: a new search starts (and is stopped here).
        assert requests.post(f"{api}/llama/autoconfigure", json={}, timeout=10).status_code == 202
        assert requests.delete(f"{api}/llama/autoconfigure", timeout=30).status_code == 200
    finally:
        second.stop()
