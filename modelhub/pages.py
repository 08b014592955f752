"""The HTML pages (server-rendered; they use the same registry service as the API)."""

from flask import Blueprint, current_app, render_template

from modelhub import registry
from modelhub.settings import describe_database

bp = Blueprint("pages", __name__)


@bp.route("/")
@bp.route("/models")
def models_page():
    """The Models page."""
    page = registry.list_models(per_page=100)
    return render_template(
        "models.html",
        page=page,
        database=describe_database(current_app.config["SQLALCHEMY_DATABASE_URI"]),
    )
