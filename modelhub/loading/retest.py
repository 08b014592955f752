"""This host's Retest: after an upgrade (a library, a driver: a new environment fingerprint), the models
whose results here are only from an older environment of this host are loaded again, one after
another, in the background, so that their status here is learned anew.

- Which models: ``compatibility.needing_retest`` when the retest starts.
- Each model: ``supervisor.load(name, force=True)`` (an incompatible one is retried too: the upgrade may
  have fixed it), then wait for the attempt to end, then unload it again unless it was loaded before
  (a model loaded before is reloaded and stays). One load at a time, through the supervisor's own rules,
  so never more than ``MODELHUB_MAX_LOADED`` models are loaded: loading one may unload the oldest other
  loaded model, as any load does. A model already loading (or measuring) is skipped, with why.
- Stop: the retest stops after the model loading now; that load ends as it would (its result is
  recorded). Unloading that model (the card's Cancel) cuts it short and records it as interrupted.
- The state lives in ``retest_state``, one row per host like a scan's: every web process shows the same
  progress, a second start anywhere on the host is refused (409), and a row whose process is gone (the
  server was killed mid-retest) reads as failed and may be started again.
"""

import logging
import os
import threading
import time

from flask import Flask
from sqlalchemy import update

from modelhub import compatibility, environments, host_state
from modelhub.exceptions import ModelhubError, RetestConflict
from modelhub.extensions import db
from modelhub.loading import ml_stack
from modelhub.loading.leases import process_exists
from modelhub.models import LoadAttempt, RetestState

log = logging.getLogger(__name__)
WAIT_EVERY = 0.25  # seconds between looks at the attempt being retested
WAIT_GRACE = 60.0  # past the load timeout, a load that has not ended means its watcher is gone
INTERRUPTED = "Interrupted: the server process that ran this retest stopped."
ALREADY_RUNNING = "A retest is already running on this host; its progress is at GET /api/retest."
IDLE = {"state": "idle", "done": 0, "total": 0, "current": None, "stop_requested": False, "results": []}
_running_here: set[str] = set()  # hosts this process runs a retest for now (any app of the process)
_running_lock = threading.Lock()


class RetestRunner:
    """Starts this host's retest and answers for its progress (see the module's docstring)."""

    def __init__(self, app: Flask):
        self.app = app

    def host(self) -> str:
        return environments.host_name(self.app.config)

    def status(self) -> dict:
        """The retest's state row and the models needing a retest now (needs an app context)."""
        return {**read(self.host()), "needing": compatibility.needing_retest(self.app)}

    def start(self) -> dict:
        host, names = self.host(), compatibility.needing_retest(self.app)
        if read(host)["state"] == "running":  # the claim below decides; this only picks the right words
            raise RetestConflict(ALREADY_RUNNING)
        if not names:
            raise RetestConflict("No model needs a retest on this host: every model that loaded here was loaded in "
                                 "the environment this host runs in now.")
        ml_stack.require()  # refused up front, as a load is, rather than failing each model in turn
        with _running_lock:
            if host in _running_here or not claim(host, total=len(names)):
                raise RetestConflict(ALREADY_RUNNING)
            _running_here.add(host)
        threading.Thread(target=self._run, args=(host, names), daemon=True, name="modelhub-retest").start()
        return self.status()

    def stop(self) -> dict:
        """Ask the running retest to stop after the model loading now."""
        if read(self.host())["state"] != "running" or not _write(self.host(), stop_requested=True):
            raise RetestConflict("No retest is running on this host.")
        return self.status()

    def _run(self, host: str, names: list[str]) -> None:
        with self.app.app_context():
            results: list[dict] = []
            try:
                for name in names:
                    if _stop_requested(host):
                        break
                    _write(host, current=name)
                    results.append(self._retest(name))
                    _write(host, done=len(results), results=list(results), current=None)
                state = "finished" if len(results) == len(names) else "stopped"
                _write(host, state=state, current=None, finished_at=time.time())
            except Exception as error:  # noqa: BLE001 - the banner shows it; the server goes on
                log.exception("retest failed")
                db.session.rollback()
                _write(host, state="failed", current=None, finished_at=time.time(),
                       error=f"{type(error).__name__}: {error}")
            finally:
                with _running_lock:
                    _running_here.discard(host)
                db.session.remove()

    def _retest(self, name: str) -> dict:
        """Load one model again and wait for the attempt's end; unload it unless it was loaded before."""
        supervisor = self.app.extensions["modelhub.supervisor"]
        try:
            was_loaded = supervisor.state(name)["state"] == "loaded"
            attempt_id = supervisor.load(name, force=True).id
        except ModelhubError as refused:  # loading or measuring now, deleted meanwhile, no ML stack
            db.session.rollback()
            return {"model_name": name, "attempt_id": None, "outcome": "skipped", "status": None, "error": str(refused)}
        attempt = wait_for_end(attempt_id, supervisor.default_timeout + WAIT_GRACE)
        if attempt.outcome == "success" and not was_loaded:
            try:
                supervisor.unload(name)
            except ModelhubError:  # unloaded meanwhile by someone else
                db.session.rollback()
        return {"model_name": name, "attempt_id": attempt_id, "outcome": attempt.outcome,
                "status": attempt.environment_status, "error": attempt.error_message}


def wait_for_end(attempt_id: int, timeout: float) -> LoadAttempt:
    """The attempt once it has ended (polled; no transaction held meanwhile). Auto-configure waits so too."""
    deadline = time.monotonic() + timeout
    while True:
        attempt = db.session.get(LoadAttempt, attempt_id, populate_existing=True)
        db.session.commit()  # end the read transaction: nothing is held while the model loads
        if attempt is None or attempt.outcome != "running":
            if attempt is None:
                raise LookupError(f"load attempt {attempt_id} disappeared (its model was deleted)")
            return attempt
        if time.monotonic() > deadline:
            raise TimeoutError(f"load attempt {attempt_id} did not end within {timeout:g} s")
        time.sleep(WAIT_EVERY)


# ---- the host's row (each function its own short transaction) -------------------------------------

def read(host: str) -> dict:
    row = db.session.get(RetestState, host, populate_existing=True)
    db.session.commit()
    if row is None:
        return {"host": host, **IDLE}
    status = {column: getattr(row, column) for column in (
        "host", "state", "done", "total", "current", "stop_requested", "started_at", "finished_at", "error")}
    status["results"] = row.results or []
    if row.state == "running" and _owner_gone(row):
        status.update(state="failed", error=INTERRUPTED, current=None)
    return status


def claim(host: str, total: int) -> bool:
    """Mark a retest of ``total`` models running on the host for this process; False if a live process
    runs one."""
    return host_state.claim(RetestState, host, _owner_gone, done=0, total=total, current=None, results=[],
                            stop_requested=False)


def _write(host: str, **values) -> bool:
    """Change the host's running retest (this process's, or, for a stop, any live one's)."""
    written = db.session.execute(update(RetestState).where(RetestState.host == host, RetestState.state == "running")
                                 .values(**values))
    db.session.commit()
    return written.rowcount == 1


def _stop_requested(host: str) -> bool:
    row = db.session.get(RetestState, host, populate_existing=True)
    db.session.commit()
    return row is None or row.stop_requested


def _owner_gone(row: RetestState) -> bool:
    if row.owner_pid == os.getpid():
        with _running_lock:
            return row.host not in _running_here
    return row.owner_pid is None or not process_exists(row.owner_pid)
