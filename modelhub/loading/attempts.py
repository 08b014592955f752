"""Recording load attempts and what they teach: the compatibility status follows the outcomes.

- starting a load commits ``testing`` (and the attempt) before the worker starts;
- in the attempt's environment (``environment_status``): success -> ``compatible``, failure ->
  ``incompatible``; a success right after a failure, or a failure right after a success, *in the same
  environment* -> ``degraded`` (what the status means to users: "intermittent failures"), and so is a
  success that loaded only with parts offloaded (``load_report["degraded_reason"]``);
- the model's status then becomes the summary of its environments' results
  (``compatibility.summary_status``; the full table: modelhub/loading/status_rules.py);
- an attempt cut short (the user cancelled it, or the server died) is ``interrupted`` and the model
  gets back the status it had before;
- a loaded model whose worker dies on its own (killed, crashed) gets a follow-up attempt, a failure
  (``WorkerDiedWhileLoaded``) in the same environment spanning the time it was loaded: the successful
  attempt stays what it was (the model did load), and the status moves as for any failure after a
  success (``degraded`` there).

Each function runs in its own short transaction: none is held open while a model loads.
"""

import json
import logging

from sqlalchemy import select, update

from modelhub import compatibility, registry
from modelhub.extensions import db
from modelhub.loading import worker_runs
from modelhub.loading.status_rules import environment_status, status_after_interruption
from modelhub.loading.types import Trial
from modelhub.models import LoadAttempt, ModelRegistry, utcnow
from modelhub.schemas import AttemptSchema

log = logging.getLogger(__name__)


def begin(model: ModelRegistry, claim=None, trial: Trial | None = None, copy_path: str | None = None) -> LoadAttempt:
    """Set the model ``testing`` and open an attempt for it, in one committed transaction; ``claim(id)``
    adds the worker's lease to that transaction. ``trial``: an auto-configure try (its candidate config
    is recorded as the attempt's load_config, and the attempt is linked to the run). ``copy_path``: the
    copy of the model's files it loads."""
    tried = trial.load_config if trial is not None else None
    attempt = LoadAttempt(
        model_id=model.id, previous_status=model.compatibility_status, stage="starting",
        load_config=model.load_config if trial is None else json.dumps(tried),
        autoconfigure_run_id=trial.run_id if trial is not None else None,
        limitation=trial.limitation if trial is not None else None,
        **worker_runs.provenance(model, tried, copy_path),
    )
    db.session.add(attempt)
    model.compatibility_status = "testing"
    if claim is not None:
        db.session.flush()  # the attempt's id, for the lease
        claim(attempt.id)
    db.session.commit()
    return attempt


def set_stage(attempt_id: int, stage: str, **details) -> None:
    db.session.execute(update(LoadAttempt).where(LoadAttempt.id == attempt_id).values(stage=stage, **details))
    db.session.commit()


def finish(attempt_id: int, outcome: str, also=None, **details) -> LoadAttempt | None:
    """Close an attempt and move the model's status accordingly, in one transaction (a client never
    sees the attempt ended and the model still ``testing``). ``details`` are LoadAttempt columns;
    ``also()`` adds more to the same transaction (the worker's lease).

    Returns the closed attempt, or None if it was already closed (a cancel racing the worker's report).
    """

    def move_status(attempt: LoadAttempt) -> None:
        model = db.session.get(ModelRegistry, attempt.model_id)
        if model is None:
            return
        if outcome == "interrupted" or (outcome == "failure" and attempt.autoconfigure_run_id is not None):
            # A failed try of an auto-configure run is one candidate config failing, not the model's
            # verdict (the run records that when it ends): the status goes back, as for an interruption.
            model.compatibility_status = status_after_interruption(attempt.previous_status)
            return
        if attempt.autoconfigure_run_id is not None:  # a try that loaded: what its config gives up, if anything
            attempt.environment_status = environment_status(outcome, None, degraded_reason(attempt) or attempt.limitation)
        else:
            attempt.environment_status = environment_status(outcome, _previous_outcome(attempt), degraded_reason(attempt))
        _summarise(model, attempt)

    return worker_runs.close(LoadAttempt, attempt_id, outcome, details, what=f"the end of load attempt {attempt_id}",
                             also=also, then=move_status)


DIED_WHILE_LOADED = "WorkerDiedWhileLoaded"
# What the loaded model's worker was run with, carried over to the record of its death.
_CARRIED_OVER = ("load_config", "config_version_id", "environment_id", "final_kwargs", "environment",
                 "plugin_changes", "worker_pid", "copy_path")


def record_death_while_loaded(loaded_attempt_id: int, *, error_message: str, explanation: str,
                              also=None) -> LoadAttempt | None:
    """The worker of a loaded model (the successful attempt ``loaded_attempt_id``) ended on its own: add
    a failed attempt after it and move the model's status by the rules, in one transaction (``also()``
    adds the lease's release). Returns the new attempt, or None if the model is gone."""

    def write():
        loaded = db.session.get(LoadAttempt, loaded_attempt_id)
        model = db.session.get(ModelRegistry, loaded.model_id) if loaded is not None else None
        if model is None:
            return None
        if also is not None:
            also()
        record = LoadAttempt(model_id=model.id, previous_status=model.compatibility_status, outcome="failure",
                             started_at=loaded.finished_at or utcnow(), finished_at=utcnow(),
                             error_type=DIED_WHILE_LOADED, error_message=error_message, explanation=explanation,
                             **{column: getattr(loaded, column) for column in _CARRIED_OVER})
        db.session.add(record)
        db.session.flush()  # its id, which orders it after the success for _previous_outcome
        record.environment_status = environment_status("failure", _previous_outcome(record))
        _summarise(model, record)
        return record

    return registry.commit_on_newest(write, f"the death of the worker of load attempt {loaded_attempt_id}")


def _previous_outcome(attempt: LoadAttempt) -> str | None:
    """The outcome of the model's last finished attempt before this one in the same environment
    (interruptions do not count; attempts from before environments were are one environment of their own)."""
    same_environment = (LoadAttempt.environment_id.is_(None) if attempt.environment_id is None
                        else LoadAttempt.environment_id == attempt.environment_id)
    return db.session.scalar(
        select(LoadAttempt.outcome)
        .where(LoadAttempt.model_id == attempt.model_id, LoadAttempt.id < attempt.id, same_environment,
               compatibility.teaches())
        .order_by(LoadAttempt.id.desc())
        .limit(1)
    )


def degraded_reason(attempt: LoadAttempt) -> str | None:
    """Why a load that worked counts only as degraded (parts offloaded to CPU or disk), from the worker's report."""
    report = attempt.load_report if isinstance(attempt.load_report, dict) else {}
    return report.get("degraded_reason") or None


def record_search_verdict(attempt_id: int) -> LoadAttempt | None:
    """An auto-configure run found no config that loads: its last try's failure becomes the model's
    result in that environment (``incompatible``) and the model's status the summary again."""

    def write():
        attempt = db.session.get(LoadAttempt, attempt_id)
        model = db.session.get(ModelRegistry, attempt.model_id) if attempt is not None else None
        if model is None or attempt.outcome != "failure":
            return None
        attempt.environment_status = "incompatible"
        db.session.flush()
        _summarise(model, attempt)
        return attempt

    return registry.commit_on_newest(write, f"the verdict of the search that ended with attempt {attempt_id}")


def _summarise(model: ModelRegistry, ended: LoadAttempt) -> None:
    """The model's status after ``ended`` (its environment_status set, flushed by the query): the
    summary of its environments' results."""
    model.compatibility_status = compatibility.summary_status(model.id) or ended.environment_status


def close_interrupted(plugins=None, keep: set[int] = frozenset()) -> list[int]:
    """At start-up: attempts a previous server left running are closed as interrupted (and the
    plugins told, as for any other ending). ``keep``: attempts a live process still runs."""
    running = worker_runs.running_ids(LoadAttempt, keep)
    for attempt_id in running:
        interrupt(attempt_id, plugins)
    if running:
        log.warning("closed %d load attempt(s) left running by a previous server", len(running))
    return running


def interrupt(attempt_id: int, plugins=None) -> LoadAttempt | None:
    """Close an attempt whose server stopped (or died) while it ran as interrupted, and tell the plugins."""
    attempt = finish(attempt_id, "interrupted", error_type="Interrupted",
                     error_message="The server stopped while this model was loading.")
    if attempt is not None and plugins is not None:
        tell_plugins(plugins, attempt)
    return attempt


def recent(model: ModelRegistry, limit: int = 20) -> list[LoadAttempt]:
    return list(db.session.scalars(
        select(LoadAttempt).where(LoadAttempt.model_id == model.id).order_by(LoadAttempt.id.desc()).limit(limit)
    ))


def latest_failure(model: ModelRegistry) -> LoadAttempt | None:
    return db.session.scalar(
        select(LoadAttempt).where(LoadAttempt.model_id == model.id, LoadAttempt.outcome == "failure")
        .order_by(LoadAttempt.id.desc()).limit(1)
    )


def tell_plugins(plugins, attempt: LoadAttempt) -> None:
    """Call every plugin's ``load_attempt_finished``; one failing plugin does not stop the others."""
    model = db.session.get(ModelRegistry, attempt.model_id)
    record = AttemptSchema().dump(attempt)
    for call in plugins.call_each("load_attempt_finished", model_name=model.model_name if model else None, attempt=record):
        if call.error is not None:
            log.warning("plugin %s failed in load_attempt_finished: %s", call.plugin, call.error)
