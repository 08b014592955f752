"""The whole server killed mid-load: at the next start nothing is left ``testing``."""

import os
import signal
import time

import pytest
import requests

from tests.support import LiveServer

pytestmark = pytest.mark.slow


def test_server_killed_mid_load_leaves_nothing_testing(tmp_path, tiny_models, with_test_plugins):
    home = tmp_path / "home"
    server = LiveServer(home)
    server.start()
    api = f"{server.url}/api/models"
    requests.post(api, json={"model_name": "tiny/llama", "cache_location": "custom", "compatibility_status": "compatible",
                             "cache_path": str(tiny_models["llama"]), "load_config": {"fault_hang_seconds": 120}}, timeout=5)
    assert requests.post(f"{api}/tiny/llama/load", timeout=5).status_code == 202
    assert requests.get(f"{api}/tiny/llama", timeout=5).json()["compatibility_status"] == "testing"
    for _ in range(600):  # until the worker hangs inside the load, its kwargs logged
        attempt = requests.get(f"{api}/tiny/llama/attempts", timeout=5).json()["items"][0]
        if attempt["stage"] == "loading":
            break
        time.sleep(0.05)
    # The seed's troubleshooting line, and the final kwargs, are in the server's log.
    assert 'Using custom load config: {"fault_hang_seconds": 120}' in server.log
    assert 'Final from_pretrained kwargs for tiny/llama: {"use_safetensors": true}' in server.log

    # SIGKILL to the server's whole process group (gunicorn, its worker, the load worker): no handler runs.
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()

    restarted = LiveServer(home)
    restarted.start()
    try:
        model = requests.get(f"{restarted.url}/api/models/tiny/llama", timeout=5).json()
        attempt = requests.get(f"{restarted.url}/api/models/tiny/llama/attempts", timeout=5).json()["items"][0]
        assert model["compatibility_status"] == "compatible"  # back to what it was before the attempt
        assert attempt["outcome"] == "interrupted"
        assert attempt["error_message"] == "The server stopped while this model was loading."
    finally:
        restarted.stop()
        server.stop()
