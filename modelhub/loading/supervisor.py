"""The server side of loading: one worker process per loaded model, watched by a thread, and owned
through a lease in the database so that every web process agrees on it.

A load (or a measurement) claims the model's lease in the transaction that opens its run, so two
requests racing in two processes get one 202 and one 409. Any process answers for a model's state from
its lease; an unload that reaches a process other than the owner asks the owner (through the lease)
and waits for it. The watcher forwards the worker's progress, enforces the timeout, and turns every
ending (success, failure, timeout, a worker killed by a signal, a cancel) into a finished run. No
database transaction stays open while a worker runs: each record is its own short transaction.

What differs between a load and a measurement is their job kind's (modelhub/loading/jobs.py).
"""

import json
import logging
import threading
import time
from collections import Counter
from pathlib import Path

from flask import Flask, current_app

from modelhub import compatibility, environments, registry
from modelhub.exceptions import LoadConflict, NotLoaded, UnknownCopy
from modelhub.extensions import db
from modelhub.loading import copies, host_jobs, leases, ml_stack, status_rules
from modelhub.loading.claim import Claim
from modelhub.loading.job_kind import JobKind
from modelhub.loading.jobs import KINDS, LOAD, MEASURE
from modelhub.loading.process import Worker, worker_directory
from modelhub.loading.types import Trial
from modelhub.loading.watcher import Watcher, own_session
from modelhub.models import ModelRegistry, WorkerLease
from modelhub.plugin_manager import PluginHost

log = logging.getLogger(__name__)
IDLE = {"state": "idle"}
REMOTE_STOP_WAIT = 30.0  # seconds an unload waits for the owning process to end its worker


class Supervisor:
    """Starts, stops and answers for the workers of every model; see the module's docstring."""

    def __init__(self, app: Flask, plugins: PluginHost):
        self.app = app
        self.plugins = plugins
        self.max_loaded = app.config["MODELHUB_MAX_LOADED"]
        self.default_timeout = app.config["MODELHUB_LOAD_TIMEOUT"]
        self.lock = threading.RLock()
        self.workers: dict[str, Worker] = {}  # the workers this process runs, by model name
        self.claiming: Counter[int] = Counter()  # model ids this process is claiming a lease for now
        self.watcher = Watcher(app, plugins, self.lock, self.workers)

    # ---- what the API and the pages ask ---------------------------------------------------------

    def state(self, model_name: str) -> dict:
        """The model's load state as the database records it (whichever process runs the worker)."""
        return self._describe(leases.by_model_name().get(model_name))

    def states(self):
        """A ``model_name -> state`` function for a whole page, reading every lease once."""
        by_name = leases.by_model_name()
        return lambda model_name: self._describe(by_name.get(model_name))

    def load(self, model_name: str, *, force: bool = False, timeout: float | None = None, trial: Trial | None = None,
             copy_id: int | None = None):
        """Start loading; returns the opened attempt. Raises LoadConflict (409) when it cannot start.
        ``trial``: a try of an auto-configure run, loading its candidate config instead of the saved one.
        ``copy_id``: which of the model's copies to load (default its cache_path; loading/copies.py)."""
        return self._start(LOAD, model_name, force=force, timeout=timeout, trial=trial, copy_id=copy_id)

    def measure(self, model_name: str, *, settings: dict | None = None, force: bool = False,
                timeout: float | None = None, copy_id: int | None = None):
        """Load the model in a worker and measure it there; returns the opened measurement."""
        return self._start(MEASURE, model_name, force=force, timeout=timeout, settings=settings or {},
                           copy_id=copy_id)

    def unload(self, model_name: str) -> None:
        """End the model's worker (which frees its memory); a load in progress is cancelled."""
        with self.lock:
            model = registry.get_model(model_name)
            holder = self._settled(leases.holder(model.id, runs_here=self._runs_locally))
            if not holder.busy:
                raise NotLoaded(f"{model_name!r} is not loaded.")
            self._end(holder.lease, "cancelled by the user")

    def start_reaper(self) -> None:
        """In a served process: a thread that takes over the leases of dead owners every few seconds, so
        a load whose web process was killed ends as interrupted without waiting for a request; and one
        that picks up the loads other hosts sharing the registry asked of this one (host_jobs.py)."""
        threading.Thread(target=self._reap_forever, daemon=True, name="modelhub-lease-reaper").start()
        host_jobs.HostJobPoller(self.app, self).start()

    def _reap_forever(self) -> None:
        while True:
            time.sleep(leases.REAP_EVERY)
            try:
                with self.lock, own_session(self.app):
                    self._close_runs(leases.take_over_dead(runs_here=self._runs_locally))
            except Exception:  # noqa: BLE001 - a busy database now is no reason to stop looking
                log.warning("could not look for leases of dead processes", exc_info=True)

    def shutdown(self) -> None:
        with self.lock:
            for worker in list(self.workers.values()):
                self.watcher.stop(worker, reason="interrupted: the server stopped")

    def recover(self) -> None:
        """At start-up: leases of processes that died are taken over, and runs that no live process
        owns (a previous server was killed mid-load) are closed as interrupted."""
        with own_session(self.app):
            # This process runs no worker yet: a lease of its own pid is a live one all the same.
            self._close_runs(leases.take_over_dead(runs_here=lambda lease: True))
            owned = {(lease.job, lease.run_id) for lease in leases.every_lease()}
            for kind in KINDS.values():
                kind.close_left_running(self.plugins, keep={run for job, run in owned if job == kind.name})

    # ---- starting -------------------------------------------------------------------------------

    def _start(self, kind: JobKind, model_name: str, *, force: bool, timeout: float | None,
               settings: dict | None = None, trial: Trial | None = None, copy_id: int | None = None):
        timeout = timeout or self.default_timeout
        directory = worker_directory(self.app.config["MODELHUB_HOME"], model_name)
        with self.lock:
            model = self._make_way(model_name, force, copy_id)
            directory.mkdir(parents=True, exist_ok=True)  # before the claim: a failure here records nothing
            self.claiming[model.id] += 1  # our lease-to-be is not a dead owner's, though no worker runs yet
        # This host's environment, registered (once per process) before the claim's transaction opens:
        # the run records it, and registering it inside that transaction would wait on itself (SQLite).
        environments.current_id(self.app)
        try:
            # The claim waits on the database (a busy one answers 503 after its busy timeout): outside the
            # lock, so other requests of this process do not queue behind that wait. The database, not
            # the lock, decides which of two claims wins.
            claim = leases.claim(model, kind.name, timeout,
                                 open_run=lambda locked, add_lease: self._open(kind, locked, force, settings, add_lease,
                                                                               trial, copy_id))
            if not claim.granted:
                raise LoadConflict(_busy(model_name, claim.lease))
            run, request = claim.opened
            log.info("%s %s. Using custom load config: %s", kind.doing, model_name, json.dumps(request["load_config"]))
            worker = Worker(model_name, model.id, run.id, timeout, directory, job=kind)
            with self.lock:
                worker.start(request)
                self.workers[model_name] = worker
        finally:
            with self.lock:
                self.claiming[model.id] -= 1
        try:
            self.watcher.record_stage(worker, "starting", worker_pid=worker.process.pid)
        except Exception:  # noqa: BLE001 - the worker runs; its next stage report records its pid
            log.warning("%s: could not record the worker's start", model_name, exc_info=True)
        self.watcher.watch(worker)
        return run

    def _make_way(self, model_name: str, force: bool, copy_id: int | None = None) -> ModelRegistry:
        """Before claiming: refuse what cannot start, end this model's loaded worker (a reload) and, if
        the host is full, the oldest others. No row is locked while waiting for them."""
        model = registry.get_model(model_name)
        try:
            ml_stack.require()  # before anything changes: no status moved, no run opened, nothing unloaded
            copies.chosen_path(model, copy_id)  # an unknown or missing copy likewise
        except (LoadConflict, UnknownCopy):
            db.session.rollback()
            raise
        holder = self._settled(leases.holder(model.id, runs_here=self._runs_locally))
        if holder.busy and holder.lease.state == "loading":
            db.session.rollback()
            raise LoadConflict(_busy(model_name, holder.lease))
        _refuse_if_incompatible(model, force)
        if holder.busy:
            self._end(holder.lease, "reloaded")
        others = [claim.lease for claim in leases.others_here(model.id, runs_here=self._runs_locally)
                  if self._settled(claim).busy]
        others.sort(key=lambda lease: (lease.state != "loaded", lease.started_at))  # loaded, oldest first
        while len(others) >= self.max_loaded:
            self._end(others.pop(0), "another model was loaded")
        db.session.commit()  # end the read transaction before the claim
        return model

    def _open(self, kind: JobKind, model: ModelRegistry, force: bool, settings: dict | None, add_lease,
              trial: Trial | None = None, copy_id: int | None = None):
        """In the claim's transaction, on the model's locked, newest row: refuse it if it may not start;
        else the worker's request, and the run opened with the lease (recording the copy it loads)."""
        _refuse_if_incompatible(model, force)
        copy_path = copies.chosen_path(model, copy_id)
        request = self._request(model, copy_path, kind.request(settings), trial)
        return kind.begin(model, settings, claim=add_lease, trial=trial, copy_path=copy_path), request

    def _request(self, model: ModelRegistry, copy_path: str | None, job_part: dict, trial: Trial | None = None) -> dict:
        saved = json.loads(model.load_config) if model.load_config else {}
        return {
            "model_name": model.model_name, "hf_path": model.hf_path, "cache_path": copy_path,
            "load_config": trial.load_config if trial is not None else saved,
            "settings": {
                "allow_remote_code": self.app.config["MODELHUB_ALLOW_REMOTE_CODE"],
                # Absolute: the worker runs in a directory of its own.
                "offload_dir": str(Path(self.app.config["MODELHUB_HOME"]).resolve() / "offload"),
                "cpu_threads": self.app.config["MODELHUB_WORKER_THREADS"],
                "memory_limit_bytes": self.app.config.get("MODELHUB_WORKER_MEMORY_LIMIT"),
            },
            **job_part,
        }

    # ---- leases ---------------------------------------------------------------------------------

    def _describe(self, lease: WorkerLease | None) -> dict:
        if lease is None or leases.is_stale(lease, mine_known=self._runs_locally(lease)):
            return IDLE
        return {"state": lease.state, "job": lease.job, "stage": lease.stage, "attempt_id": lease.run_id,
                "pid": lease.worker_pid, "owner": leases.owner_name(lease),
                "seconds": round(leases.seconds_since(lease.started_at), 1)}

    def _local_worker(self, lease: WorkerLease) -> Worker | None:
        """This process's worker for the lease's run, if this process runs it."""
        return next((worker for worker in self.workers.values()
                     if worker.model_id == lease.model_id and worker.run_id == lease.run_id), None)

    def _runs_locally(self, lease: WorkerLease) -> bool:
        return self._local_worker(lease) is not None or self.claiming[lease.model_id] > 0

    def _settled(self, claim: Claim) -> Claim:
        """A lease the answer says was taken over from a dead owner: its run closed, as a restarted
        server would."""
        if claim.taken_over:
            self._close_runs([claim.lease])
        return claim

    def _close_runs(self, taken_over: list[WorkerLease]) -> None:
        for lease in taken_over:
            log.warning("took over the lease of run %s from %s, which is gone", lease.run_id, leases.owner_name(lease))
            KINDS[lease.job].interrupt(lease.run_id, self.plugins)

    def _end(self, lease: WorkerLease, reason: str) -> None:
        """End the lease's worker, whichever process runs it; returns once it is gone."""
        worker = self._local_worker(lease)
        if worker is not None:
            self.watcher.stop(worker, reason)
            return
        ended = self._settled(leases.stop_and_wait(lease, reason, wait=REMOTE_STOP_WAIT, runs_here=self._runs_locally))
        if ended.busy:
            raise LoadConflict(f"{leases.owner_name(lease)} did not end its worker within {REMOTE_STOP_WAIT:g} s.")


def _busy(model_name: str, lease: WorkerLease | None) -> str:
    """The 409 for a model whose lease someone holds (None: another request claimed it just now)."""
    if lease is None:
        return f"{model_name!r} is already being loaded by another request."
    return f"{model_name!r} is already {KINDS[lease.job].busy} ({leases.owner_name(lease)}, run {lease.run_id})."


def _refuse_if_incompatible(model: ModelRegistry, force: bool) -> None:
    if force or model.compatibility_status != "incompatible":
        return
    here = compatibility.here(current_app, model)
    if not status_rules.may_start(model.compatibility_status, force=force, here=here.status,
                                  learned_elsewhere=here.elsewhere or here.stale):
        db.session.rollback()
        found = " (it failed to load on this host)" if here.status else ""
        raise LoadConflict(
            f"{model.model_name!r} is marked incompatible{found}, so it is not loaded again. Set its status "
            "back to 'unknown' (in its details, or PATCH its config) to retry, or load it with {\"force\": true}."
        )
