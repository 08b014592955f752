"""The Load / Unload buttons of the Models page (HTMX posts answered with the re-rendered card) and the
modal's Measure button (answered with the measurement history, which polls itself while one runs)."""

from flask import Blueprint, current_app, render_template

from modelhub import registry
from modelhub.exceptions import LoadConflict, NotLoaded
from modelhub.measuring import records

bp = Blueprint("load_pages", __name__)


def _card(model_name: str, load_error: str | None = None):
    return render_template("models/_model_card.html", model=registry.get_model(model_name), load_error=load_error)


@bp.post("/models/<path:model_name>/load")
def load(model_name):
    """Start loading; the card comes back in its loading state and polls itself until the load ends."""
    try:
        current_app.extensions["modelhub.supervisor"].load(model_name)
    except LoadConflict as refusal:
        return _card(model_name, str(refusal))
    return _card(model_name)


@bp.post("/models/<path:model_name>/unload")
def unload(model_name):
    """Unload (or cancel a load in progress)."""
    try:
        current_app.extensions["modelhub.supervisor"].unload(model_name)
    except NotLoaded as refusal:
        return _card(model_name, str(refusal))
    return _card(model_name)


def _measurements(model_name: str, measure_error: str | None = None):
    model = registry.get_model(model_name)
    return render_template("measuring/_measurements.html", model=model, measurements=records.history(model, limit=5),
                           measure_error=measure_error)


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
    return _measurements(model_name)
