"""A worker's life beyond its load: it runs in a directory of its own under the data dir, and when a loaded
model's worker dies on its own (killed, crashed, exits) the registry records it with its cause and the
status follows the rules for a failure after a success."""

import os
import signal
import time
from pathlib import Path

import pytest

from tests.loading.test_loads import SQLITE_ONLY

pytestmark = [pytest.mark.slow, SQLITE_ONLY]


def data_dir(loader) -> Path:
    return Path(loader.app.config["MODELHUB_HOME"])


def wait_for_attempts(loader, name: str, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = loader.attempts(name)["items"]
        if len(items) >= count and items[0]["outcome"] != "running":
            return items
        time.sleep(0.1)
    raise AssertionError(f"{name} has not {count} finished attempts: {loader.attempts(name)}")


def test_a_worker_runs_in_its_own_directory_under_the_data_dir(loader, tiny_models, tmp_path, monkeypatch):
    started_in = tmp_path / "where-serve-was-started"
    started_in.mkdir()
    monkeypatch.chdir(started_in)
    # The faults test plugin writes logs/litter.log into the worker's current directory, as gptqmodel does.
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_litter_cwd": True})
    assert loader.load_and_wait("tiny/llama")["outcome"] == "success"
    own = data_dir(loader) / "workers" / "tiny--llama"
    pid = loader.attempts("tiny/llama")["load_state"]["pid"]
    assert Path(f"/proc/{pid}/cwd").resolve() == own.resolve()
    assert (own / "logs" / "litter.log").read_text() == f"written by worker {pid}\n"
    assert list(started_in.iterdir()) == []

    loader.client.post("/api/models/tiny/llama/unload")
    assert (own / "logs" / "litter.log").exists(), "what a library wrote stays for the user to read"

    # Each model's workers have their own directory; a measurement's worker too.
    loader.register("tiny/gpt2", tiny_models["gpt2"], load_config={"fault_hang_seconds": 60})
    assert loader.client.post("/api/models/tiny/gpt2/benchmark", json={}).status_code == 202
    pid = loader.wait_for_stage("tiny/gpt2", "loading")["pid"]
    assert Path(f"/proc/{pid}/cwd").resolve() == (data_dir(loader) / "workers" / "tiny--gpt2").resolve()
    loader.client.post("/api/models/tiny/gpt2/unload")
    assert list(started_in.iterdir()) == []


@pytest.mark.parametrize("ending", ["sigkill", "exit-code"])
def test_a_loaded_workers_death_is_recorded_and_degrades_the_model(loader, tiny_models, ending):
    load_config = {"fault_exit_on_sigusr1": 7} if ending == "exit-code" else None
    loader.register("tiny/llama", tiny_models["llama"], load_config=load_config, compatibility_notes="mine")
    loaded = loader.load_and_wait("tiny/llama")
    assert loaded["outcome"] == "success" and loader.status("tiny/llama") == "compatible"
    pid = loader.attempts("tiny/llama")["load_state"]["pid"]

    os.kill(pid, signal.SIGKILL if ending == "sigkill" else signal.SIGUSR1)

    death, success = wait_for_attempts(loader, "tiny/llama", 2)[:2]
    cause = "killed by SIGKILL" if ending == "sigkill" else "exit code 7"
    assert success["id"] == loaded["id"] and success["outcome"] == "success", "the success stays a success"
    assert death["outcome"] == "failure" and death["error_type"] == "WorkerDiedWhileLoaded", death
    assert cause in death["error_message"] and "last stage: loaded" in death["error_message"], death
    assert cause in death["explanation"] and "no longer loaded" in death["explanation"], death
    assert death["worker_pid"] == pid and death["load_config"] == loaded["load_config"]
    assert death["previous_status"] == "compatible"
    assert death["started_at"] == loaded["finished_at"]  # it spans the time the model was loaded
    # A failure right after a success: degraded (status_rules.py); the user's notes untouched.
    assert loader.status("tiny/llama") == "degraded"
    assert loader.client.get("/api/models/tiny/llama").json["compatibility_notes"] == "mine"
    assert loader.attempts("tiny/llama")["load_state"] == {"state": "idle"}
    assert loader.app.extensions["modelhub.supervisor"].workers == {}

    # The model loads again (degraded: a success right after a failure).
    assert loader.load_and_wait("tiny/llama")["outcome"] == "success"
    assert loader.status("tiny/llama") == "degraded"


def test_an_unload_is_not_a_death(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"])
    loader.load_and_wait("tiny/llama")
    assert loader.client.post("/api/models/tiny/llama/unload").status_code == 200
    time.sleep(1)
    assert [a["outcome"] for a in loader.attempts("tiny/llama")["items"]] == ["success"]
    assert loader.status("tiny/llama") == "compatible"


def test_sigterm_to_a_loaded_worker_is_an_unload_not_a_death(loader, tiny_models):
    """systemd stopping the service sends SIGTERM to every process of it, workers included."""
    loader.register("tiny/llama", tiny_models["llama"])
    loader.load_and_wait("tiny/llama")
    os.kill(loader.attempts("tiny/llama")["load_state"]["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 15
    while loader.attempts("tiny/llama")["load_state"] != {"state": "idle"}:
        assert time.monotonic() < deadline, loader.attempts("tiny/llama")
        time.sleep(0.1)
    time.sleep(0.5)
    assert [a["outcome"] for a in loader.attempts("tiny/llama")["items"]] == ["success"]
    assert loader.status("tiny/llama") == "compatible"


def test_sigterm_during_a_load_interrupts_it_without_a_verdict(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_hang_seconds": 60},
                    compatibility_status="degraded")
    assert loader.client.post("/api/models/tiny/llama/load").status_code == 202
    os.kill(loader.wait_for_stage("tiny/llama", "loading")["pid"], signal.SIGTERM)
    (attempt,) = wait_for_attempts(loader, "tiny/llama", 1)
    assert attempt["outcome"] == "interrupted" and "SIGTERM" in attempt["error_message"], attempt
    assert loader.status("tiny/llama") == "degraded"
