"""An auto-configure run's record (``AutoconfigureRun``): opened once per model at a time, its chain of
tries written as they happen, closed once (succeeded, failed, stopped, interrupted). Each function is
its own short transaction: nothing is held open while a try loads."""

import json
import os

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from modelhub import environments, registry
from modelhub.exceptions import AutoconfigureConflict, AutoconfigureNotFound
from modelhub.extensions import db
from modelhub.loading.leases import process_exists
from modelhub.models import AutoconfigureRun, LoadConfigVersion, ModelRegistry, utcnow

ENDED = ("succeeded", "failed", "stopped", "interrupted")
INTERRUPTED = "Interrupted: the server process that ran this search stopped; the try it was on was not finished."
_mine: set[tuple[str, int]] = set()  # (database, run id) this process runs now: a pid alone could be reused


def begin(app, model_name: str, *, max_tries: int, max_seconds: float, apply: bool) -> AutoconfigureRun:
    """Open a run for the model, unless one runs already (409). The model's row is locked meanwhile, so
    two requests racing in two processes open one run."""
    environment_id = environments.current_id(app)  # registered before the transaction below (SQLite)
    model = registry.get_model(model_name, for_update=True)
    running = refuse_if_running(model)
    if running is not None:
        _close(running, "interrupted", result_reason=INTERRUPTED)
    run = AutoconfigureRun(model_id=model.id, host=environments.host_name(app.config), environment_id=environment_id,
                           start_config=model.load_config, tries=[], max_tries=max_tries, max_seconds=max_seconds,
                           apply=apply, owner_pid=os.getpid())
    db.session.add(run)
    key = None
    try:
        db.session.flush()  # its id: this process's before anyone can read it, or a reader would take the
        key = _key(run.id)  # run for a dead process's and close it
        _mine.add(key)
        db.session.commit()
    except BaseException as error:
        _mine.discard(key)
        db.session.rollback()
        if isinstance(error, IntegrityError):  # another request opened one since our look (the unique index)
            raise AutoconfigureConflict(f"An auto-configure run for {model_name!r} is already running; stop it "
                                        "first (Stop in the model's details, or DELETE .../autoconfigure).") from None
        raise
    return run


def refuse_if_running(model: ModelRegistry) -> AutoconfigureRun | None:
    """409 if a live process runs a search for the model; returns a run left running by a dead one."""
    running = db.session.scalar(select(AutoconfigureRun).where(
        AutoconfigureRun.model_id == model.id, AutoconfigureRun.state == "running"))
    if running is not None and not owner_gone(running):
        db.session.rollback()
        raise AutoconfigureConflict(f"An auto-configure run for {model.model_name!r} is already running (run "
                                    f"{running.id}); stop it first (Stop in the model's details, or DELETE .../autoconfigure).")
    return running


def get(run_id: int) -> AutoconfigureRun:
    run = db.session.get(AutoconfigureRun, run_id, populate_existing=True)
    if run is None:
        raise AutoconfigureNotFound(f"No auto-configure run {run_id}.")
    settle(run)
    return run


def of_model(model_name: str, limit: int = 20) -> list[AutoconfigureRun]:
    model = registry.get_model(model_name)
    runs = list(db.session.scalars(select(AutoconfigureRun).where(AutoconfigureRun.model_id == model.id)
                                   .order_by(AutoconfigureRun.id.desc()).limit(limit)))
    for run in runs:
        settle(run)
    return runs


def latest(model_id: int) -> AutoconfigureRun | None:
    run = db.session.scalar(select(AutoconfigureRun).where(AutoconfigureRun.model_id == model_id)
                            .order_by(AutoconfigureRun.id.desc()).limit(1))
    if run is not None:
        settle(run)
    return run


def running_of(model_name: str) -> AutoconfigureRun:
    run = next((run for run in of_model(model_name, limit=1) if run.state == "running"), None)
    if run is None:
        raise AutoconfigureConflict(f"No auto-configure run is running for {model_name!r}.")
    return run


def add_try(run_id: int, entry: dict) -> None:
    run = db.session.get(AutoconfigureRun, run_id, populate_existing=True)
    run.tries = [*(run.tries or []), entry]
    db.session.commit()


def update_try(run_id: int, **values) -> None:
    """Change the newest try of the run (its attempt, its outcome and cause)."""
    run = db.session.get(AutoconfigureRun, run_id, populate_existing=True)
    tries = list(run.tries or [])
    tries[-1] = {**tries[-1], **values}
    run.tries = tries
    db.session.commit()


def request_stop(model_name: str) -> AutoconfigureRun:
    run = running_of(model_name)
    ask_to_stop(run.id)
    return get(run.id)


def ask_to_stop(run_id: int) -> None:
    db.session.execute(update(AutoconfigureRun).where(AutoconfigureRun.id == run_id).values(stop_requested=True))
    db.session.commit()


def stop_requested(run_id: int) -> bool:
    run = db.session.get(AutoconfigureRun, run_id, populate_existing=True)
    db.session.commit()
    return run is None or run.stop_requested


def finish(run_id: int, state: str, **values) -> AutoconfigureRun | None:
    """Close the run (once: a run closed meanwhile stays as it was). It stays this process's until the
    close is committed, so a reader meanwhile does not take it for a dead process's run."""
    key = _key(run_id)
    try:
        closed = db.session.execute(update(AutoconfigureRun).where(
            AutoconfigureRun.id == run_id, AutoconfigureRun.state == "running")
            .values(state=state, finished_at=utcnow(), **values))
        db.session.commit()
    finally:
        _mine.discard(key)
    return db.session.get(AutoconfigureRun, run_id, populate_existing=True) if closed.rowcount else None


def newest_version_id(model_id: int) -> int | None:
    """The id of the model's newest load_config version (what applying a result just made)."""
    return db.session.scalar(select(LoadConfigVersion.id).where(LoadConfigVersion.model_id == model_id)
                             .order_by(LoadConfigVersion.number.desc()).limit(1))


def record_applied(run_id: int, version_id: int | None) -> None:
    """Link the run to the load_config version its result became."""
    db.session.execute(update(AutoconfigureRun).where(AutoconfigureRun.id == run_id)
                       .values(applied_version_id=version_id))
    db.session.commit()


def close_interrupted(app) -> list[int]:
    """At start-up: this host's runs whose process is gone are closed as interrupted."""
    host = environments.host_name(app.config)
    closed = []
    for run in db.session.scalars(select(AutoconfigureRun).where(AutoconfigureRun.state == "running",
                                                                 AutoconfigureRun.host == host)):
        if owner_gone(run):
            _close(run, "interrupted", result_reason=INTERRUPTED)
            closed.append(run.id)
    db.session.commit()
    return closed


def settle(run: AutoconfigureRun) -> None:
    """A run still marked running whose process is gone (this host's only: another host's processes
    cannot be seen from here) is closed as interrupted when read."""
    if run.state == "running" and run.host == environments.host_name(_app_config()) and owner_gone(run):
        # Only if still running when written: the owner may have closed it since it was read.
        db.session.execute(update(AutoconfigureRun).where(
            AutoconfigureRun.id == run.id, AutoconfigureRun.state == "running")
            .values(state="interrupted", finished_at=utcnow(), result_reason=INTERRUPTED))
        db.session.commit()
        db.session.refresh(run)


def owner_gone(run: AutoconfigureRun) -> bool:
    if run.owner_pid == os.getpid():
        return _key(run.id) not in _mine
    return run.owner_pid is None or not process_exists(run.owner_pid)


def _key(run_id: int) -> tuple[str, int]:
    """Run ids are per database: one process may serve several apps (the tests do)."""
    return str(_app_config()["SQLALCHEMY_DATABASE_URI"]), run_id


def _close(run: AutoconfigureRun, state: str, **values) -> None:
    run.state, run.finished_at = state, utcnow()
    for column, value in values.items():
        setattr(run, column, value)


def _app_config():
    from flask import current_app

    return current_app.config


def model_name_of(run: AutoconfigureRun) -> str | None:
    model = db.session.get(ModelRegistry, run.model_id)
    return model.model_name if model is not None else None


def config_of(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
