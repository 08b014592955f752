"""The rows of measurements: opened, moved through their stages, closed. A successful one becomes the
model's operational metrics, marked as measured (when, how, under which load_config); the history
stays, so the same model under two load_configs can be compared. A failed one is recorded and changes
no metric."""

from sqlalchemy import select, update

from modelhub.extensions import db
from modelhub.loading import worker_runs
from modelhub.models import Measurement, ModelRegistry


def begin(model: ModelRegistry, settings: dict, claim=None, copy_path: str | None = None) -> Measurement:
    """Open a measurement of the copy at ``copy_path``; ``claim(id)`` adds the worker's lease to the same
    transaction."""
    measurement = Measurement(model_id=model.id, load_config=model.load_config, settings=settings, stage="starting",
                              **worker_runs.provenance(model, copy_path=copy_path))
    db.session.add(measurement)
    if claim is not None:
        db.session.flush()
        claim(measurement.id)
    db.session.commit()
    return measurement


def set_stage(measurement_id: int, stage: str, **details) -> None:
    allowed = {k: v for k, v in details.items() if k in ("worker_pid", "final_kwargs", "environment")}
    db.session.execute(update(Measurement).where(Measurement.id == measurement_id).values(stage=stage, **allowed))
    db.session.commit()


def finish(measurement_id: int, outcome: str, also=None, **details) -> Measurement | None:
    """Close a measurement; a success also sets the model's figures, in the same transaction (and
    ``also()`` adds more to it: the worker's lease)."""
    columns = {column: details[column] for column in
               ("error_type", "error_message", "final_kwargs", "environment", "results", "copy_path")
               if column in details}

    def publish_success(measurement: Measurement) -> None:
        if outcome == "success" and measurement.results:
            _publish(measurement)

    return worker_runs.close(Measurement, measurement_id, outcome, columns,
                             what=f"the end of measurement {measurement_id}", also=also, then=publish_success)


def _publish(measurement: Measurement) -> None:
    """The latest measurement's figures become the model's, each marked as measured."""
    model = db.session.get(ModelRegistry, measurement.model_id)
    results = measurement.results
    values = {
        "avg_latency_ms": results["time_to_first_token"]["avg_latency_ms"],
        "max_throughput_tokens_sec": results["throughput"]["best_tokens_per_sec"],
        "perplexity": results["perplexity"]["perplexity"],
    }
    how = {"source": "measured", "measurement_id": measurement.id, "at": measurement.finished_at.isoformat(),
           "load_config": measurement.load_config}
    for field, value in values.items():
        setattr(model, field, round(value, 3))
    model.metric_sources = {**(model.metric_sources or {}), **{field: how for field in values}}


def history(model: ModelRegistry, limit: int = 20) -> list[Measurement]:
    return list(db.session.scalars(
        select(Measurement).where(Measurement.model_id == model.id).order_by(Measurement.id.desc()).limit(limit)
    ))


def close_interrupted(keep: set[int] = frozenset()) -> list[int]:
    """At start-up: measurements a previous server left running (``keep``: those a live process still
    runs) are closed as interrupted; they change no metric."""
    running = worker_runs.running_ids(Measurement, keep)
    for measurement_id in running:
        interrupt(measurement_id)
    return running


def interrupt(measurement_id: int) -> Measurement | None:
    """Close a measurement whose server stopped (or died) while it ran as interrupted."""
    return finish(measurement_id, "interrupted", error_type="Interrupted",
                  error_message="The server stopped while this model was being measured.")


def as_stored(measurement_id: int) -> Measurement:
    """The measurement as the database holds it now (the worker's watcher writes it from another thread)."""
    db.session.expire_all()
    return db.session.get(Measurement, measurement_id)
