"""Loading benchmark: a ~100M-parameter Llama loaded through modelhub against a bare transformers "floor".

Builds once (cached in ``--model-dir``) a Llama of about 100M parameters with random weights, saved with
``save_pretrained`` (safetensors) next to the tiny BPE tokenizer of ``tests/tiny_models.py``. Then, on a
real server (``modelhub serve`` through ``tests.support.LiveServer``, 127.0.0.1, a temporary
``MODELHUB_HOME``), it registers the model (``cache_location`` custom) and measures:

- the load time: from ``POST /api/models/{name}/load`` to the model's ``compatibility_status`` reading
  ``compatible`` (``GET /api/models/{name}`` every 20 ms), unloading between runs; against the floor, a
  fresh process of the same interpreter doing what the worker does with the attempt's ``final_kwargs``
  (import torch + transformers, ``AutoModelForCausalLM.from_pretrained``, ``AutoTokenizer.from_pretrained``,
  the finiteness check and 8 greedy tokens from the worker's prompt), timed from just before spawning it
  until it prints that it is done (its exit, which takes another ~0.7 s tearing torch down, is shown but
  not compared: modelhub's worker does not exit, it holds the model). Interpreter start and imports count
  on both sides. Runs alternate (modelhub first on even rounds, floor first on odd ones); medians compared.
- the p99 latency of ``GET /api/models`` (one sequential keep-alive client, back to back) while a load
  is running (at least 2 loads, and until 300 samples are in) and while idle: after each load, once the
  model is unloaded, as many requests as that load got, so both p99s come from as many samples.

From the repo root (the hub is unreachable, so offline):

    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py
    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py --model-dir /tmp/llama-100m --runs 5

Prints a markdown table and PASS/FAIL (exit status 0/1). Not a test; ``--help`` lists the knobs.
"""

import argparse
import contextlib
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.tiny_models, tests.support

from tests.support import LiveServer  # noqa: E402

HOST = "127.0.0.1"
NAME = "bench/llama-100m"
POLL = 0.02  # seconds between status polls
LLAMA = {"hidden_size": 768, "intermediate_size": 2560, "num_hidden_layers": 12, "num_attention_heads": 12,
         "num_key_value_heads": 12, "max_position_embeddings": 512}

# The floor: what the worker does, with nothing around it. argv: model directory, kwargs as JSON.
FLOOR = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
directory, kwargs = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
tokenizer = AutoTokenizer.from_pretrained(directory)
inputs = tokenizer("The capital of France is", return_tensors="pt").to(model.device)
with torch.no_grad():
    assert torch.isfinite(model(**inputs).logits).all()
    model.generate(**inputs, max_new_tokens=8, do_sample=False,
                   pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
print("loaded", flush=True)
"""


def build_model(directory: Path) -> int:
    """Build the model into ``directory`` unless it is already there; return its parameter count."""
    weights = directory / "model.safetensors"
    if not weights.exists():
        import torch
        from transformers import AutoModelForCausalLM, LlamaConfig

        from tests.tiny_models import VOCAB_SIZE, build_tokenizer

        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=VOCAB_SIZE, bos_token_id=1, eos_token_id=2, pad_token_id=3, **LLAMA)
        build_tokenizer(directory)
        AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    from safetensors import safe_open

    with safe_open(weights, "pt") as tensors:
        return sum(_count(tensors.get_slice(key).get_shape()) for key in tensors.keys())


def _count(shape) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


@contextlib.contextmanager
def running_server(workdir: Path):
    """``modelhub serve`` on loopback with its own data dir; yield it; always stop it and its workers."""
    env = {"MODELHUB_LOG_LEVEL": "warning", "HF_HUB_OFFLINE": "1", "MODELHUB_LOAD_TIMEOUT": "600"}
    server = LiveServer(workdir / "home", env=env)
    try:
        server.start(timeout=60)
        yield server
    finally:
        if server.process is not None:
            server.stop()
            with contextlib.suppress(ProcessLookupError):  # load workers left behind, if any
                os.killpg(server.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def connect(port: int):
    """A keep-alive connection for one phase (gunicorn closes connections idle for 5 s)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.connect()
        yield conn
    finally:
        conn.close()


def call(conn, method: str, path: str, body: dict | None = None, expect: int = 200):
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    response = conn.getresponse()
    payload = response.read()
    if response.status != expect:
        raise RuntimeError(f"{method} {path} answered {response.status}: {payload[:500]!r}")
    return json.loads(payload) if payload else None


def wait_compatible(conn, deadline: float, on_poll=None) -> None:
    """Poll until the model is compatible; ``on_poll`` (if given) replaces the sleep between polls."""
    while True:
        status = call(conn, "GET", f"/api/models/{NAME}")["compatibility_status"]
        if status == "compatible":
            return
        if status != "testing":
            attempt = call(conn, "GET", f"/api/models/{NAME}/attempts")["items"][0]
            raise RuntimeError(f"the load ended {status}: {json.dumps(attempt)[:3000]}")
        if time.monotonic() > deadline:
            raise RuntimeError("the load did not finish in time")
        on_poll() if on_poll else time.sleep(POLL)


def modelhub_load(port: int, timeout: float) -> float:
    """POST .../load -> compatible, in seconds; then unload (not timed)."""
    with connect(port) as conn:
        began = time.perf_counter()
        call(conn, "POST", f"/api/models/{NAME}/load", {}, expect=202)
        wait_compatible(conn, time.monotonic() + timeout)
        elapsed = time.perf_counter() - began
        unload(conn)
    return elapsed


def unload(conn) -> None:
    call(conn, "POST", f"/api/models/{NAME}/unload", {})


def floor_load(directory: Path, kwargs: dict, timeout: float, workdir: Path) -> tuple[float, float]:
    """The bare load in a fresh process: seconds from spawn to its "loaded" line, and to its exit."""
    with open(workdir / "floor.log", "w+") as log:
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", FLOOR, str(directory), json.dumps(kwargs)],
                                   stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            line = process.stdout.readline()  # blocks until the smoke test is done (or the process ends)
            loaded = time.perf_counter() - began
            process.wait(timeout=timeout)
            exited = time.perf_counter() - began
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
        if line.strip() != "loaded" or process.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"floor load failed ({process.returncode}):\n{log.read()[-3000:]}")
    return loaded, exited


def timed_get(conn) -> tuple[float, list]:
    """One GET /api/models: (seconds, its items)."""
    began = time.perf_counter()
    items = call(conn, "GET", "/api/models")["items"]
    return time.perf_counter() - began, items


def idle_latency(port: int, count: int) -> list[float]:
    with connect(port) as conn:
        return [timed_get(conn)[0] for _ in range(count)]


def get_latencies(port: int, args) -> tuple[list[float], list[float], int]:
    """(during-load seconds, idle seconds, loads): loads hammered with GETs until ``--requests`` samples
    (and at least ``--latency-loads`` loads), each followed, once unloaded, by as many idle GETs."""
    busy, idle, loads = [], [], 0
    while (len(busy) < args.requests or loads < args.latency_loads) and loads < args.max_loads:
        loads += 1
        with connect(port) as conn:
            samples = _while_loading(conn, args.timeout)
        busy += samples
        idle += idle_latency(port, len(samples))
    return busy, idle, loads


def _while_loading(conn, timeout: float) -> list[float]:
    """Start a load, time GET /api/models until it reports the load over, unload."""
    samples = []
    call(conn, "POST", f"/api/models/{NAME}/load", {}, expect=202)
    deadline = time.monotonic() + timeout
    while True:
        seconds, items = timed_get(conn)
        status = next(item["compatibility_status"] for item in items if item["model_name"] == NAME)
        if status != "testing":
            break  # this request saw the load over: not counted
        samples.append(seconds)
        if time.monotonic() > deadline:
            raise RuntimeError("the load did not finish in time")
    wait_compatible(conn, deadline)  # a failure raises here
    unload(conn)
    return samples


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def measure(port: int, directory: Path, workdir: Path, args) -> dict:
    """Warm up both sides, then the alternating load runs, then the GET latencies."""
    with connect(port) as conn:
        call(conn, "POST", "/api/models", {"model_name": NAME, "cache_location": "custom",
                                           "cache_path": str(directory)}, expect=201)
    modelhub_load(port, args.timeout)  # warm-up (page cache, .pyc files), not measured
    with connect(port) as conn:
        attempt = call(conn, "GET", f"/api/models/{NAME}/attempts")["items"][0]
    kwargs = attempt["final_kwargs"]
    floor_load(directory, kwargs, args.timeout, workdir)
    hub, floor, floor_exit = [], [], []
    for r in range(args.runs):
        for side in ("modelhub", "floor") if r % 2 == 0 else ("floor", "modelhub"):
            if side == "modelhub":
                hub.append(modelhub_load(port, args.timeout))
            else:
                loaded, exited = floor_load(directory, kwargs, args.timeout, workdir)
                floor.append(loaded)
                floor_exit.append(exited)
    busy, idle, loads = get_latencies(port, args)
    return {"kwargs": kwargs, "smoke": attempt["smoke_test"], "hub": hub, "floor": floor, "floor_exit": floor_exit,
            "idle": idle, "busy": busy, "busy_loads": loads}


def report(results: dict, params: int, args, elapsed: float) -> bool:
    """Print the table; True when both ratios meet their targets."""
    hub, floor = statistics.median(results["hub"]), statistics.median(results["floor"])
    idle, busy = p99(results["idle"]) * 1000, p99(results["busy"]) * 1000
    rows = [
        ("load: POST .../load -> compatible vs bare process, median s", f"{hub:.2f}", f"{floor:.2f}",
         hub / floor, args.target),
        ("`GET /api/models` p99 ms: during a load vs idle", f"{busy:.2f}", f"{idle:.2f}", busy / idle,
         args.latency_target),
    ]
    print(f"## Loading, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, loopback; Llama {params:,} parameters "
          f"(float32 safetensors); final kwargs {json.dumps(results['kwargs'])}; {args.runs} runs per side after "
          f"1 warm-up each; {len(results['idle'])} idle and {len(results['busy'])} during-load GETs "
          f"({results['busy_loads']} load(s)); took {elapsed:.0f} s.\n")
    print("runs (s): modelhub " + ", ".join(f"{s:.2f}" for s in results["hub"])
          + "; floor " + ", ".join(f"{s:.2f}" for s in results["floor"])
          + " (to its exit: " + ", ".join(f"{s:.2f}" for s in results["floor_exit"]) + ")"
          + f"; worker smoke test {results['smoke']['seconds']} s\n")
    print("| metric | modelhub | floor/idle | ratio | target | result |")
    print("|---|---:|---:|---:|---:|---|")
    passed = True
    for label, ours, theirs, ratio, target in rows:
        ok = ratio <= target
        passed &= ok
        print(f"| {label} | {ours} | {theirs} | {ratio:.2f} | <= {target} | {'PASS' if ok else 'FAIL'} |")
    print(f"\n{'PASS' if passed else 'FAIL'}")
    return passed


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="where the model is built/cached (default: a temp dir)")
    parser.add_argument("--runs", type=int, default=3, help="measured loads per side")
    parser.add_argument("--requests", type=int, default=300, help="fewest GET /api/models samples during loads")
    parser.add_argument("--latency-loads", type=int, default=2, help="fewest loads hammered with GETs")
    parser.add_argument("--max-loads", type=int, default=5, help="most loads hammered with GETs")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one load may take")
    parser.add_argument("--target", type=float, default=1.15, help="highest modelhub/floor load-time ratio")
    parser.add_argument("--latency-target", type=float, default=2.0, help="highest loading/idle p99 ratio")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-load-") as workdir:
        directory = (args.model_dir or Path(workdir) / "model").resolve()
        directory.mkdir(parents=True, exist_ok=True)
        params = build_model(directory)
        print(f"model: {directory} ({params:,} parameters)", file=sys.stderr)
        with running_server(Path(workdir)) as server:
            results = measure(server.port, directory, Path(workdir), args)
    return 0 if report(results, params, args, time.monotonic() - began) else 1


if __name__ == "__main__":
    sys.exit(main())
