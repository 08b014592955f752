"""Measuring benchmark: a modelhub measurement of the ~100M-parameter Llama against the bare work it wraps.

Uses ``bench/load.py``'s model (``build_model``, cached in ``--model-dir``) and server (``modelhub serve``
via ``tests.support.LiveServer``, 127.0.0.1, temporary ``MODELHUB_HOME``); registers the model
(``cache_location`` custom) and measures:

- overhead: ``POST /api/models/{name}/benchmark`` until the measurement's ``outcome`` is ``success``
  (worker start, imports, plugin host, load, smoke test, the measurements and the bookkeeping all
  count; ``GET .../measurements`` every ``--poll`` s, 0.5 by default: polling every 50 ms took enough
  CPU from the one-thread worker on 2 cores to cut its reported tokens/s by ~10%) against a bare
  process of the same interpreter that imports torch and transformers, sets the worker's torch thread
  count, ``from_pretrained``s with the measurement's ``final_kwargs`` and runs
  ``modelhub.measuring.metrics.measure_all`` with the same settings, timed from just before the spawn
  until it prints its results. Reduced settings (``REDUCED``: batch 1 only, one TTFT length, perplexity
  on a slice of the bundled text) so that the runs fit.
- decode rate: modelhub's reported ``batch1_tokens_per_sec`` against a bare decode loop run by the same
  bare process after ``measure_all`` (same 32-token prompt, same ``new_tokens``, greedy, KV cache, same
  thread count; prefill untimed, then ``new_tokens - 1`` one-token forwards timed; median of 3).
  Target: within 5%. The bare ``measure_all``'s own rate is shown for context.
- a full measurement with the default settings, once, through modelhub (``--no-full`` skips it).

Runs alternate (modelhub first on even rounds, bare first on odd ones) after one warm-up each; each side
waits for the other's process to exit; medians are compared. From the repo root (offline):

    HF_HUB_OFFLINE=1 .venv/bin/python bench/measure.py --model-dir /tmp/llama-100m

Prints a markdown table and PASS/FAIL (exit status 0/1). Not a test; ``--help`` lists the knobs.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# bench/load.py (the script's folder is on sys.path); importing it also puts the repo root there
from load import NAME, ROOT, call, connect, run_on_model

from modelhub.measuring import text as bundled  # noqa: E402

REDUCED = {
    "time_to_first_token": {"prompt_lengths": [16], "repeats": 3, "warmup": 1},
    "throughput": {"new_tokens": 32, "batch_sizes": [1], "repeats": 3, "warmup": 1},
    "perplexity": {"text": bundled.TEXT[:1000], "max_length": 256, "stride": 256},
}

# The bare side. argv: model directory, kwargs JSON, settings JSON, torch threads, loop repeats.
BARE = """
import json, statistics, sys, time
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from modelhub.measuring.metrics import measure_all, prompt_inputs, THROUGHPUT_PROMPT_TOKENS
directory, kwargs, settings = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]))
model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
tokenizer = AutoTokenizer.from_pretrained(directory)
results = measure_all(model, tokenizer, settings)
print(json.dumps(results), flush=True)

new_tokens = results["settings"]["throughput"]["new_tokens"]
inputs = prompt_inputs(model, tokenizer, THROUGHPUT_PROMPT_TOKENS, batch_size=1)

def decode_seconds():
    with torch.inference_mode():
        out = model(**inputs, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        mask = inputs["attention_mask"]
        started = time.perf_counter()
        for _ in range(new_tokens - 1):
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            out = model(input_ids=token, attention_mask=mask, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        return time.perf_counter() - started

decode_seconds()  # warm-up
seconds = statistics.median(decode_seconds() for _ in range(int(sys.argv[5])))
print(json.dumps({"loop_tokens_per_sec": (new_tokens - 1) / seconds, "loop_seconds": seconds}), flush=True)
"""


def latest(conn) -> dict:
    return call(conn, "GET", f"/api/models/{NAME}/measurements")[0]


def wait_gone(pid: int | None, timeout: float = 30, poll: float = 0.05) -> None:
    """Until the worker has exited (gone or a zombie), so that it does not run into the next timing."""
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(poll)


def modelhub_measure(port: int, settings: dict, timeout: float, poll: float) -> tuple[float, dict]:
    """POST .../benchmark -> outcome success: (seconds, the measurement)."""
    with connect(port) as conn:
        began = time.perf_counter()
        opened = call(conn, "POST", f"/api/models/{NAME}/benchmark", {"settings": settings}, expect=202)
        deadline = time.monotonic() + timeout
        while True:
            measurement = latest(conn)
            if measurement["id"] == opened["id"] and measurement["outcome"] != "running":
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the measurement did not finish in time")
            time.sleep(poll)
        elapsed = time.perf_counter() - began
    if measurement["outcome"] != "success":
        raise RuntimeError(f"the measurement ended {measurement['outcome']}: {json.dumps(measurement)[:3000]}")
    wait_gone(measurement.get("worker_pid"))
    return elapsed, measurement


def bare_measure(directory: Path, kwargs: dict, settings: dict, threads: int, args, workdir: Path):
    """The bare process: (seconds from spawn to its measure_all results, those results, its decode loop)."""
    with open(workdir / "bare.log", "w+") as log:
        began = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", BARE, str(directory), json.dumps(kwargs), json.dumps(settings), str(threads),
             str(args.loop_repeats)], stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
        try:
            first = process.stdout.readline()
            elapsed = time.perf_counter() - began
            second = process.stdout.readline()
            process.wait(timeout=args.timeout)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
        if process.returncode != 0 or not second:
            log.seek(0)
            raise RuntimeError(f"the bare process failed ({process.returncode}):\n{log.read()[-3000:]}")
    return elapsed, json.loads(first), json.loads(second)


def measure(port: int, directory: Path, workdir: Path, args) -> dict:
    with connect(port) as conn:
        call(conn, "POST", "/api/models", {"model_name": NAME, "cache_location": "custom",
                                           "cache_path": str(directory)}, expect=201)
    _, warm = modelhub_measure(port, REDUCED, args.timeout, args.poll)  # warm-up, not counted; gives kwargs and threads
    kwargs, threads = warm["final_kwargs"], warm["results"]["environment"]["torch_threads"]
    bare_measure(directory, kwargs, REDUCED, threads, args, workdir)  # warm-up
    out = {"kwargs": kwargs, "threads": threads, "hub": [], "hub_inner": [], "hub_rate": [], "bare": [],
           "bare_inner": [], "bare_rate": [], "loop_rate": []}
    for r in range(args.runs):
        for side in ("modelhub", "bare") if r % 2 == 0 else ("bare", "modelhub"):
            if side == "modelhub":
                seconds, measurement = modelhub_measure(port, REDUCED, args.timeout, args.poll)
                results = measurement["results"]
                out["hub"].append(seconds)
                out["hub_inner"].append(results["seconds"])
                out["hub_rate"].append(results["throughput"]["batch1_tokens_per_sec"])
            else:
                seconds, results, loop = bare_measure(directory, kwargs, REDUCED, threads, args, workdir)
                out["bare"].append(seconds)
                out["bare_inner"].append(results["seconds"])
                out["bare_rate"].append(results["throughput"]["batch1_tokens_per_sec"])
                out["loop_rate"].append(loop["loop_tokens_per_sec"])
            print(f"round {r} {side}: {seconds:.2f} s", file=sys.stderr)
    if args.full:
        seconds, measurement = modelhub_measure(port, {}, args.timeout, args.poll)
        out["full"] = {"wall": seconds, "results": measurement["results"]}
    return out


def report(res: dict, params: int, args, elapsed: float) -> bool:
    med = {key: statistics.median(res[key]) for key in ("hub", "hub_inner", "hub_rate", "bare", "bare_inner",
                                                        "bare_rate", "loop_rate")}
    rate_ratio = med["hub_rate"] / med["loop_rate"]
    passed = abs(rate_ratio - 1) <= args.rate_tolerance
    print(f"## Measuring, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, loadavg {os.getloadavg()[0]:.2f} at the end, "
          f"loopback; Llama {params:,} parameters (float32); final kwargs {json.dumps(res['kwargs'])}; torch threads "
          f"{res['threads']} on both sides; reduced settings for the compared runs; {args.runs} runs per side after "
          f"1 warm-up each; polled every {args.poll} s; took {elapsed:.0f} s.\n")
    runs = lambda key, fmt="{:.2f}": ", ".join(fmt.format(v) for v in res[key])  # noqa: E731
    print(f"runs: modelhub s {runs('hub')} (measure_all {runs('hub_inner')}), tokens/s {runs('hub_rate', '{:.2f}')}; "
          f"bare s {runs('bare')} (measure_all {runs('bare_inner')}), tokens/s {runs('bare_rate')}, "
          f"decode loop tokens/s {runs('loop_rate')}\n")
    print("| metric | modelhub | bare | ratio | target | result |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| measurement wall s (reduced settings): `POST .../benchmark` -> `success` vs bare process | "
          f"{med['hub']:.2f} | {med['bare']:.2f} | {med['hub'] / med['bare']:.2f} | - | info |")
    hub_over, bare_over = med["hub"] - med["hub_inner"], med["bare"] - med["bare_inner"]
    print(f"| overhead s (wall - measure_all's own `seconds`) | {hub_over:.2f} | {bare_over:.2f} | "
          f"{hub_over / bare_over:.2f} | - | info |")
    print(f"| measure_all `seconds` inside | {med['hub_inner']:.2f} | {med['bare_inner']:.2f} | "
          f"{med['hub_inner'] / med['bare_inner']:.2f} | - | info |")
    print(f"| batch-1 tokens/s: modelhub reported vs bare decode loop | {med['hub_rate']:.2f} | {med['loop_rate']:.2f} "
          f"| {rate_ratio:.3f} | within {args.rate_tolerance:.0%} | {'PASS' if passed else 'FAIL'} |")
    print(f"| batch-1 tokens/s: modelhub reported vs bare measure_all | {med['hub_rate']:.2f} | {med['bare_rate']:.2f} "
          f"| {med['hub_rate'] / med['bare_rate']:.3f} | - | info |")
    if "full" in res:
        full = res["full"]["results"]
        part = {name: full[name] for name in ("time_to_first_token", "throughput", "perplexity")}
        print(f"| full measurement, default settings, wall s (measure_all {full['seconds']:.1f} s, load "
              f"{full['load_seconds']:.1f} s) | {res['full']['wall']:.1f} | - | - | - | info |")
        print(f"\nfull run: TTFT {part['time_to_first_token']['avg_latency_ms']:.1f} ms "
              f"{json.dumps(part['time_to_first_token']['per_length_ms'])}; tokens/s batch 1 "
              f"{part['throughput']['batch1_tokens_per_sec']}, best {part['throughput']['best_tokens_per_sec']} at "
              f"batch {part['throughput']['best_batch_size']}; perplexity {part['perplexity']['perplexity']:.1f} over "
              f"{part['perplexity']['tokens']} tokens; peak RSS "
              f"{full['peak_memory']['host_peak_rss_bytes'] / 2**20:.0f} MiB")
    print(f"\n{'PASS' if passed else 'FAIL'}")
    return passed


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="where the model is built/cached (default: a temp dir)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per side")
    parser.add_argument("--loop-repeats", type=int, default=3, help="timed bare decode loops per bare run")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between measurement polls")
    parser.add_argument("--no-full", dest="full", action="store_false", help="skip the default-settings run")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one measurement may take")
    parser.add_argument("--rate-tolerance", type=float, default=0.05, help="largest |tokens/s ratio - 1|")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    return run_on_model(parse_args(argv), "measure", measure, report)


if __name__ == "__main__":
    sys.exit(main())
