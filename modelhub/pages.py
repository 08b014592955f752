"""The HTML side: the Models page and the HTMX fragments it swaps in.

Thin views over the same registry service and query schema as the JSON API. Each fragment endpoint
renders the same ``_partial.html`` the full page includes, so every piece of markup exists once.
"""

import json

from flask import Blueprint, current_app, g, make_response, render_template, request
from marshmallow import EXCLUDE, ValidationError
from sqlalchemy import select

from modelhub import display, registry
from modelhub.extensions import db
from modelhub.loading import attempts
from modelhub.measuring import records
from modelhub.models import ModelCopy
from modelhub.errors import flatten_messages
from modelhub.schemas import ModelListQuerySchema, ModelSchema
from modelhub.settings import describe_database

bp = Blueprint("pages", __name__)

PAGE_SIZE = 50
_query_schema = ModelListQuerySchema(unknown=EXCLUDE)
_model_schema = ModelSchema()


@bp.app_context_processor
def _template_globals():
    return {
        "display": display,
        "database": describe_database(current_app.config["SQLALCHEMY_DATABASE_URI"]),
        "load_state": _load_state,
        "plugins": current_app.extensions["modelhub.plugins"].plugin_reports,
        "scan_status": lambda: current_app.extensions["modelhub.scanner"].status,
    }


def _load_state(model_name: str) -> dict:
    # Every lease is read once per rendered page, not once per card.
    if "load_states" not in g:
        g.load_states = current_app.extensions["modelhub.supervisor"].states()
    return g.load_states(model_name)


@bp.route("/")
@bp.route("/models")
def models_page():
    """The Models page; with ``HX-Request`` (the filter bar), only the results are rendered."""
    try:
        query = _list_query()
    except ValidationError as error:
        return bad_request(error)
    page = registry.list_models(**query)
    template = "models/_model_results.html" if request.headers.get("HX-Request") else "models/models.html"
    response = make_response(render_template(template, page=page, query=query, has_models=_has_models(page)))
    response.vary.add("HX-Request")
    return response


@bp.route("/models/more")
def more_models():
    """The next page of cards, asked for by the "load more" sentinel at the end of the list."""
    try:
        query = _list_query()
    except ValidationError as error:
        return bad_request(error)
    return render_template("models/_model_cards.html", page=registry.list_models(**query), query=query)


@bp.route("/models/<path:model_name>/card")
def model_card(model_name):
    """One card, re-rendered after the modal saved it."""
    return render_template("models/_model_card.html", model=registry.get_model(model_name))


@bp.route("/models/<path:model_name>/details")
def model_details(model_name):
    """The details modal's content: a form holding the model as it is now, and the ETag it was read at."""
    model = registry.get_model(model_name)
    response = make_response(
        render_template(
            "models/_model_details.html", model=model, model_json=json.dumps(_model_schema.dump(model)),
            attempts=attempts.recent(model, limit=5), latest_failure=attempts.latest_failure(model),
            measurements=records.history(model, limit=5),
            copies=db.session.scalars(select(ModelCopy).where(ModelCopy.model_id == model.id).order_by(ModelCopy.id)).all(),
        )
    )
    response.headers["ETag"] = f'"{model.etag}"'
    return response


def bad_request(error: ValidationError):
    """The 400 page for a page address holding an invalid filter."""
    return render_template("bad_request.html", messages=list(flatten_messages(error.messages))), 400


def _list_query() -> dict:
    return filter_form_query(_query_schema, PAGE_SIZE)


def filter_form_query(schema, per_page: int) -> dict:
    """The request's filter-form arguments loaded with ``schema``. An empty field of the form means
    "no filter", not "filter on nothing"; every argument but ``status`` is single-valued."""
    raw = {key: values for key, values in request.args.lists() if any(values)}
    for key, values in raw.items():
        raw[key] = [v for v in values if v] if key == "status" else values[0]
    raw.setdefault("per_page", per_page)
    return schema.load(raw)


def _has_models(page) -> bool:
    """Whether the registry has any model at all (an empty result may just be the filters)."""
    return page.total > 0 or registry.list_models(per_page=1).total > 0
