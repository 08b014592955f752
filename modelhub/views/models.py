"""The Models page, its "load more" pages, one model's card and the details modal's content."""

import json

from datetime import UTC, datetime

from flask import Blueprint, current_app, make_response, render_template, request, url_for
from marshmallow import EXCLUDE, ValidationError, fields, validate

from modelhub import compatibility, config_history, inventory, registry
from modelhub.api.http import if_match
from modelhub.discovery import locations_summary
from modelhub.exceptions import ConfigVersionNotFound, NothingToRestore, PreconditionFailed, RestoreRefused
from modelhub.exchange import report
from modelhub.loading import attempts, host_jobs
from modelhub.measuring import measurements
from modelhub.schemas import ModelListQuerySchema, ModelSchema
from modelhub.views import preflight as preflight_views
from modelhub.views.filters import bad_request, filter_form_query

bp = Blueprint("models", __name__)

PAGE_SIZE = 50
VIEWS = ("cards", "table")
# The Cards/Table choice, remembered per browser: set whenever a request names it, read when one does not,
# so the first render of a bare address is already the user's view (no flash of the other one).
VIEW_COOKIE = "modelhub_view"
VIEW_COOKIE_SECONDS = 400 * 24 * 3600  # Chromium's cap on a cookie's lifetime


class ModelsPageQuerySchema(ModelListQuerySchema):
    """The Models page's address: the list's query plus how it is shown (the API has no ``view``)."""

    view = fields.String(validate=validate.OneOf(VIEWS))


_query_schema = ModelsPageQuerySchema(unknown=EXCLUDE)
_model_schema = ModelSchema()
STALE_FORM = ("someone else changed this model since this form was read. It now shows the model as it is: "
              "restore again if you still want to.")
LIST_ARGS = ("status", "q", "format", "library", "tested")


@bp.route("/")
@bp.route("/models")
def models_page():
    """The Models page; with ``HX-Request`` (the filter bar), only the results are rendered."""
    try:
        query = _page_query()
    except ValidationError as error:
        return bad_request(error)
    page = registry.list_models(**_list_query(query))
    context = {**results_context(page, query), "has_models": page.total > 0 or registry.has_models(),
               "totals_url": url_for("views.models.totals", **_address_args(query, LIST_ARGS))}
    if request.headers.get("HX-Request"):
        response = make_response(render_template("models/_model_results.html", **context))
    else:
        response = make_response(render_template(
            "models/models.html", **context, format_choices=inventory.format_choices(),
            # The libraries' counts add up every copy: they follow the first render (discovery.library_roots), so
            # it stays as fast at 10,000 models as at 100 (bench/page.py).
            scan={**current_app.extensions["modelhub.scanner"].status, "roots_deferred": True},
            plugin_reports=current_app.extensions["modelhub.plugins"].plugin_reports()))
    response.vary.add("HX-Request")
    response.vary.add("Cookie")
    return _remember_view(response, query)


@bp.route("/models/more")
def more_models():
    """The next page of cards (or table rows), asked for by the "load more" sentinel at the end of the list."""
    try:
        query = _page_query()
    except ValidationError as error:
        return bad_request(error)
    page = registry.list_models(**_list_query(query))
    template = "models/_model_rows.html" if query["view"] == "table" else "models/_model_cards.html"
    return render_template(template, **results_context(page, query))


@bp.route("/models/totals")
def totals():
    """The totals above the results (``_totals.html``), asked for by the results once shown: they add up
    every filtered model's copies, which costs more as the registry grows, so the list does not wait for them."""
    try:
        query = _page_query()
    except ValidationError as error:
        return bad_request(error)
    filters = _filters(query)
    return render_template("models/_totals.html", totals=inventory.totals(registry.count_models(**filters), **filters))


def results_context(page, query: dict) -> dict:
    """What the results (cards or rows, and their "load more") show of a page of models."""
    summaries = inventory.summaries(page.items)
    return {"page": page, "query": query, "load_states": load_states(page.items), "here_marks": here_marks(page.items),
            "preflight_marks": preflight_views.marks(page.items), "summaries": summaries,
            "copy_badges": {model_id: summary.badges for model_id, summary in summaries.items()},
            "now": datetime.now(UTC), "more_url": lambda number: more_url(query, number)}


def more_url(query: dict, number: int) -> str:
    """The address of page ``number`` of these results, as the "load more" sentinel asks for it."""
    return url_for("views.models.more_models", page=number, **_address_args(query, (*LIST_ARGS, "sort", "view")))


def _address_args(query: dict, keys) -> dict:
    """The arguments of ``query`` named by ``keys`` that are set, for url_for."""
    return {key: query[key] for key in keys if query.get(key)}


def _page_query() -> dict:
    """The request's query, with the view it names, else the one this browser chose last, else cards."""
    query = filter_form_query(_query_schema, PAGE_SIZE)
    remembered = request.cookies.get(VIEW_COOKIE)
    query["view_named"] = "view" in query
    query.setdefault("view", remembered if remembered in VIEWS else "cards")
    return query


def _list_query(query: dict) -> dict:
    return {key: value for key, value in query.items() if key not in ("view", "view_named")}


def _filters(query: dict) -> dict:
    return {key: query.get(key) for key in LIST_ARGS}


def _remember_view(response, query: dict):
    if query["view_named"] and request.cookies.get(VIEW_COOKIE) != query["view"]:
        response.set_cookie(VIEW_COOKIE, query["view"], max_age=VIEW_COOKIE_SECONDS, samesite="Lax", httponly=True)
    return response


@bp.route("/models/<path:model_name>/card")
def model_card(model_name):
    """One card (or, for a table row, the row: htmx names its target), re-rendered after the modal saved it."""
    return card(model_name)


@bp.route("/models/<path:model_name>/details")
def model_details(model_name):
    """The details modal's content: a form holding the model as it is now, and the ETag it was read at."""
    return details(model_name)


@bp.post("/models/<path:model_name>/configs/<number>/restore")
def restore_config(model_name, number):
    """The history's Restore button: make an old load_config the model's again (a new version), then
    re-render the details form, with the restored config, the new ETag and what happened. A refusal
    (the model changed since the form was read, nothing to restore, no such version) re-renders the
    form as the model is now, saying why, with the refusal's status (static/js/modelhub.js swaps it)."""
    try:
        restored = config_history.restore(model_name, number, if_match=if_match(), via="page")
    except (PreconditionFailed, NothingToRestore, ConfigVersionNotFound, RestoreRefused) as refusal:
        why = STALE_FORM if isinstance(refusal, PreconditionFailed) else str(refusal)
        response = details(model_name, history_note=f"Not restored: {why}")
        response.status_code = refusal.status
        return response
    return details(model_name, history_note=f"Restored version {restored.restored_from} as version "
                                             f"{restored.number}: it is the load config in force now.")


def card(model_name: str, load_error: str | None = None):
    """One model's card (``_model_card.html``) as it is now; ``load_error``: why a Load was refused. When htmx
    asks for it to replace a table row (``HX-Target`` names one), the row (``_model_row.html``)."""
    model = registry.get_model(model_name)
    summaries = inventory.summaries([model])
    context = {"model": model, "state": load_states([model])[model.model_name], "load_error": load_error,
               "here_marks": here_marks([model]), "preflight_marks": preflight_views.marks([model]),
               "summaries": summaries, "copy_badges": {model.id: summaries[model.id].badges}, "now": datetime.now(UTC)}
    row = request.headers.get("HX-Target", "").startswith("model-row-")
    return render_template("models/_model_row.html" if row else "models/_model_card.html", **context)


def details(model_name: str, card_import=None, history_note: str | None = None, copies_note: str | None = None,
            copies_refused: bool = False):
    """The details form (``_model_details.html``) with its ETag; ``card_import``: the outcome of an
    "Import scores from model card" to show beside its button; ``history_note``: what a Restore in the
    load config history did (or why it did not); ``copies_note``: why a "Make default" did nothing
    (``copies_refused``)."""
    model = registry.get_model(model_name)
    response = make_response(render_template(
        "models/_model_details.html", model=model, model_json=json.dumps(_model_schema.dump(model)),
        state=load_states([model])[model.model_name], proof=report.proof(model), card_import=card_import,
        attempts=attempts.recent(model, limit=5), latest_failure=attempts.latest_failure(model),
        measurements=measurements.history(model, limit=5), copies=registry.copies(model),
        config_history=config_history.history(model), history_note=history_note, copies_note=copies_note,
        copies_refused=copies_refused,
        where_it_loads=compatibility.results(current_app, model), **host_jobs.offered(model),
        **preflight_views.section_values(model),
    ))
    response.headers["ETag"] = f'"{model.etag}"'
    return response


def load_states(models) -> dict[str, dict]:
    """Each model's load state (``_load_controls.html``), every lease read once for the whole page."""
    state_of = current_app.extensions["modelhub.supervisor"].states()
    return {model.model_name: state_of(model.model_name) for model in models}


def here_marks(models) -> dict[int, compatibility.Here]:
    """Each card's status on this host (``_here_mark.html``), read in one query for the whole page."""
    return compatibility.here_statuses(current_app, [model.id for model in models])
