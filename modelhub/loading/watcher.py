"""Following each worker on a thread of its own: its progress into its run and its lease, the timeout,
a crash, a stop asked by another process, and every ending turned into a finished run."""

import logging
import queue
import threading
import time
from contextlib import contextmanager

from flask import Flask

from modelhub.extensions import db
from modelhub.loading import leases, status_rules
from modelhub.loading.process import EOF_MARK, Worker, describe_exit

log = logging.getLogger(__name__)


class Watcher:
    """Watches the workers of one supervisor, each on a thread of its own, until their jobs end.

    The supervisor creates it and shares its lock and its table of running workers: the watcher takes
    a worker off the table when its job ends, and stops it when another process asks to (through the
    lease). What a job's ending records, and whether its worker stays, is the job kind's (``worker.job``).
    """

    def __init__(self, app: Flask, plugins, lock: threading.RLock, workers: dict[str, Worker]):
        self.app = app
        self.plugins = plugins
        self.lock = lock
        self.workers = workers

    def watch(self, worker: Worker) -> None:
        """Follow a started worker on a thread of its own."""
        threading.Thread(target=self._follow, args=(worker,), daemon=True,
                         name=f"{worker.job.name}:{worker.model_name}").start()

    def record_stage(self, worker: Worker, stage: str, **details) -> None:
        """The worker's stage (``details``: its pid, the final kwargs, ...) into its lease and its run."""
        with own_session(self.app):
            leases.set_stage(worker.model_id, worker.run_id, stage, details.get("worker_pid"))
            worker.job.record_stage(worker.run_id, stage, **details)

    def stop(self, worker: Worker, reason: str) -> None:
        """End a worker (an unload, a reload, room for another model, the server stopping); a job still
        under way is recorded as interrupted."""
        worker.stopping = True
        self._forget(worker)
        worker.end()
        if worker.state == "loading":
            self._finish(worker, "interrupted", error_type="Interrupted", error_message=f"Loading was {reason}.")
        else:
            with own_session(self.app):
                leases.release(worker.model_id, worker.run_id)
        log.info("%s: worker %s ended (%s)", worker.model_name, worker.process.pid, reason)

    def _follow(self, worker: Worker) -> None:
        try:
            while worker.state == "loading" and not worker.stopping:
                remaining = worker.timeout - (time.monotonic() - worker.started)
                if remaining <= 0:
                    self._timed_out(worker)
                    return
                try:
                    message = worker.messages.get(timeout=min(remaining, leases.POLL_EVERY))
                except queue.Empty:
                    self._check_lease(worker)
                    continue
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
        job = worker.job
        if event == "terminated":
            worker.terminated = True  # its EOF follows
        elif event == "stage":
            worker.stage = message["stage"]
            self.record_stage(worker, worker.stage)
        elif event == job.done_event and job.keeps_worker:
            with self.lock:
                worker.state, worker.loaded_at = "loaded", time.monotonic()
            self._finish(worker, "success", **_columns(message))
        elif event in (job.done_event, "failed"):
            worker.state = event  # ends the watch: the worker exits on its own
            self._finish(worker, _outcome(event == job.done_event, message), **_columns(message))
            self._forget(worker)
            worker.wait_for_exit()

    def _check_lease(self, worker: Worker) -> None:
        """Renew the heartbeat now and then, and stop the worker if another process asked to."""
        beat = time.monotonic() - worker.last_beat >= leases.HEARTBEAT_EVERY
        try:
            with own_session(self.app):
                reason = leases.poll(worker.model_id, worker.run_id, beat=beat)
        except Exception:  # noqa: BLE001 - a busy database must not end the watch; try again next time
            log.warning("%s: could not read its lease", worker.model_name, exc_info=True)
            return
        if beat:
            worker.last_beat = time.monotonic()
        if reason:
            with self.lock:
                if self.workers.get(worker.model_name) is worker and not worker.stopping:
                    self.stop(worker, reason)

    def _timed_out(self, worker: Worker) -> None:
        with self.lock:
            if worker.stopping:
                return
            self._forget(worker)
            worker.kill()
        self._finish(worker, "failure", error_type="Timeout", failure_kind="timeout",
                     error_message=f"Loading did not finish within {worker.timeout:g} s (it was at: {worker.stage}); "
                                   "the worker was stopped.",
                     explanation="The load hung or was too slow. A smaller dtype or quantization may help.")

    def _died(self, worker: Worker) -> None:
        code = worker.process.wait()
        with self.lock:
            if worker.stopping:
                return
            self._forget(worker)
        if worker.terminated:
            self._finish(worker, "interrupted", error_type="Interrupted",
                         error_message=f"Loading was stopped: the worker was sent SIGTERM (at: {worker.stage}).")
            return
        how = describe_exit(code)
        oom = " If the kernel's out-of-memory killer stopped it, the model needs less memory." if code == -9 else ""
        # SIGKILL mid-load is most often the kernel's OOM killer: auto-configure treats it as memory.
        self._finish(worker, "failure", error_type="WorkerDied", failure_kind="out_of_memory" if code == -9 else "crash",
                     error_message=f"The worker process ended without reporting ({how}) while at: {worker.stage}.",
                     explanation=f"The worker loading this model crashed ({how}).{oom}",
                     suggestion={"device_map": "auto"} if code == -9 else None)

    def _await_exit(self, worker: Worker) -> None:
        """A loaded model's worker lives until unloaded; if it dies on its own, that is recorded."""
        while True:
            try:
                message = worker.messages.get(timeout=leases.POLL_EVERY)
                if message is EOF_MARK:
                    break
                worker.terminated = worker.terminated or message.get("event") == "terminated"
            except queue.Empty:
                if worker.stopping:
                    return
                self._check_lease(worker)
        code = worker.process.wait()
        with self.lock:
            if worker.stopping or self.workers.get(worker.model_name) is not worker:
                return  # unloaded, reloaded or shut down meanwhile: an ending that was asked for
            self._forget(worker)
        if worker.terminated:  # stopped from outside (e.g. the service stopping): an unload, not a death
            log.info("%s: the loaded model's worker %s was sent SIGTERM; unloaded", worker.model_name, worker.process.pid)
            with own_session(self.app):
                leases.release(worker.model_id, worker.run_id)
            return
        self._died_while_loaded(worker, code)

    def _died_while_loaded(self, worker: Worker, code: int) -> None:
        """Record the death as its job kind says (a load: a failed attempt after the successful one), and
        release the lease in the same transaction."""
        how, loaded_for = describe_exit(code), time.monotonic() - worker.loaded_at
        log.warning("%s: the loaded model's worker %s ended on its own (%s) after %.0f s loaded",
                    worker.model_name, worker.process.pid, how, loaded_for)
        oom = (" If the kernel's out-of-memory killer stopped it, this machine ran short of memory."
               if code == -9 else "")
        with own_session(self.app):
            record = worker.job.died_while_holding(
                worker.run_id, self.plugins,
                error_message=f"The worker holding the loaded model ended without being asked to ({how}) "
                              f"after {loaded_for:.0f} s loaded (last stage: loaded).",
                explanation=f"The loaded model's worker process died ({how}); the model is no longer loaded.{oom}",
                also=lambda: leases.release_in_transaction(worker.model_id, worker.run_id),
            )
            if record is None:  # the model was deleted meanwhile
                leases.release(worker.model_id, worker.run_id)

    def _forget(self, worker: Worker) -> None:
        if self.workers.get(worker.model_name) is worker:
            self.workers.pop(worker.model_name)

    def _finish(self, worker: Worker, outcome: str, **details) -> None:
        """Close the run; in the same transaction, the lease is kept (a job whose success keeps its
        worker: the model stays loaded) or released."""
        keep = worker.job.keeps_worker and outcome == "success"

        def lease_change():
            if keep:
                leases.mark_loaded(worker.model_id, worker.run_id)
            else:
                leases.release_in_transaction(worker.model_id, worker.run_id)

        with own_session(self.app):
            record = worker.job.finish(worker.run_id, outcome, self.plugins, also=lease_change, **details)
            if record is None and not keep:
                leases.release(worker.model_id, worker.run_id)  # the run was closed already (a race)


@contextmanager
def own_session(app: Flask):
    """A database session of its own (watch threads run outside any request), removed afterwards."""
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()


def _outcome(succeeded: bool, message: dict) -> str:
    if succeeded:
        return "success"
    # A load that could not be tried (its files out of reach) teaches nothing: as if it had not been tried.
    return "interrupted" if message.get("error_type") in status_rules.NOT_A_VERDICT else "failure"


def _columns(message: dict) -> dict:
    """The worker's report, restricted to LoadAttempt columns."""
    allowed = ("error_type", "error_message", "explanation", "suggestion", "final_kwargs", "plugin_changes",
               "environment", "smoke_test", "results", "load_report", "warnings", "measured_peak", "failure_kind",
               "copy_path")
    return {key: message[key] for key in allowed if key in message}
