"""The worker process on its own: its JSON-lines protocol, and a clear cause when the ML libraries
are missing (the server installs without them)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def run_worker(request: dict, env: dict | None = None, timeout: float = 120) -> list[dict]:
    process = subprocess.run(
        [sys.executable, "-m", "modelhub.loading.worker"], input=json.dumps(request) + "\n",
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )
    return [json.loads(line) for line in process.stdout.splitlines()]


def request_for(directory) -> dict:
    return {"model_name": "tiny/llama", "hf_path": "tiny/llama", "cache_path": str(directory),
            "load_config": {"torch_dtype": "bfloat16"}, "settings": {}}


def test_protocol_reports_stages_then_the_outcome(tiny_models):
    # stdin closes right after the request, so after loading the worker ends on its own.
    messages = run_worker(request_for(tiny_models["llama"]))
    stages = [m["stage"] for m in messages if m["event"] == "stage"]
    assert stages == ["environment", "preparing", "loading", "smoke_test"]
    loaded = messages[-1]
    assert loaded["event"] == "loaded"
    assert loaded["final_kwargs"]["dtype"] == "bfloat16"
    assert loaded["smoke_test"]["prompt"] == "The capital of France is"
    assert loaded["smoke_test"]["new_tokens"] > 0


def test_torch_leaves_the_server_the_cores_it_is_told_to(tiny_models):
    request = {**request_for(tiny_models["llama"]), "settings": {"cpu_threads": 1}}
    loaded = run_worker(request)[-1]
    assert loaded["event"] == "loaded"
    assert loaded["environment"]["torch_threads"] == 1


def test_the_server_keeps_a_core_by_default():
    from modelhub.settings import base_config

    assert base_config()["MODELHUB_WORKER_THREADS"] == max(1, (os.cpu_count() or 1) - 1)


def test_without_the_ml_libraries_the_cause_says_what_to_install(tiny_models, tmp_path):
    blocker = tmp_path / "no-torch"
    for name in ("torch", "transformers"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{name}'\", name={name!r})\n"
        )
    path = os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])
    messages = run_worker(request_for(tiny_models["llama"]), env={"PYTHONPATH": path})
    failed = messages[-1]
    assert failed["event"] == "failed"
    assert failed["error_type"] == "ModuleNotFoundError"
    assert "pip install 'modelhub[ml]'" in failed["explanation"]
