"""Loading benchmark: a ~100M-parameter Llama loaded through modelhub against a bare transformers "floor".

Builds once (cached in ``--model-dir``) a Llama of 100.6M parameters (hidden 768, MLP 2560, 12 layers and
heads, random weights, safetensors) with the 1000-token BPE tokenizer of ``tests/tiny_models.py``. On a
real server (``modelhub serve`` via ``tests.support.LiveServer``, 127.0.0.1, temporary ``MODELHUB_HOME``)
it registers the model (``cache_location`` custom) and measures:

- load time: ``POST /api/models/{name}/load`` until ``compatibility_status`` reads ``compatible``
  (``GET /api/models/{name}`` every 20 ms; unloaded after each run), against the floor: a fresh process of
  the same interpreter doing the worker's work with the attempt's ``final_kwargs`` (import torch and
  transformers, ``AutoModelForCausalLM`` + ``AutoTokenizer.from_pretrained``, the finiteness check, 8
  greedy tokens from the worker's prompt), timed from just before the spawn until it prints that it is
  done. Interpreter start and imports count on both sides; the floor's exit (~0.7 s tearing torch down)
  is shown but not compared, since modelhub's worker stays up holding the model. Runs alternate
  (modelhub first on even rounds, floor first on odd ones); medians are compared.
- ``GET /api/models`` p99 (one keep-alive client, back to back) during loads (at least 2, until 300
  samples) and idle (after each load, once unloaded, as many requests as that load got). For context, no
  target: the p99 during a floor load, i.e. what any load on the same CPUs costs the server.

From the repo root (the hub is unreachable, so offline):

    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py
    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py --model-dir /tmp/llama-100m --runs 5

Prints a markdown table and PASS/FAIL (exit status 0/1). Not a test; ``--help`` lists the knobs.
"""

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import select
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
        return sum(math.prod(tensors.get_slice(key).get_shape()) for key in tensors.keys())


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


def wait_compatible(conn, deadline: float) -> None:
    """Poll until the model is compatible; raise, with the attempt, if the load ended otherwise."""
    while True:
        status = call(conn, "GET", f"/api/models/{NAME}")["compatibility_status"]
        if status == "compatible":
            return
        if status != "testing":
            attempt = call(conn, "GET", f"/api/models/{NAME}/attempts")["items"][0]
            raise RuntimeError(f"the load ended {status}: {json.dumps(attempt)[:3000]}")
        if time.monotonic() > deadline:
            raise RuntimeError("the load did not finish in time")
        time.sleep(POLL)


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


@contextlib.contextmanager
def floor_process(directory: Path, kwargs: dict, timeout: float, workdir: Path):
    """The bare load in a fresh process of this interpreter (prints "loaded" when done); always reaped."""
    with open(workdir / "floor.log", "w+") as log:
        process = subprocess.Popen([sys.executable, "-c", FLOOR, str(directory), json.dumps(kwargs)],
                                   stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            yield process
            process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
        if process.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"floor load failed ({process.returncode}):\n{log.read()[-3000:]}")


def floor_load(directory: Path, kwargs: dict, timeout: float, workdir: Path) -> tuple[float, float]:
    """Seconds from spawning the floor to its "loaded" line, and to its exit."""
    began = time.perf_counter()
    with floor_process(directory, kwargs, timeout, workdir) as process:
        process.stdout.readline()  # blocks until the smoke test is done (or the process ends)
        loaded = time.perf_counter() - began
    return loaded, time.perf_counter() - began


def timed_get(conn) -> tuple[float, list]:
    """One GET /api/models: (seconds, its items)."""
    began = time.perf_counter()
    items = call(conn, "GET", "/api/models")["items"]
    return time.perf_counter() - began, items


def hammer(conn, done, timeout: float) -> list[float]:
    """GET /api/models back to back until ``done(items)``; the seconds of those that ran before."""
    samples, deadline = [], time.monotonic() + timeout
    while True:
        seconds, items = timed_get(conn)
        if done(items):
            return samples  # this request saw the load over: not counted
        samples.append(seconds)
        if time.monotonic() > deadline:
            raise RuntimeError("the load did not finish in time")


def get_latencies(port: int, directory: Path, kwargs: dict, workdir: Path, args) -> dict:
    """GETs during modelhub loads (until ``--requests`` samples, at least ``--latency-loads`` loads), each
    followed, once unloaded, by as many idle GETs, then by GETs during a floor load."""
    busy, idle, floor_busy, loads = [], [], [], 0
    while (len(busy) < args.requests or loads < args.latency_loads) and loads < args.max_loads:
        loads += 1
        with connect(port) as conn:
            call(conn, "POST", f"/api/models/{NAME}/load", {}, expect=202)
            samples = hammer(conn, lambda items: items[0]["compatibility_status"] != "testing", args.timeout)
            wait_compatible(conn, time.monotonic() + args.timeout)  # a failed load raises here
            unload(conn)
            busy += samples
            idle += [timed_get(conn)[0] for _ in samples]
            with floor_process(directory, kwargs, args.timeout, workdir) as process:
                ready = lambda items: bool(select.select([process.stdout], [], [], 0)[0])  # noqa: E731
                floor_busy += hammer(conn, ready, args.timeout)
    return {"busy": busy, "idle": idle, "floor_busy": floor_busy, "loads": loads}


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
    latencies = get_latencies(port, directory, kwargs, workdir, args)
    return {"kwargs": kwargs, "smoke": attempt["smoke_test"], "hub": hub, "floor": floor, "floor_exit": floor_exit,
            **latencies}


def report(results: dict, params: int, args, elapsed: float) -> bool:
    """Print the table; True when both targeted ratios are met (the third row is context)."""
    hub, floor = statistics.median(results["hub"]), statistics.median(results["floor"])
    idle, busy, floor_busy = (p99(results[key]) * 1000 for key in ("idle", "busy", "floor_busy"))
    rows = [
        ("load time, median s: `POST .../load` -> `compatible` vs bare process", hub, floor, args.target),
        ("`GET /api/models` p99 ms: during a modelhub load vs idle", busy, idle, args.latency_target),
        ("`GET /api/models` p99 ms: during a modelhub load vs during a bare-process load", busy, floor_busy, None),
    ]
    print(f"## Loading, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, loopback; Llama {params:,} parameters "
          f"(float32 safetensors); final kwargs {json.dumps(results['kwargs'])}; {args.runs} runs per side after "
          f"1 warm-up each; GETs: {len(results['busy'])} during {results['loads']} modelhub load(s), as many idle, "
          f"{len(results['floor_busy'])} during as many bare loads; took {elapsed:.0f} s.\n")
    print("runs (s): modelhub " + ", ".join(f"{s:.2f}" for s in results["hub"])
          + "; floor " + ", ".join(f"{s:.2f}" for s in results["floor"])
          + " (to its exit: " + ", ".join(f"{s:.2f}" for s in results["floor_exit"]) + ")"
          + f"; warm-up attempt smoke test {results['smoke']['seconds']} s\n")
    print("| metric | modelhub | floor/idle | ratio | target | result |")
    print("|---|---:|---:|---:|---:|---|")
    passed = True
    for label, ours, theirs, target in rows:
        ratio = ours / theirs
        verdict = "info" if target is None else "PASS" if ratio <= target else "FAIL"
        passed &= verdict != "FAIL"
        print(f"| {label} | {ours:.2f} | {theirs:.2f} | {ratio:.2f} | {'-' if target is None else f'<= {target}'} "
              f"| {verdict} |")
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


def run_on_model(args, name: str, measure, report) -> int:
    """Build (or reuse) the ~100M model, serve modelhub, ``measure(port, model_dir, workdir, args)``,
    then ``report(results, params, args, seconds)``; exit status 0 when the report passes."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"modelhub-bench-{name}-") as workdir:
        directory = (args.model_dir or Path(workdir) / "model").resolve()
        directory.mkdir(parents=True, exist_ok=True)
        params = build_model(directory)
        print(f"model: {directory} ({params:,} parameters)", file=sys.stderr)
        with running_server(Path(workdir)) as server:
            results = measure(server.port, directory, Path(workdir), args)
    return 0 if report(results, params, args, time.monotonic() - began) else 1


def main(argv=None) -> int:
    return run_on_model(parse_args(argv), "load", measure, report)


if __name__ == "__main__":
    sys.exit(main())
