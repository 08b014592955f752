"""The modal's "Import scores from model card" button: an HTMX post answered with the re-rendered form."""

from flask import Blueprint, g

from modelhub import cards, pages, registry

bp = Blueprint("card_pages", __name__)


@bp.post("/models/<path:model_name>/card-scores")
def import_scores(model_name):
    """Import, then re-render the details form: the new values, their "from model card" notes, the
    outcome beside the button, and the new ETag (a later Save must not be refused as stale)."""
    g.card_import = cards.import_card_scores(registry.get_model(model_name))
    return pages.model_details(model_name)
