"""Several web processes, one registry: load, unload, state and progress agree whichever process
answers; one owner per loaded model; racing loads get one 202 and 409s, never a second worker.

Two ways to get several processes: ``modelhub serve --workers 4`` (whichever worker accepts a
connection answers it), and two servers on one database (as two GPU hosts sharing a PostgreSQL
registry), where the test knows which process it is talking to."""

import os
import signal
import threading
import time

import pytest
import requests

from tests.support import LiveServer

pytestmark = pytest.mark.slow

RACERS = 8


def register(server, tiny_models, **load_config):
    body = {"model_name": "tiny/llama", "cache_location": "custom", "cache_path": str(tiny_models["llama"])}
    if load_config:
        body["load_config"] = load_config
    response = requests.post(f"{server.url}/api/models", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return f"{server.url}/api/models/tiny/llama"


def load_state(url) -> dict:
    response = requests.get(f"{url}/attempts", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["load_state"]


def wait_for(url, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = load_state(url)
        if predicate(state):
            return state
        time.sleep(0.1)
    raise AssertionError(f"never reached the wanted state; last: {state}")


def race(method_urls) -> list[requests.Response]:
    """Send the requests at the same moment, each on its own connection."""
    barrier, responses = threading.Barrier(len(method_urls)), [None] * len(method_urls)

    def send(index, url):
        barrier.wait()
        responses[index] = requests.post(url, json={}, timeout=120)

    threads = [threading.Thread(target=send, args=(i, url)) for i, url in enumerate(method_urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def worker_processes(*servers) -> list[int]:
    """Live load worker processes started by these servers (each runs in a process group of its own)."""
    groups, pids = {server.process.pid for server in servers}, []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
                state, _parent, group = open(f"/proc/{entry}/stat").read().rpartition(")")[2].split()[:3]
            except OSError:
                continue
            if b"modelhub.loading.worker" in command and int(group) in groups and state != "Z":
                pids.append(int(entry))
    return pids


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[0] == "Z"


def test_racing_loads_on_four_processes_start_one_worker(with_test_plugins, multi_worker_server, tiny_models,
                                                         record_figures):
    url = register(multi_worker_server, tiny_models, fault_hang_seconds=60)
    
    responses = race([f"{url}/load"] * RACERS)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [202] + [409] * (RACERS - 1), [r.text for r in responses]
    attempt_id = next(r.json()["id"] for r in responses if r.status_code == 202)
    assert all("already" in r.json()["message"] for r in responses if r.status_code == 409)
    state = wait_for(url, lambda s: s.get("stage") == "loading")
    # Asked many times (answered by whichever process), the state is the same one load.
    answers = [load_state(url) for _ in range(20)]
    assert {(a["state"], a["attempt_id"], a["pid"], a["owner"]) for a in answers} == {
        ("loading", attempt_id, state["pid"], state["owner"])}
    assert worker_processes(multi_worker_server) == [state["pid"]]  # one worker, not one per process

    unloads = race([f"{url}/unload"] * 4)  # the owner and others at once: one cancel, the rest 409
    assert sorted(r.status_code for r in unloads)[0] == 200
    assert {r.status_code for r in unloads} <= {200, 409}
    assert all(load_state(url) == {"state": "idle"} for _ in range(10))
    attempts = requests.get(f"{url}/attempts", timeout=30).json()["items"]
    assert [a["outcome"] for a in attempts] == ["interrupted"]
    assert requests.get(url, timeout=30).json()["compatibility_status"] == "unknown"
    deadline = time.monotonic() + 10
    while not gone(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(state["pid"])
    record_figures(racing_loads=RACERS, load_2xx=statuses.count(202), load_409=statuses.count(409),
                   workers_started=1, unload_statuses=sorted(r.status_code for r in unloads))


@pytest.fixture
def two_servers(database_url, tmp_path, with_test_plugins):
    """Two servers on one database: SQLite shares the file (one data dir), PostgreSQL the URL."""
    home = tmp_path / "home"
    first = LiveServer(home, database_url)
    first.start(timeout=90)
    second = LiveServer(home, database_url)
    second.start(timeout=90)
    yield first, second
    second.stop()
    first.stop()


def test_a_model_loaded_by_one_process_is_seen_and_unloaded_by_another(two_servers, tiny_models):
    first, second = two_servers
    on_first = register(first, tiny_models)
    on_second = f"{second.url}/api/models/tiny/llama"

    assert requests.post(f"{on_first}/load", json={}, timeout=30).status_code == 202
    loaded = wait_for(on_second, lambda s: s["state"] == "loaded")  # progress seen from the other process
    assert loaded["owner"].startswith("process ") and loaded["pid"] in worker_processes(first)
    from_the_owner = load_state(on_first)
    assert from_the_owner == loaded | {"seconds": from_the_owner["seconds"]}
    assert requests.get(on_second, timeout=30).json()["compatibility_status"] == "compatible"
    page = requests.get(f"{second.url}/models", timeout=30).text  # the other process's Models page agrees
    assert f'title="Worker process {loaded["pid"]}, run by {loaded["owner"]}">Loaded</span>' in page

    # The second process may not load it again behind the owner's back: a reload goes through the owner.
    conflict = requests.post(f"{on_second}/load", json={}, timeout=60)
    assert conflict.status_code == 202  # a reload: the owner ended its worker first
    reloaded = wait_for(on_first, lambda s: s["state"] == "loaded")
    assert reloaded["attempt_id"] != loaded["attempt_id"]
    assert gone(loaded["pid"])
    assert worker_processes(first, second) == [reloaded["pid"]]

    # Unloaded through the process that does not own it: the owner ends the worker.
    response = requests.post(f"{on_first}/unload", json={}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json() == {"state": "idle"}
    assert load_state(on_second) == {"state": "idle"}
    assert gone(reloaded["pid"])
    assert requests.post(f"{on_second}/unload", json={}, timeout=30).status_code == 409


def test_a_dead_owner_is_detected_by_the_other_process(two_servers, tiny_models):
    first, second = two_servers
    on_first = register(first, tiny_models, fault_hang_seconds=60)
    on_second = f"{second.url}/api/models/tiny/llama"
    assert requests.post(f"{on_first}/load", json={}, timeout=30).status_code == 202
    state = wait_for(on_second, lambda s: s.get("stage") == "loading")

    os.killpg(first.process.pid, signal.SIGKILL)  # the owner and its worker die; no handler runs
    first.process.wait()

    assert wait_for(on_second, lambda s: s["state"] == "idle", timeout=10)
    retried = requests.post(f"{on_second}/load", json={"timeout": 5}, timeout=30)
    assert retried.status_code == 202, retried.text  # the other process takes the dead owner's lease over
    attempts = requests.get(f"{on_second}/attempts", timeout=30).json()["items"]
    assert attempts[1]["id"] == state["attempt_id"]
    assert attempts[1]["outcome"] == "interrupted"
