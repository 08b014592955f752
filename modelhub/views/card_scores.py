"""The modal's "Import scores from model card" button: an HTMX post answered with the re-rendered form."""

from flask import Blueprint

from modelhub import card_scores, registry
from modelhub.views.models import details

bp = Blueprint("card_scores", __name__)


@bp.post("/models/<path:model_name>/card-scores")
def import_scores(model_name):
    """Import, then re-render the details form: the new values, their "from model card" notes, the
    outcome beside the button, and the new ETag (a later Save must not be refused as stale)."""
    result = card_scores.import_card_scores(registry.get_model(model_name))
    return details(model_name, card_import=result)
