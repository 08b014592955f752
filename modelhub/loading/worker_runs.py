"""The rows of worker runs, whatever their kind: a load attempt and a measurement are both a run of a
worker on one model (``models.WorkerRun``), opened ``running`` and closed once, whichever ending comes
first. The kinds' own records (``loading/attempts.py``, ``measuring/measurements.py``) close theirs here."""

import json
import logging

from flask import current_app
from sqlalchemy import select

from modelhub import environments, preflight, registry
from modelhub.extensions import db
from modelhub.models import LoadConfigVersion, ModelRegistry, WorkerRun, utcnow

log = logging.getLogger(__name__)


def provenance(model: ModelRegistry, trial_config: dict | None = None, copy_path: str | None = None) -> dict:
    """What a run opened now on ``model`` records beside its load_config text: the version of the
    load_config it runs (none for an auto-configure try: its config is a candidate, not a saved version),
    the environment it runs in, the copy of the files it loads (``copy_path``), and what preflight
    predicts its peak memory will be (``WorkerRun`` columns), which the measured peak calibrates later."""
    version_id = None if trial_config is not None else db.session.scalar(
        select(LoadConfigVersion.id).where(LoadConfigVersion.model_id == model.id)
        .order_by(LoadConfigVersion.number.desc()).limit(1)
    )
    config = trial_config if trial_config is not None else _saved_config(model)
    return {"config_version_id": version_id, "environment_id": environments.current_id(current_app),
            "copy_path": copy_path, "predicted_peak": _predicted_peak(model, config, copy_path)}


def _saved_config(model: ModelRegistry) -> dict:
    try:
        return json.loads(model.load_config) if model.load_config else {}
    except ValueError:  # a value written by other tools' SQL: the worker reports it; nothing to predict
        return {}


def _predicted_peak(model: ModelRegistry, config: dict, copy_path: str | None) -> dict | None:
    """Preflight's prediction; a run starts whatever preflight thinks (or if it fails)."""
    try:
        return preflight.predict_peak(current_app, model, config, copy_path=copy_path)
    except Exception:  # noqa: BLE001 - a prediction is a nice-to-have; the load is what was asked
        log.warning("preflight could not predict the peak of %s", model.model_name, exc_info=True)
        return None


def close(run_type: type[WorkerRun], run_id: int, outcome: str, columns: dict, *, what: str, also=None, then=None):
    """Close a running run in one transaction, retried on top of a concurrent user edit: set ``columns``
    and the outcome; ``also()`` adds more to the transaction (the worker's lease) and ``then(run)`` what
    the ending does to its model. Returns the run, or None if it was closed already (a cancel racing the
    worker's report) or is gone (its model was deleted meanwhile)."""

    def write():
        run = db.session.get(run_type, run_id)
        if run is None or run.outcome != "running":
            return None
        if also is not None:
            also()
        for column, value in columns.items():
            setattr(run, column, value)
        run.outcome, run.finished_at, run.stage = outcome, utcnow(), None
        if then is not None:
            then(run)
        return run

    closed = registry.commit_on_newest(write, what)
    if closed is not None:
        preflight.forget_host_facts(current_app)  # what it measured calibrates the next preflight at once
    return closed


def running_ids(run_type: type[WorkerRun], keep: set[int] = frozenset()) -> list[int]:
    """The runs still marked running, but those in ``keep`` (a live process still runs them)."""
    return [run_id for run_id in db.session.scalars(select(run_type.id).where(run_type.outcome == "running"))
            if run_id not in keep]
