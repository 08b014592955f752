"""The operating-system side of one worker: start ``python -m modelhub.loading.worker``, turn its
stdout into messages, and end it (politely when it holds a model, by force otherwise)."""

import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
EOF_MARK = object()  # put on a worker's messages when its stdout closes


@dataclass
class Worker:
    """A worker process this web process started and watches."""

    model_name: str
    model_id: int
    run_id: int  # the load attempt, or the measurement for a "measure" job
    timeout: float
    job: str = "load"  # "load" keeps the model loaded; "measure" loads, measures and ends
    process: subprocess.Popen | None = None
    state: str = "loading"  # loading -> loaded, failed or measured
    stage: str = "starting"
    started: float = field(default_factory=time.monotonic)
    last_beat: float = field(default_factory=time.monotonic)
    stopping: bool = False
    messages: queue.Queue = field(default_factory=queue.Queue)

    def start(self, request: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelhub.loading.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
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
