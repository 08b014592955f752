"""The server side of loading: one worker process per loaded model, watched by a thread.

The supervisor starts ``python -m modelhub.loading.worker``, forwards its progress into the attempt
record, enforces the timeout, and turns every ending (success, failure, timeout, a worker killed by a
signal, a cancel) into a finished attempt and a compatibility status. No database transaction stays
open while a worker runs: each record is its own short transaction.
"""

import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from modelhub import registry
from modelhub.extensions import db
from modelhub.loading import attempts
from modelhub.measuring import records as measurements
from modelhub.plugin_manager import PluginHost

log = logging.getLogger(__name__)
EOF_MARK = object()


class LoadConflict(RuntimeError):
    """A load that cannot start now (already loading, or incompatible without force): HTTP 409."""


class NotLoaded(RuntimeError):
    """Unload of a model that is neither loaded nor loading: HTTP 409."""


@dataclass
class Worker:
    model_name: str
    attempt_id: int  # the load attempt, or the measurement for a "measure" job
    timeout: float
    job: str = "load"  # "load" keeps the model loaded; "measure" loads, measures and ends
    process: subprocess.Popen | None = None
    state: str = "loading"  # loading -> loaded or failed; removed from the supervisor when it ends
    stage: str = "starting"
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False
    messages: queue.Queue = field(default_factory=queue.Queue)


class Supervisor:
    def __init__(self, app: Flask, plugins: PluginHost):
        self.app = app
        self.plugins = plugins
        self.max_loaded = app.config["MODELHUB_MAX_LOADED"]
        self.default_timeout = app.config["MODELHUB_LOAD_TIMEOUT"]
        self.lock = threading.RLock()
        self.workers: dict[str, Worker] = {}

    # ---- what the API asks ----------------------------------------------------------------------

    def state(self, model_name: str) -> dict:
        worker = self.workers.get(model_name)
        if worker is None:
            return {"state": "idle"}
        return {"state": worker.state, "job": worker.job, "stage": worker.stage, "attempt_id": worker.attempt_id,
                "pid": worker.process.pid if worker.process else None,
                "seconds": round(time.monotonic() - worker.started, 1)}

    def load(self, model_name: str, *, force: bool = False, timeout: float | None = None):
        """Start loading; returns the opened attempt. Raises LoadConflict (409) when it cannot start."""
        return self._start(model_name, "load", force=force, timeout=timeout)

    def measure(self, model_name: str, *, settings: dict | None = None, force: bool = False,
                timeout: float | None = None):
        """Load the model in a worker and measure it there; returns the opened measurement."""
        return self._start(model_name, "measure", force=force, timeout=timeout, settings=settings or {})

    def _start(self, model_name: str, job: str, *, force: bool, timeout: float | None, settings: dict | None = None):
        with self.lock:
            model = registry.get_model(model_name)
            current = self.workers.get(model_name)
            if current is not None and current.state == "loading":
                raise LoadConflict(f"{model_name!r} is already loading (attempt {current.attempt_id}).")
            if model.compatibility_status == "incompatible" and not force:
                raise LoadConflict(
                    f"{model_name!r} is marked incompatible, so it is not loaded again. Set its status back to "
                    "'unknown' to retry (the seed's \"Reset Failed Model\"), or send {\"force\": true}."
                )
            if current is not None:
                self._stop(current, reason="reloaded")
            self._make_room(keep=model_name)
            request = {
                "model_name": model.model_name, "hf_path": model.hf_path, "cache_path": model.cache_path,
                "load_config": json.loads(model.load_config) if model.load_config else {},
                "settings": {
                    "allow_remote_code": self.app.config["MODELHUB_ALLOW_REMOTE_CODE"],
                    "offload_dir": str(Path(self.app.config["MODELHUB_HOME"]) / "offload"),
                    "cpu_threads": self.app.config["MODELHUB_WORKER_THREADS"],
                },
            }
            if job == "measure":
                request["measure"] = settings
            log.info("%s %s. Using custom load config: %s", "Loading" if job == "load" else "Measuring",
                     model_name, json.dumps(request["load_config"]))
            record = attempts.begin(model) if job == "load" else measurements.begin(model, settings)
            worker = Worker(model_name, record.id, timeout or self.default_timeout, job=job)
            worker.process = subprocess.Popen(
                [sys.executable, "-m", "modelhub.loading.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            )
            worker.process.stdin.write(json.dumps(request) + "\n")
            worker.process.stdin.flush()
            self._set_stage(worker, "starting", worker_pid=worker.process.pid)
            self.workers[model_name] = worker
            threading.Thread(target=self._read, args=(worker,), daemon=True).start()
            threading.Thread(target=self._watch, args=(worker,), daemon=True, name=f"{job}:{model_name}").start()
            return record

    def unload(self, model_name: str) -> None:
        """End the model's worker (which frees its memory); a load in progress is cancelled."""
        with self.lock:
            worker = self.workers.get(model_name)
            if worker is None:
                raise NotLoaded(f"{model_name!r} is not loaded.")
            self._stop(worker, reason="cancelled by the user")

    def shutdown(self) -> None:
        with self.lock:
            for worker in list(self.workers.values()):
                self._stop(worker, reason="interrupted: the server stopped")

    # ---- internals ------------------------------------------------------------------------------

    def _make_room(self, keep: str) -> None:
        others = [w for name, w in self.workers.items() if name != keep]
        others.sort(key=lambda w: (w.state != "loaded", w.started))  # loaded ones first, oldest first
        while len(others) >= self.max_loaded:
            self._stop(others.pop(0), reason="another model was loaded")

    def _stop(self, worker: Worker, reason: str) -> None:
        worker.stopping = True
        self.workers.pop(worker.model_name, None)
        process = worker.process
        if worker.state == "loaded" and process.poll() is None:
            try:
                process.stdin.write("unload\n")
                process.stdin.flush()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if process.poll() is None:
            process.kill()
            process.wait()
        if worker.state == "loading":
            self._finish(worker, "interrupted", error_type="Interrupted", error_message=f"Loading was {reason}.")
        log.info("%s: worker %s ended (%s)", worker.model_name, process.pid, reason)

    def _read(self, worker: Worker) -> None:
        """Turn the worker's stdout lines into messages; EOF_MARK when it closes."""
        for line in worker.process.stdout:
            try:
                worker.messages.put(json.loads(line))
            except ValueError:
                log.warning("%s: unreadable worker output: %r", worker.model_name, line[:200])
        worker.messages.put(EOF_MARK)

    def _watch(self, worker: Worker) -> None:
        try:
            while worker.state == "loading" and not worker.stopping:
                remaining = worker.timeout - (time.monotonic() - worker.started)
                try:
                    message = worker.messages.get(timeout=max(remaining, 0.01))
                except queue.Empty:
                    self._timed_out(worker)
                    return
                if message is EOF_MARK:
                    self._died(worker)
                    return
                self._handle(worker, message)
            if worker.state == "loaded":
                self._await_exit(worker)
        except Exception:  # noqa: BLE001 - a watcher must never die silently with a model "testing"
            log.exception("%s: supervising the load failed", worker.model_name)
            if worker.state == "loading":
                self._finish(worker, "failure", error_type="SupervisorError",
                             error_message="modelhub lost track of this load; see the server log.")

    def _handle(self, worker: Worker, message: dict) -> None:
        event = message.pop("event", None)
        if event == "stage":
            worker.stage = message["stage"]
            with self.app.app_context():
                self._set_stage(worker, worker.stage)
        elif event == "loaded" and worker.job == "load":
            with self.lock:
                worker.state = "loaded"
            self._finish(worker, "success", **_columns(message))
        elif event == "measured":
            worker.state = "measured"  # ends the watch: the worker exits on its own
            self._finish(worker, "success", **_columns(message))
            self._end_process(worker)
        elif event == "failed":
            worker.state = "failed"  # ends the watch: the worker exits on its own
            self._finish(worker, "failure", **_columns(message))
            self._end_process(worker)

    def _timed_out(self, worker: Worker) -> None:
        with self.lock:
            if worker.stopping:
                return
            self.workers.pop(worker.model_name, None)
            worker.process.kill()
            worker.process.wait()
        self._finish(worker, "failure", error_type="Timeout",
                     error_message=f"Loading did not finish within {worker.timeout:g} s (it was at: {worker.stage}); "
                                   "the worker was stopped.",
                     explanation="The load hung or was too slow. A smaller dtype or quantization may help.")

    def _died(self, worker: Worker) -> None:
        code = worker.process.wait()
        with self.lock:
            if worker.stopping:
                return
            self.workers.pop(worker.model_name, None)
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        oom = " If the kernel's out-of-memory killer stopped it, the model needs less memory." if code == -9 else ""
        self._finish(worker, "failure", error_type="WorkerDied",
                     error_message=f"The worker process ended without reporting ({how}) while at: {worker.stage}.",
                     explanation=f"The worker loading this model crashed ({how}).{oom}",
                     suggestion={"device_map": "auto"} if code == -9 else None)

    def _end_process(self, worker: Worker) -> None:
        with self.lock:
            self.workers.pop(worker.model_name, None)
        try:
            worker.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()

    def _await_exit(self, worker: Worker) -> None:
        """A loaded model's worker should live until unloaded; note it if it dies on its own."""
        while worker.messages.get() is not EOF_MARK:
            pass
        code = worker.process.wait()
        with self.lock:
            if not worker.stopping and self.workers.get(worker.model_name) is worker:
                self.workers.pop(worker.model_name)
                log.warning("%s: loaded model's worker exited on its own (code %s)", worker.model_name, code)

    def _set_stage(self, worker: Worker, stage: str, **details) -> None:
        (attempts if worker.job == "load" else measurements).set_stage(worker.attempt_id, stage, **details)

    def _finish(self, worker: Worker, outcome: str, **details) -> None:
        with self.app.app_context():
            try:
                if worker.job == "measure":
                    measurements.finish(worker.attempt_id, outcome, **details)
                    return
                attempt = attempts.finish(worker.attempt_id, outcome, **details)
                if attempt is not None:
                    attempts.tell_plugins(self.plugins, attempt)
            finally:
                db.session.remove()


def _columns(message: dict) -> dict:
    """The worker's report, restricted to LoadAttempt columns."""
    allowed = ("error_type", "error_message", "explanation", "suggestion", "final_kwargs", "plugin_changes",
               "environment", "smoke_test", "results")
    return {key: message[key] for key in allowed if key in message}
