"""The HTML side: one module per feature, named as its JSON twin in ``modelhub.api``.

Each view calls the services below it and hands the template everything it shows; every fragment
endpoint renders the same ``_partial.html`` its page includes, so each piece of markup exists once.
The feature blueprints sit under one ``views`` blueprint: endpoints read ``views.<feature>.<view>``.
"""

from flask import Blueprint, current_app

from modelhub import display
from modelhub.settings import describe_database
from modelhub.views import (
    autoconfigure,
    card_scores,
    compare,
    compatibility,
    copies,
    discovery,
    exchange,
    loading,
    measuring,
    models,
    preflight,
    sign_in,
)

bp = Blueprint("views", __name__)
for _feature in (models, loading, measuring, discovery, compare, card_scores, exchange, sign_in, compatibility,
                 preflight, autoconfigure, copies):
    bp.register_blueprint(_feature.bp)


@bp.app_context_processor
def _layout_values():
    # Values every page's layout (base.html, the error pages) and the metric labels need; no queries.
    return {"display": display, "database": describe_database(current_app.config["SQLALCHEMY_DATABASE_URI"])}
