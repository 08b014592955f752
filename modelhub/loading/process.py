"""The operating-system side of one worker: start ``python -P -m modelhub.loading.worker`` in a directory
of its own, turn its stdout into messages, and end it (politely when it holds a model, by force otherwise).

``-P`` keeps the current directory off the worker's import path: started from a clone of the repository,
``python -m`` would otherwise import the source folder ``./modelhub`` (which has no ``plugins`` package:
setup.cfg maps ./plugins there) instead of the installed package. The worker's own directory, under the
data dir, is where libraries that write to the current directory (gptqmodel's ``logs/``) put their files,
rather than wherever ``modelhub serve`` was started.
"""

import json
import logging
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelhub.loading.job_kind import JobKind

log = logging.getLogger(__name__)
EOF_MARK = object()  # put on a worker's messages when its stdout closes


@dataclass
class Worker:
    """A worker process this web process started and watches."""

    model_name: str
    model_id: int
    run_id: int  # the run of its job: a load attempt, a measurement
    timeout: float
    directory: Path  # its working directory: worker_directory(data dir, model name)
    job: JobKind  # what it does, and what its success leaves (a loaded model, or nothing)
    process: subprocess.Popen | None = None
    state: str = "loading"  # loading -> loaded, failed or measured
    stage: str = "starting"
    started: float = field(default_factory=time.monotonic)
    loaded_at: float | None = None  # when it reported the model loaded
    last_beat: float = field(default_factory=time.monotonic)
    stopping: bool = False
    terminated: bool = False  # it reported a SIGTERM: someone stopped it, it did not crash
    messages: queue.Queue = field(default_factory=queue.Queue)

    def start(self, request: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "modelhub.loading.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=self.directory,
        )
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        threading.Thread(target=self._read, daemon=True, name=f"read:{self.model_name}").start()

    def _read(self) -> None:
        """Turn the worker's stdout lines into messages; EOF_MARK when it closes."""
        for line in self.process.stdout:
            try:
                self.messages.put(json.loads(line))
            except ValueError:
                log.warning("%s: unreadable worker output: %r", self.model_name, line[:200])
        self.messages.put(EOF_MARK)

    def end(self) -> None:
        """Stop the process: a loaded model is asked to unload (freeing GPU memory cleanly) first."""
        process = self.process
        if self.state == "loaded" and process.poll() is None:
            try:
                process.stdin.write("unload\n")
                process.stdin.flush()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def wait_for_exit(self, grace: float = 10) -> None:
        """A worker that reported its end exits by itself; one that does not is killed."""
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()


def describe_exit(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def worker_directory(data_dir: str | Path, model_name: str) -> Path:
    """``<data dir>/workers/<model>``: the working directory of the model's workers (one at a time per
    model and data dir, by its lease); ``org/name`` becomes ``org--name``, as in the hub cache. It is kept
    after a worker ends: the model's next worker may already run there (a lease is released before its
    process has exited), and what a library wrote there (logs) stays for the user to read."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", model_name.replace("/", "--")).strip(".") or "model"
    return Path(data_dir).resolve() / "workers" / safe
