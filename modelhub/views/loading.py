"""The Models page's Load / Unload buttons: HTMX posts answered with the re-rendered card, which polls
itself while a load runs."""

from flask import Blueprint, current_app

from modelhub.exceptions import LoadConflict, NotLoaded
from modelhub.views.models import card

bp = Blueprint("loading", __name__)


@bp.post("/models/<path:model_name>/load")
def load(model_name):
    """Start loading; the card comes back in its loading state and polls itself until the load ends."""
    try:
        current_app.extensions["modelhub.supervisor"].load(model_name)
    except LoadConflict as refusal:
        return card(model_name, str(refusal))
    return card(model_name)


@bp.post("/models/<path:model_name>/unload")
def unload(model_name):
    """Unload (or cancel a load in progress)."""
    try:
        current_app.extensions["modelhub.supervisor"].unload(model_name)
    except NotLoaded as refusal:
        return card(model_name, str(refusal))
    return card(model_name)
