"""The details modal's "Load this copy": load one chosen copy of a model (the same choice as ``copy_id``
in ``POST /api/models/{name}/load``), answered with the model's card in its loading state."""

from flask import Blueprint, current_app

from modelhub.exceptions import LoadConflict, UnknownCopy
from modelhub.views.models import card

bp = Blueprint("copies", __name__)


@bp.post("/models/<path:model_name>/copies/<int:copy_id>/load")
def load_copy(model_name, copy_id):
    """Start loading copy ``copy_id``; a refusal (a missing copy, one the model does not have, a load
    already running) is shown on the card, as the card's own Load button shows it."""
    try:
        current_app.extensions["modelhub.supervisor"].load(model_name, copy_id=copy_id)
    except (LoadConflict, UnknownCopy) as refusal:
        return card(model_name, str(refusal))
    return card(model_name)
