"""``pip install ".[ml]"``, the README's install for loading, as a newcomer does it: the built wheel (not
editable) with the ``ml`` extra in a fresh virtual environment, then ``modelhub serve`` started in the
repository root (where the README's commands leave you) and in another folder, each loading a tiny model
through the API, and ``modelhub bench`` from the repository root.

Started in the repository root, ``python -m modelhub.loading.worker`` used to import the source folder
``./modelhub`` (the current directory comes first on ``python -m``'s import path), which has no
``plugins`` package: every load failed with "No module named 'modelhub.plugins'". pip takes torch from
this machine's local wheels; the install takes about a minute.
"""

import json
import sys
from pathlib import Path

import pytest
import requests

from tests.test_packaging import REPO, _clean_environment, _run, build_wheel, serve_installed

pytestmark = pytest.mark.slow
LOAD_TIMEOUT = 180  # seconds: a worker imports torch, on two busy cores


@pytest.fixture(scope="module")
def ml_venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with the session's wheel and its ``ml`` extra (torch 2.13.0 CPU,
    transformers...), installed the way the README says."""
    wheel = build_wheel(tmp_path_factory)
    root = tmp_path_factory.mktemp("ml-venv")
    _run([sys.executable, "-m", "venv", root], timeout=120, env=_clean_environment())
    _run([root / "bin" / "python", "-m", "pip", "install", "--quiet", f"{wheel}[ml]"],
         timeout=900, cwd=root, env=_clean_environment())
    return root


def _wait_for_the_load(url: str, name: str) -> dict:
    import time

    deadline = time.monotonic() + LOAD_TIMEOUT
    while time.monotonic() < deadline:
        latest = requests.get(f"{url}/api/models/{name}/attempts", timeout=10).json()["items"][0]
        if latest["outcome"] != "running":
            return latest
        time.sleep(0.2)
    raise AssertionError(f"the load of {name} did not end within {LOAD_TIMEOUT} s")


@pytest.mark.parametrize("where", ["repository-root", "elsewhere"])
def test_served_from_anywhere_the_installed_package_loads_a_model(ml_venv, where, tmp_path, tiny_models):
    started_in = REPO if where == "repository-root" else tmp_path / "elsewhere"
    started_in.mkdir(exist_ok=True)
    home = tmp_path / "home"
    server = serve_installed(ml_venv, home, started_in)
    models = f"{server.url}/api/models"
    try:
        body = {"model_name": "tiny/llama", "cache_location": "custom", "cache_path": str(tiny_models["llama"])}
        assert requests.post(models, json=body, timeout=10).status_code == 201
        started = requests.post(f"{models}/tiny/llama/load", json={"timeout": LOAD_TIMEOUT}, timeout=10)
        assert started.status_code == 202, started.text
        attempt = _wait_for_the_load(server.url, "tiny/llama")
        assert attempt["outcome"] == "success", attempt
        assert requests.get(f"{models}/tiny/llama", timeout=10).json()["compatibility_status"] == "compatible"
        assert attempt["environment"]["torch"].startswith("2.13.0"), attempt["environment"]
        # The worker runs in its own directory under the data dir, wherever the server was started.
        pid = requests.get(f"{models}/tiny/llama/attempts", timeout=10).json()["load_state"]["pid"]
        assert Path(f"/proc/{pid}/cwd").resolve() == (home / "workers" / "tiny--llama").resolve()
        assert requests.post(f"{models}/tiny/llama/unload", timeout=30).status_code == 200
    except Exception as error:
        raise AssertionError(f"{error}\n--- server log ---\n{server.log}") from error
    finally:
        server.stop()
    assert "Traceback" not in server.log, server.log


def test_bench_from_the_repository_root_measures_a_model(ml_venv, tmp_path, tiny_models):
    modelhub, home, env = ml_venv / "bin" / "modelhub", tmp_path / "home", _clean_environment(HF_HUB_OFFLINE=1)
    _run([modelhub, "--data-dir", home, "add", "tiny/llama", "--cache-location", "custom",
          "--cache-path", tiny_models["llama"]], timeout=60, cwd=REPO, env=env)
    result = _run([modelhub, "--data-dir", home, "bench", "tiny/llama", "--json"], timeout=600, cwd=REPO, env=env)
    measurement = json.loads(result.stdout)
    assert measurement["outcome"] == "success", measurement
    assert measurement["results"]["perplexity"]["perplexity"] > 0
    assert measurement["environment"]["torch"].startswith("2.13.0")
