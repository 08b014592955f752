"""The details modal's Measure button and the measurement history it answers with, which polls itself
while a measurement runs."""

from flask import Blueprint, current_app, render_template

from modelhub import registry
from modelhub.exceptions import LoadConflict
from modelhub.measuring.measurements import history

bp = Blueprint("measuring", __name__)


@bp.post("/models/<path:model_name>/benchmark")
def benchmark(model_name):
    """Start a measurement with the default settings."""
    try:
        current_app.extensions["modelhub.supervisor"].measure(model_name)
    except LoadConflict as refusal:
        return _measurements(model_name, str(refusal))
    return _measurements(model_name)


@bp.get("/models/<path:model_name>/measurements")
def measurements(model_name):
    """The history as it is now (``_measurements.html``)."""
    return _measurements(model_name)


def _measurements(model_name: str, measure_error: str | None = None):
    model = registry.get_model(model_name)
    return render_template("measuring/_measurements.html", model=model, measurements=history(model, limit=5),
                           measure_error=measure_error)
