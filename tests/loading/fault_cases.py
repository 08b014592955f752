"""The load fault matrix (issue 7): how a load can go wrong, and a client that drives one case against a
real server and records what a user would see. Shared by tests/loading/test_fault_matrix.py (which
asserts) and bench/faults.py (which prints the figures for docs/reliability.md)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from tests.loading.processes import alive, load_workers, parent_of, process_tree, rss_bytes, server_rss, wait_gone

PLUGIN_PACKAGES = Path(__file__).resolve().parent.parent / "plugin_packages"
GRACE = 5  # seconds a final status may come after the load's timeout
LOAD_TIMEOUT = 60  # the timeout of the loads that are not about the timeout: generous on a busy machine


@dataclass
class Case:
    id: str
    what: str  # one line for the table
    error_type: str  # what the attempt records
    cause: tuple[str, ...]  # words the readable cause (the explanation a user reads) must contain
    load_config: dict = field(default_factory=dict)
    timeout: float = LOAD_TIMEOUT
    breakage: Callable[[Path], None] | None = None  # damages the model's copy, after it is registered
    kill: signal.Signals | None = None  # sent to the worker from outside once it is loading
    suggestion: dict | None = None  # the load_config change the attempt must suggest, where one is known


# ---- ways to break a copy of the tiny Llama -------------------------------------------------------------

def remove_config(directory: Path) -> None:
    (directory / "config.json").unlink()


def unknown_architecture(directory: Path) -> None:
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "model_type": "no-such-architecture"}))


def truncate_a_shard(directory: Path) -> None:
    """Re-save the weights as three safetensors shards (with their index) and cut the second one in half,
    as an interrupted download leaves it."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(directory)
    (directory / "model.safetensors").unlink()
    model.save_pretrained(directory, max_shard_size="300KB")
    shard = directory / "model-00002-of-00003.safetensors"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


def pickle_only(directory: Path) -> None:
    """Only pytorch_model.bin. ``save_pretrained(safe_serialization=False)`` still writes safetensors on
    transformers 5, so the state dict is pickled with torch.save, as older transformers wrote it."""
    import torch
    from transformers import AutoModelForCausalLM

    state = AutoModelForCausalLM.from_pretrained(directory).state_dict()
    (directory / "model.safetensors").unlink()
    torch.save(state, directory / "pytorch_model.bin")


CASES = [
    Case("no-config", "no config.json", "ValueError", ("has no config.json", "Download the model again"),
         breakage=remove_config),
    Case("unknown-architecture", "unknown architecture", "ValueError",
         ("does not know architecture 'no-such-architecture'",), breakage=unknown_architecture),
    Case("truncated-shard", "truncated safetensors shard", "SafetensorError", ("damaged or truncated",),
         breakage=truncate_a_shard),
    Case("pickle-only", "pickle-only weights, no opt-in", "LoadRefused",
         ("ships only pickle .bin weights (pytorch_model.bin)", "set \"allow_pickle_weights\": true"),
         breakage=pickle_only, suggestion={"allow_pickle_weights": True}),
    Case("out-of-memory", "out of memory (torch.OutOfMemoryError)", "OutOfMemoryError", ("did not fit in GPU memory",),
         load_config={"fault_oom": True}, suggestion={"device_map": "auto", "quantization_config": {"load_in_8bit": True}}),
    Case("sigkill", "worker killed with SIGKILL mid-load", "WorkerDied",
         ("crashed (killed by SIGKILL)", "out-of-memory killer"), load_config={"fault_hang_seconds": 600},
         kill=signal.SIGKILL, suggestion={"device_map": "auto"}),
    Case("sigsegv", "worker crashes with SIGSEGV", "WorkerDied", ("crashed (killed by SIGSEGV)",),
         load_config={"fault_crash": "segv"}),
    Case("abort", "worker aborts (SIGABRT)", "WorkerDied", ("crashed (killed by SIGABRT)",),
         load_config={"fault_crash": "abort"}),
    Case("exit", "worker exits without reporting", "WorkerDied", ("crashed (exit code 3)",),
         load_config={"fault_crash": "exit"}),
    Case("hang", "hang past the timeout", "Timeout", ("The load hung or was too slow",),
         load_config={"fault_hang_seconds": 600}, timeout=10),
]


# ---- driving a case -----------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a user saw of one load: the model's status, its latest attempt, how long it took."""

    status: str | None = None
    attempt: dict | None = None
    attempts: list = field(default_factory=list)
    seconds: float | None = None  # from the POST .../load to the final status
    gets: int = 0  # GET /api/models sent while waiting, and after
    failed_gets: list = field(default_factory=list)  # the ones that did not answer 200 (status or error)
    worker_pid: int | None = None
    worker_gone: bool | None = None  # the worker process has ended (checked after the final status)

    @property
    def answered(self) -> bool:
        return self.gets > 0 and not self.failed_gets


class Client:
    """The API calls of the matrix, against a server at ``url``."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()

    def api(self, method: str, path: str, expect: int | None = None, **kwargs):
        response = self.http.request(method, f"{self.url}/api/models{path}", timeout=10, **kwargs)
        if expect is not None and response.status_code != expect:
            raise AssertionError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response

    def register(self, name: str, directory: Path, load_config: dict | None = None, **fields) -> None:
        body = {"model_name": name, "cache_location": "custom", "cache_path": str(directory), **fields}
        if load_config:
            body["load_config"] = load_config
        self.api("POST", "", json=body, expect=201)

    def status(self, name: str) -> str:
        return self.api("GET", f"/{name}", expect=200).json()["compatibility_status"]

    def attempts(self, name: str) -> list[dict]:
        return self.api("GET", f"/{name}/attempts", expect=200).json()["items"]

    def ping(self, outcome: Outcome) -> None:
        """GET /api/models, as any user of the page would meanwhile; a failure is recorded, not raised."""
        outcome.gets += 1
        try:
            response = self.http.get(f"{self.url}/api/models", timeout=5)
            if response.status_code != 200:
                outcome.failed_gets.append(response.status_code)
        except requests.RequestException as error:
            outcome.failed_gets.append(type(error).__name__)


def run_case(client: Client, case: Case, tiny_llama: Path, workdir: Path, **fields) -> Outcome:
    """Register a copy of the tiny Llama as ``fault/<case>``, break it, load it with the case's timeout, do
    the case's action mid-load, and wait (a little past the limit) for the final status."""
    name = f"fault/{case.id}"
    directory = workdir / case.id
    shutil.copytree(tiny_llama, directory)
    client.register(name, directory, case.load_config, **fields)
    if case.breakage:
        case.breakage(directory)  # after registering: a directory without config.json is refused then
    began = time.monotonic()
    client.api("POST", f"/{name}/load", json={"timeout": case.timeout}, expect=202)
    kill = None
    if case.kill:
        kill = lambda latest: latest["stage"] == "loading" and (os.kill(latest["worker_pid"], case.kill) or True)  # noqa: E731
    return wait_final(client, name, began, case.timeout, kill)


def wait_final(client: Client, name: str, began: float, timeout: float, action=None, past: float = 30) -> Outcome:
    """Poll the latest attempt, the status and GET /api/models until the status is final (or ``past`` s
    after ``timeout`` + GRACE, so that a late ending is measured, not hidden). ``action(latest_attempt)``
    is called on each poll until it returns True (e.g. to kill the worker once it is loading)."""
    outcome = Outcome()
    deadline = began + timeout + GRACE + past
    while time.monotonic() < deadline:
        client.ping(outcome)
        latest = client.attempts(name)[0]
        outcome.worker_pid = latest.get("worker_pid") or outcome.worker_pid
        if action is not None and outcome.worker_pid and action(latest):
            action = None
        status = client.status(name)
        if latest["outcome"] != "running" and status != "testing":
            outcome.seconds = time.monotonic() - began
            outcome.status, outcome.attempt = status, latest
            break
        time.sleep(0.05)
    client.ping(outcome)
    outcome.attempts = client.attempts(name)
    outcome.worker_gone = outcome.worker_pid is None or wait_gone(outcome.worker_pid, 10)
    return outcome


def run_web_process_killed(client: Client, tiny_llama: Path, timeout: float = 10) -> tuple[Outcome, float | None]:
    """SIGKILL the web process (the gunicorn worker) that supervises a hanging load; the server's main
    process stays up and starts another. Returns the outcome (the final status: none is expected while
    the supervisor lives in the web process) and the seconds until the orphaned load worker ended."""
    name = "fault/web-process-killed"
    client.register(name, tiny_llama, {"fault_hang_seconds": 600})
    began = time.monotonic()
    client.api("POST", f"/{name}/load", json={"timeout": timeout}, expect=202)
    worker_pid = wait_for_stage(client, name, "loading")["worker_pid"]
    os.kill(parent_of(worker_pid), signal.SIGKILL)
    killed = time.monotonic()
    worker_ended = time.monotonic() - killed if wait_gone(worker_pid, 30) else None
    return wait_final(client, name, began, timeout, past=5), worker_ended


def run_loaded_worker_killed(client: Client, tiny_llama: Path, kill: signal.Signals = signal.SIGKILL) -> Outcome:
    """Load the tiny Llama (it works), then kill its worker from outside, as the kernel's OOM killer may do
    to a loaded model, and poll until the death is recorded: a failed attempt after the successful one.
    ``seconds``: from the kill to the final status (limit GRACE)."""
    name = "fault/loaded-worker-killed"
    client.register(name, tiny_llama)
    client.api("POST", f"/{name}/load", json={"timeout": LOAD_TIMEOUT}, expect=202)
    loaded = wait_final(client, name, time.monotonic(), LOAD_TIMEOUT)
    if loaded.status != "compatible":
        raise AssertionError(f"the load before the kill ended {loaded.status}: {loaded.attempt}")
    outcome = Outcome(worker_pid=loaded.attempt["worker_pid"])
    os.kill(outcome.worker_pid, kill)
    killed = time.monotonic()
    while time.monotonic() < killed + GRACE + 30:
        client.ping(outcome)
        latest = client.attempts(name)[0]
        if latest["id"] != loaded.attempt["id"]:
            outcome.seconds = time.monotonic() - killed
            outcome.status, outcome.attempt = client.status(name), latest
            break
        time.sleep(0.05)
    client.ping(outcome)
    outcome.attempts = client.attempts(name)
    outcome.worker_gone = wait_gone(outcome.worker_pid, 10)
    return outcome


def wait_for_stage(client: Client, name: str, stage: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = client.attempts(name)[0]
        if latest["stage"] == stage:
            return latest
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached the stage {stage!r}")


def install_test_plugins(target: Path) -> Path:
    """pip-install tests/plugin_packages (the ``faults`` plugin) into ``target``, as users install plugins;
    put ``target`` on a server's PYTHONPATH to give it the plugins."""
    source = target.parent / f"{target.name}-source"
    shutil.copytree(PLUGIN_PACKAGES, source)  # pip builds in place; keep the repository clean
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(source)], check=True, capture_output=True, timeout=300)
    return target


# ---- the whole server killed mid-load -----------------------------------------------------------------

def run_server_killed(home: Path, tiny_llama: Path, env: dict, *, whole_group: bool) -> tuple[Outcome, dict]:
    """Start ``modelhub serve``, begin a hanging load of a ``compatible`` model, SIGKILL the server (its
    whole process group, or only its main process, as ``kill -9 PID`` does), start it again on the same
    data directory and wait for the final status there. Returns the outcome and what happened to the
    processes of the killed server (``log``: the first server's log up to the kill, ``leftovers``: its
    processes still alive 15 s after the kill)."""
    from tests.support import LiveServer

    name = "fault/server-killed"
    first = LiveServer(home, env=env)
    first.start(timeout=60)
    outcome, facts = Outcome(), {}
    try:
        client = Client(first.url)
        client.register(name, tiny_llama, {"fault_hang_seconds": 600}, compatibility_status="compatible")
        began = time.monotonic()
        client.api("POST", f"/{name}/load", json={"timeout": LOAD_TIMEOUT}, expect=202)
        outcome.worker_pid = wait_for_stage(client, name, "loading")["worker_pid"]
        client.ping(outcome)
        facts["log"] = first.log  # before the restart, which writes its own log over it
        server_processes = process_tree(first.process.pid)
        if whole_group:
            os.killpg(first.process.pid, signal.SIGKILL)
        else:
            os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
        second = LiveServer(home, env=env)
        second.start(timeout=60)
        try:
            client = Client(second.url)
            while True:
                client.ping(outcome)
                latest, status = client.attempts(name)[0], client.status(name)
                if (latest["outcome"] != "running" and status != "testing") or time.monotonic() > began + 120:
                    break
                time.sleep(0.05)
            outcome.seconds = time.monotonic() - began
            outcome.status, outcome.attempt, outcome.attempts = status, latest, client.attempts(name)
            client.ping(outcome)
            deadline = time.monotonic() + 15
            while any(alive(p) for p in server_processes) and time.monotonic() < deadline:
                time.sleep(0.2)
            facts["leftovers"] = [p for p in server_processes if alive(p)]
            outcome.worker_gone = not alive(outcome.worker_pid)
        finally:
            second.stop()
    finally:
        first.stop()
        for pid in process_tree(first.process.pid) + [p for p in facts.get("leftovers", []) if alive(p)]:
            os.kill(pid, signal.SIGKILL)  # whatever the killed server left behind, so the run ends clean
    return outcome, facts


# ---- memory after unload ------------------------------------------------------------------------------

def memory_after_unload(server, tiny_llama: Path, name: str = "memory/llama") -> dict:
    """Against a freshly started server: warm it up (pages and API, no load), take the baseline RSS of its
    processes, load ``tiny_llama``, unload it, and take the RSS again once the worker has ended.
    Sizes in bytes."""
    client = Client(server.url)
    client.register(name, tiny_llama)
    for _ in range(5):  # warm-up: the page, the list, the model and its attempts
        client.http.get(f"{server.url}/", timeout=10).raise_for_status()
        client.api("GET", "", expect=200)
        client.api("GET", f"/{name}", expect=200)
        client.attempts(name)
    time.sleep(1)
    baseline = server_rss(server.process.pid)
    client.api("POST", f"/{name}/load", json={"timeout": LOAD_TIMEOUT}, expect=202)
    deadline = time.monotonic() + LOAD_TIMEOUT + GRACE
    while (status := client.status(name)) == "testing" and time.monotonic() < deadline:
        time.sleep(0.1)
    if status != "compatible":
        raise AssertionError(f"the load ended {status}: {client.attempts(name)[0]}")
    worker_pid = client.attempts(name)[0]["worker_pid"]
    loaded = {"server": server_rss(server.process.pid), "worker": rss_bytes(worker_pid)}
    client.api("POST", f"/{name}/unload", expect=200)
    gone = wait_gone(worker_pid, 15)
    time.sleep(1)
    return {"baseline": baseline, "loaded_server": loaded["server"], "loaded_worker": loaded["worker"],
            "after": server_rss(server.process.pid), "worker_pid": worker_pid, "worker_gone": gone,
            "status": client.status(name), "workers_left": load_workers(server.process.pid)}
