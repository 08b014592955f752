"""Start-up benchmark: how long the ``modelhub`` command takes, as a whole process, against ``python -c pass``.

It times, in the same run and with the same interpreter, ``--repeat`` rounds (default 5, the order rotating
each round so that a busy moment does not fall on one measurement) of:

- ``python -c pass``, the floor: an interpreter that starts and stops,
- ``modelhub --version``,
- ``modelhub list`` on a registry at the newest schema (a first, unmeasured run creates it),
- ``modelhub serve`` until it answers its first ``GET /api/models`` (polled every 10 ms), then stopped,

and prints each median in seconds and as a ratio to the floor's median. The targets are the issue's
seconds on this machine (2 cores): ``--version`` < 0.3 s, ``list`` < 0.6 s, ``serve`` to its first answer
< 1 s. A second is not the same on another machine or under another load, so PASS/FAIL compares the
ratios, against those seconds divided by this machine's floor when idle (25 ms): ``--version`` < 12x,
``list`` < 24x, ``serve`` < 40x. From the repo root:

    .venv/bin/python bench/startup.py

Where the time goes: ``.venv/bin/python -X importtime -c "from modelhub.cli import main; main(['list'])"``.
Prints a markdown table and PASS/FAIL (exit status 0/1). Not a test; ``--help`` lists the knobs.
"""

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from common import print_verdicts  # bench/common.py (this script's directory is on sys.path)

MODELHUB = str(Path(sys.executable).with_name("modelhub"))  # the console script installed beside this Python
IDLE_FLOOR_S = 0.025  # `python -c pass` on this machine when idle: turns the seconds into ratios
TARGET_S = {"modelhub --version": 0.3, "modelhub list": 0.6, "modelhub serve, first answer": 1.0}


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_until_first_answer(timeout: float = 30) -> float:
    """Seconds from starting ``modelhub serve`` to its first 200 on ``GET /api/models``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/models"
    began = time.perf_counter()
    server = subprocess.Popen([MODELHUB, "serve", "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - began < timeout:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - began
            except OSError:  # not listening yet, or its worker still booting
                if server.poll() is not None:
                    raise RuntimeError(f"modelhub serve exited with status {server.returncode}") from None
                time.sleep(0.01)
        raise RuntimeError(f"modelhub serve did not answer within {timeout} s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure(rounds: int) -> dict[str, list[float]]:
    runs = {
        "python -c pass": lambda: timed([sys.executable, "-c", "pass"]),
        "modelhub --version": lambda: timed([MODELHUB, "--version"]),
        "modelhub list": lambda: timed([MODELHUB, "list"]),
        "modelhub serve, first answer": serve_until_first_answer,
    }
    labels = list(runs)
    samples = {label: [] for label in labels}
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            samples[label].append(runs[label]())
    return samples


def report(samples: dict[str, list[float]], rounds: int) -> bool:
    medians = {label: statistics.median(seconds) for label, seconds in samples.items()}
    floor = medians["python -c pass"]
    print(f"## Start-up, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the "
          f"end; median of {rounds} runs each, SQLite.\n")
    print("| command | median s | x python -c pass | target s | target x |")
    print("|---|---:|---:|---:|---:|")
    print(f"| python -c pass | {floor:.3f} | 1.0 | | |")
    checks = []
    for label, target in TARGET_S.items():
        ratio, target_ratio = medians[label] / floor, target / IDLE_FLOOR_S
        print(f"| {label} | {medians[label]:.3f} | {ratio:.1f} | {target} | {target_ratio:.0f} |")
        checks.append((f"{label}: {ratio:.1f}x python -c pass (< {target_ratio:.0f}x; {medians[label]:.3f} s)",
                       ratio < target_ratio))
    print()
    return print_verdicts(checks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (the median is reported)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-") as workdir:
        os.environ["MODELHUB_HOME"] = workdir  # never touch the user's own registry
        for name in ("MODELHUB_DATABASE_URL", "MODELHUB_SCAN_ON_START", "MODELHUB_API_TOKEN"):
            os.environ.pop(name, None)
        subprocess.run([MODELHUB, "list"], check=True, stdout=subprocess.DEVNULL)  # creates the database
        samples = measure(args.repeat)
    return 0 if report(samples, args.repeat) else 1


if __name__ == "__main__":
    sys.exit(main())
