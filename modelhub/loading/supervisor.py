"""The server side of loading: one worker process per loaded model, watched by a thread, and owned
through a lease in the database so that every web process agrees on it.

A load (or a measurement) claims the model's lease in the transaction that opens its attempt, so two
requests racing in two processes get one 202 and one 409. Any process answers for a model's state from
its lease; an unload that reaches a process other than the owner asks the owner (through the lease)
and waits for it. The owning thread forwards the worker's progress, enforces the timeout, and turns
every ending (success, failure, timeout, a worker killed by a signal, a cancel) into a finished attempt
and a compatibility status. No database transaction stays open while a worker runs: each record is its
own short transaction.
"""

import json
import logging
import threading
import time
from collections import Counter
from pathlib import Path

from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from modelhub import registry
from modelhub.extensions import db
from modelhub.loading import attempts, leases, ml_stack, status_rules
from modelhub.loading.process import Worker, worker_directory
from modelhub.exceptions import LoadConflict, NotLoaded, WriteContention
from modelhub.loading.watching import Watching
from modelhub.measuring import records as measurements
from modelhub.models import ModelRegistry, WorkerLease
from modelhub.plugin_manager import PluginHost

log = logging.getLogger(__name__)
IDLE = {"state": "idle"}
REMOTE_STOP_WAIT = 30.0  # seconds an unload waits for the owning process to end its worker


class Supervisor(Watching):
    """Starts, stops and answers for the workers of every model; see the module's docstring."""

    def __init__(self, app: Flask, plugins: PluginHost):
        self.app = app
        self.plugins = plugins
        self.max_loaded = app.config["MODELHUB_MAX_LOADED"]
        self.default_timeout = app.config["MODELHUB_LOAD_TIMEOUT"]
        self.lock = threading.RLock()
        self.workers: dict[str, Worker] = {}  # the workers this process runs, by model name
        self.claiming: Counter[int] = Counter()  # model ids this process is claiming a lease for now

    # ---- what the API and the pages ask ---------------------------------------------------------

    def state(self, model_name: str) -> dict:
        """The model's load state as the database records it (whichever process runs the worker)."""
        return self._describe(leases.by_model_name().get(model_name))

    def states(self):
        """A ``model_name -> state`` function for a whole page, reading every lease once."""
        by_name = leases.by_model_name()
        return lambda model_name: self._describe(by_name.get(model_name))

    def load(self, model_name: str, *, force: bool = False, timeout: float | None = None):
        """Start loading; returns the opened attempt. Raises LoadConflict (409) when it cannot start."""
        return self._start(model_name, "load", force=force, timeout=timeout)

    def measure(self, model_name: str, *, settings: dict | None = None, force: bool = False,
                timeout: float | None = None):
        """Load the model in a worker and measure it there; returns the opened measurement."""
        return self._start(model_name, "measure", force=force, timeout=timeout, settings=settings or {})

    def unload(self, model_name: str) -> None:
        """End the model's worker (which frees its memory); a load in progress is cancelled."""
        with self.lock:
            model = registry.get_model(model_name)
            lease = self._live_lease(model.id)
            if lease is None:
                raise NotLoaded(f"{model_name!r} is not loaded.")
            self._end(lease, "cancelled by the user")

    def start_reaper(self) -> None:
        """In a served process: a thread that takes over the leases of dead owners every few seconds, so
        a load whose web process was killed ends as interrupted without waiting for a request."""
        threading.Thread(target=self._reap_forever, daemon=True, name="modelhub-lease-reaper").start()

    def _reap_forever(self) -> None:
        while True:
            time.sleep(leases.REAP_EVERY)
            try:
                with self.lock, self._database():
                    for lease in leases.every_lease():
                        self._reclaimed_if_stale(lease)
            except Exception:  # noqa: BLE001 - a busy database now is no reason to stop looking
                log.warning("could not look for leases of dead processes", exc_info=True)

    def shutdown(self) -> None:
        with self.lock:
            for worker in list(self.workers.values()):
                self._stop(worker, reason="interrupted: the server stopped")

    def recover(self) -> None:
        """At start-up: leases of processes that died are taken over, and runs that no live process
        owns (a previous server was killed mid-load) are closed as interrupted."""
        with self._database():
            for lease in leases.every_lease():
                if leases.is_stale(lease):
                    self._reclaim(lease)
            owned = {(lease.job, lease.run_id) for lease in leases.every_lease()}
            attempts.close_interrupted(self.plugins, keep={run for job, run in owned if job == "load"})
            measurements.close_interrupted(keep={run for job, run in owned if job == "measure"})

    # ---- starting -------------------------------------------------------------------------------

    def _start(self, model_name: str, job: str, *, force: bool, timeout: float | None, settings: dict | None = None):
        timeout = timeout or self.default_timeout
        directory = worker_directory(self.app.config["MODELHUB_HOME"], model_name)
        with self.lock:
            model_id = self._make_way(model_name, force)
            directory.mkdir(parents=True, exist_ok=True)  # before the claim: a failure here records nothing
            self.claiming[model_id] += 1  # our lease-to-be is not a dead owner's, though no worker runs yet
        try:
            # The claim waits on the database (a busy one answers 503 after its busy timeout): outside the
            # lock, so other requests of this process do not queue behind that wait. The database, not
            # the lock, decides which of two claims wins.
            record, request = self._claim(model_name, job, force=force, timeout=timeout, settings=settings)
            log.info("%s %s. Using custom load config: %s", "Loading" if job == "load" else "Measuring",
                     model_name, json.dumps(request["load_config"]))
            worker = Worker(model_name, model_id, record.id, timeout, directory, job=job)
            with self.lock:
                worker.start(request)
                self.workers[model_name] = worker
        finally:
            with self.lock:
                self.claiming[model_id] -= 1
        try:
            self._set_stage(worker, "starting", worker_pid=worker.process.pid)
        except Exception:  # noqa: BLE001 - the worker runs; its next stage report records its pid
            log.warning("%s: could not record the worker's start", model_name, exc_info=True)
        threading.Thread(target=self._watch, args=(worker,), daemon=True, name=f"{job}:{model_name}").start()
        return record

    def _claim(self, model_name: str, job: str, *, force: bool, timeout: float, settings: dict | None):
        """Open the attempt (or measurement) and claim the lease; returns it and the worker's request."""
        for _ in range(registry.UNGUARDED_WRITE_ATTEMPTS):
            model = registry.get_model(model_name, for_update=True)  # claims of one model queue here
            self._refuse(model, leases.current(model.id), force)
            request = self._request(model, settings if job == "measure" else None)
            try:
                return self._open(model, job, settings, timeout), request
            except IntegrityError:
                db.session.rollback()  # another request claimed the lease first
                raise LoadConflict(f"{model_name!r} is already being loaded by another request.") from None
            except StaleDataError:
                db.session.rollback()  # the model was edited meanwhile: check again on the newest row
        raise WriteContention(f"could not start loading {model_name!r}; retry shortly.")

    def _make_way(self, model_name: str, force: bool) -> int:
        """Before claiming: refuse what cannot start, end this model's loaded worker (a reload) and, if
        the host is full, the oldest others. No row is locked while waiting for them."""
        model = registry.get_model(model_name)
        try:
            ml_stack.require()  # before anything changes: no status moved, no attempt opened, nothing unloaded
        except LoadConflict:
            db.session.rollback()
            raise
        lease = self._live_lease(model.id)
        self._refuse(model, lease if lease is not None and lease.state == "loading" else None, force)
        if lease is not None:
            self._end(lease, "reloaded")
        others = [lease for lease in leases.on_this_host()
                  if lease.model_id != model.id and not self._reclaimed_if_stale(lease)]
        others.sort(key=lambda lease: (lease.state != "loaded", lease.started_at))  # loaded, oldest first
        while len(others) >= self.max_loaded:
            self._end(others.pop(0), "another model was loaded")
        db.session.commit()  # end the read transaction before the claim
        return model.id

    def _refuse(self, model: ModelRegistry, busy: WorkerLease | None, force: bool) -> None:
        if busy is not None:
            db.session.rollback()
            what = "loading" if busy.job == "load" else "being measured"
            raise LoadConflict(f"{model.model_name!r} is already {what} ({leases.owner_name(busy)}, "
                               f"run {busy.run_id}).")
        if not status_rules.may_start(model.compatibility_status, force=force):
            db.session.rollback()
            raise LoadConflict(
                f"{model.model_name!r} is marked incompatible, so it is not loaded again. Set its status back "
                "to 'unknown' (in its details, or PATCH its config) to retry, or load it with {\"force\": true}."
            )

    def _open(self, model: ModelRegistry, job: str, settings: dict | None, timeout: float):
        """The attempt (or measurement) and the lease, in one transaction."""
        def claim(run_id):
            leases.claim(model, job, run_id, timeout)

        if job == "load":
            return attempts.begin(model, claim=claim)
        return measurements.begin(model, settings, claim=claim)

    def _request(self, model: ModelRegistry, measure: dict | None) -> dict:
        request = {
            "model_name": model.model_name, "hf_path": model.hf_path, "cache_path": model.cache_path,
            "load_config": json.loads(model.load_config) if model.load_config else {},
            "settings": {
                "allow_remote_code": self.app.config["MODELHUB_ALLOW_REMOTE_CODE"],
                # Absolute: the worker runs in a directory of its own.
                "offload_dir": str(Path(self.app.config["MODELHUB_HOME"]).resolve() / "offload"),
                "cpu_threads": self.app.config["MODELHUB_WORKER_THREADS"],
            },
        }
        if measure is not None:
            request["measure"] = measure
        return request

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

    def _live_lease(self, model_id: int) -> WorkerLease | None:
        lease = leases.current(model_id)
        return None if lease is None or self._reclaimed_if_stale(lease) else lease

    def _reclaimed_if_stale(self, lease: WorkerLease) -> bool:
        if not leases.is_stale(lease, mine_known=self._runs_locally(lease)):
            return False
        self._reclaim(lease)
        return True

    def _reclaim(self, lease: WorkerLease) -> None:
        """A dead owner's lease: remove it and close its run, as a restarted server would."""
        run_id, job, owner = lease.run_id, lease.job, leases.owner_name(lease)
        if not leases.take_over(lease):
            return  # someone else took it over first
        log.warning("took over the lease of run %s from %s, which is gone", run_id, owner)
        if job == "measure":
            measurements.finish(run_id, "interrupted", error_type="Interrupted",
                                error_message="The server stopped while this model was being measured.")
            return
        attempt = attempts.finish(run_id, "interrupted", error_type="Interrupted",
                                  error_message="The server stopped while this model was loading.")
        if attempt is not None:
            attempts.tell_plugins(self.plugins, attempt)

    def _end(self, lease: WorkerLease, reason: str) -> None:
        """End the lease's worker, whichever process runs it; returns once it is gone."""
        worker = self._local_worker(lease)
        if worker is not None:
            self._stop(worker, reason)
            return
        leases.request_stop(lease, reason)
        deadline = time.monotonic() + REMOTE_STOP_WAIT
        while time.monotonic() < deadline:
            now = leases.current(lease.model_id)
            db.session.commit()
            if now is None or now.run_id != lease.run_id or self._reclaimed_if_stale(now):
                return
            time.sleep(leases.POLL_EVERY / 2)
        raise LoadConflict(f"{leases.owner_name(lease)} did not end its worker within {REMOTE_STOP_WAIT:g} s.")
