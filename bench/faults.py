"""The load fault matrix against a real server: every way a load can go wrong, what a user sees of it.

Builds the tiny models of ``tests/tiny_models.py``, pip-installs the test plugins (``faults``: hangs,
crashes, out-of-memory) into a temporary directory and runs ``modelhub serve`` (``tests.support.LiveServer``,
127.0.0.1, temporary ``MODELHUB_HOME``, SQLite) with them. For each case of
``tests/loading/fault_cases.py`` it registers a copy of the tiny Llama, breaks it, ``POST .../load`` with
the case's timeout, and polls the attempt, the status and ``GET /api/models`` (every 50 ms) until the
status is final; the whole server killed mid-load (SIGKILL to its process group, then to its main process
only) is run on servers of its own and restarted on the same database. Then, on a fresh server: the RSS of
the server's processes (``/proc/PID/status`` VmRSS, main process + gunicorn workers) after a warm-up, with
the tiny Llama loaded, and after unloading it.

From the repo root (offline: the hub is unreachable):

    HF_HUB_OFFLINE=1 .venv/bin/python bench/faults.py

Prints a markdown table and PASS/FAIL (exit status 0/1): PASS when every case ends in a final status
with its error type and readable cause within its timeout + 5 s, the server answered every GET, no attempt
is left running, no worker outlives its load, and the memory after unload is within 100 MB of the baseline.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.*

from bench.common import stdout_to_stderr  # noqa: E402
from tests.loading import fault_cases as fc  # noqa: E402
from tests.support import LiveServer  # noqa: E402

MB = 1024 * 1024
MEMORY_LIMIT = 100 * MB


def server_env(plugins: Path) -> dict:
    return {"HF_HUB_OFFLINE": "1", "MODELHUB_LOG_LEVEL": "warning",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))}


def row(case_id: str, what: str, expected_type: str, cause: tuple[str, ...], outcome: fc.Outcome, limit: float,
        final: str | None = None) -> dict:
    attempt = outcome.attempt or {}
    text = (attempt.get("explanation") or "") + " " + (attempt.get("error_message") or "")
    readable = all(words in text for words in cause)
    passed = (outcome.seconds is not None and outcome.seconds <= limit + fc.GRACE and outcome.answered
              and attempt.get("error_type") == expected_type and readable and outcome.status not in (None, "testing")
              and (final is None or outcome.status == final)
              and all(a["outcome"] != "running" for a in outcome.attempts) and outcome.worker_gone)
    return {"case": case_id, "what": what, "status": outcome.status, "outcome": attempt.get("outcome"),
            "error_type": attempt.get("error_type"), "cause": attempt.get("explanation") or attempt.get("error_message"),
            "seconds": outcome.seconds, "limit": limit + fc.GRACE, "answered": outcome.answered, "gets": outcome.gets,
            "worker_gone": outcome.worker_gone, "passed": passed}


def run(workdir: Path) -> tuple[list[dict], dict]:
    from tests.tiny_models import build_all

    with stdout_to_stderr():
        models = build_all(workdir / "models")
    plugins = fc.install_test_plugins(workdir / "plugins")
    env = server_env(plugins)
    rows = []
    server = LiveServer(workdir / "matrix-home", env=env)
    server.start(timeout=60)
    try:
        client = fc.Client(server.url)
        for case in fc.CASES:
            outcome = fc.run_case(client, case, models["llama"], workdir / "copies")
            rows.append(row(case.id, case.what, case.error_type, case.cause, outcome, case.timeout))
            print(f"{case.id}: {rows[-1]['status']} {rows[-1]['error_type']} in {outcome.seconds} s", file=sys.stderr)
        # Not a failed load: the model loaded, then its worker was killed; seconds count from the kill.
        outcome = fc.run_loaded_worker_killed(client, models["llama"])
        rows.append(row("loaded-worker-killed", "loaded model's worker killed with SIGKILL (after a success)",
                        "WorkerDiedWhileLoaded", ("killed by SIGKILL",), outcome, 0, final="degraded"))
        print(f"loaded-worker-killed: {rows[-1]['status']} in {outcome.seconds} s", file=sys.stderr)
    finally:
        server.stop()
    for whole_group in (True, False):
        label = "server-killed" if whole_group else "server-main-killed"
        what = ("whole server killed (SIGKILL to its process group) mid-load, restarted" if whole_group
                else "server's main process killed (kill -9 PID) mid-load, restarted")
        outcome, facts = fc.run_server_killed(workdir / f"{label}-home", models["llama"], env, whole_group=whole_group)
        rows.append(row(label, what, "Interrupted", ("stopped",), outcome, fc.LOAD_TIMEOUT, final="compatible"))
        rows[-1]["passed"] &= not facts["leftovers"]
        print(f"{label}: {rows[-1]['status']} in {outcome.seconds} s; leftovers {facts['leftovers']}", file=sys.stderr)
    extra = LiveServer(workdir / "web-home", env=env)  # beyond issue 7's list
    extra.start(timeout=60)
    try:
        outcome, worker_ended = fc.run_web_process_killed(fc.Client(extra.url), models["llama"])
    finally:
        extra.stop()
    rows.append(row("web-process-killed", "web process (gunicorn worker) killed mid-load; main process up",
                    "Interrupted", ("stopped",), outcome, 10, final="unknown"))
    rows[-1]["passed"] &= worker_ended is not None
    print(f"web-process-killed: load worker ended {worker_ended} s after the kill", file=sys.stderr)
    server = LiveServer(workdir / "memory-home", env=env)
    server.start(timeout=60)
    try:
        memory = fc.memory_after_unload(server, models["llama"])
    finally:
        server.stop()
    return rows, memory


def report(rows: list[dict], memory: dict, elapsed: float) -> bool:
    print(f"## Load fault matrix, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, `modelhub serve` on loopback (gunicorn, "
          f"1 worker), SQLite, the tiny Llama of tests/tiny_models.py; took {elapsed:.0f} s.\n")
    print("| case | final status | outcome | error_type | s to final status | limit (timeout + 5 s) "
          "| server answered | worker gone | result |")
    print("|---|---|---|---|---:|---:|---|---|---|")
    for r in rows:
        seconds = "never" if r["seconds"] is None else f"{r['seconds']:.1f}"
        print(f"| {r['what']} | {r['status']} | {r['outcome']} | {r['error_type']} | {seconds} | {r['limit']:g} | "
              f"{'yes' if r['answered'] else 'NO'} ({r['gets']} GETs) | {'yes' if r['worker_gone'] else 'NO'} "
              f"| {'info' if r.get('info') else 'PASS' if r['passed'] else 'FAIL'} |")
    print("\nCauses as recorded (the attempt's explanation):\n")
    for r in rows:
        print(f"- {r['case']}: {r['cause']}")
    growth = memory["after"] - memory["baseline"]
    memory_ok = growth <= MEMORY_LIMIT and memory["worker_gone"] and not memory["workers_left"]
    print("\n| server RSS (main + gunicorn workers) | MB |\n|---|---:|")
    print(f"| baseline, after warm-up | {memory['baseline'] / MB:.1f} |")
    print(f"| tiny Llama loaded (server) | {memory['loaded_server'] / MB:.1f} |")
    print(f"| tiny Llama loaded (its worker process) | {memory['loaded_worker'] / MB:.1f} |")
    print(f"| after unload | {memory['after'] / MB:.1f} |")
    print(f"| after unload - baseline (limit 100) | {growth / MB:+.1f} |")
    print(f"\nworker process gone after unload: {'yes' if memory['worker_gone'] else 'NO'}; "
          f"memory {'PASS' if memory_ok else 'FAIL'}")
    passed = memory_ok and all(r["passed"] for r in rows if not r.get("info"))
    print(f"\n{'PASS' if passed else 'FAIL'}")
    return passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-faults-") as workdir:
        rows, memory = run(Path(workdir))
    return 0 if report(rows, memory, time.monotonic() - began) else 1


if __name__ == "__main__":
    sys.exit(main())
