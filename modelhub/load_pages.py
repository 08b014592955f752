"""The Load / Unload buttons of the Models page: HTMX posts that answer with the re-rendered card."""

from flask import Blueprint, current_app, render_template

from modelhub import registry
from modelhub.loading.supervisor import LoadConflict, NotLoaded

bp = Blueprint("load_pages", __name__)


def _card(model_name: str, load_error: str | None = None):
    return render_template("_model_card.html", model=registry.get_model(model_name), load_error=load_error)


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
