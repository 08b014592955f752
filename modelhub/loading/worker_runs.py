"""The rows of worker runs, whatever their kind: a load attempt and a measurement are both a run of a
worker on one model (``models.WorkerRun``), opened ``running`` and closed once, whichever ending comes
first. The kinds' own records (``loading/attempts.py``, ``measuring/measurements.py``) close theirs here."""

from flask import current_app
from sqlalchemy import select

from modelhub import environments, registry
from modelhub.extensions import db
from modelhub.models import LoadConfigVersion, ModelRegistry, WorkerRun, utcnow


def provenance(model: ModelRegistry) -> dict:
    """What a run opened now on ``model`` records beside its load_config text: the version of the
    load_config it runs and the environment it runs in (``WorkerRun`` columns)."""
    version_id = db.session.scalar(
        select(LoadConfigVersion.id).where(LoadConfigVersion.model_id == model.id)
        .order_by(LoadConfigVersion.number.desc()).limit(1)
    )
    return {"config_version_id": version_id, "environment_id": environments.current_id(current_app)}


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

    return registry.commit_on_newest(write, what)


def running_ids(run_type: type[WorkerRun], keep: set[int] = frozenset()) -> list[int]:
    """The runs still marked running, but those in ``keep`` (a live process still runs them)."""
    return [run_id for run_id in db.session.scalars(select(run_type.id).where(run_type.outcome == "running"))
            if run_id not in keep]
