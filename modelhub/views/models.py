"""The Models page, its "load more" pages, one model's card and the details modal's content."""

import json

from flask import Blueprint, current_app, make_response, render_template, request
from marshmallow import EXCLUDE, ValidationError

from modelhub import compatibility, config_history, display, registry
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
_query_schema = ModelListQuerySchema(unknown=EXCLUDE)
_model_schema = ModelSchema()
STALE_FORM = ("someone else changed this model since this form was read. It now shows the model as it is: "
              "restore again if you still want to.")


@bp.route("/")
@bp.route("/models")
def models_page():
    """The Models page; with ``HX-Request`` (the filter bar), only the results are rendered."""
    try:
        query = filter_form_query(_query_schema, PAGE_SIZE)
    except ValidationError as error:
        return bad_request(error)
    page = registry.list_models(**query)
    context = {"page": page, "query": query, "has_models": page.total > 0 or registry.has_models(),
               "load_states": load_states(page.items), "here_marks": here_marks(page.items),
               "preflight_marks": preflight_views.marks(page.items), "copy_badges": copy_badges(page.items)}
    if request.headers.get("HX-Request"):
        response = make_response(render_template("models/_model_results.html", **context))
    else:
        response = make_response(render_template(
            "models/models.html", **context,
            scan=locations_summary.with_roots(current_app.extensions["modelhub.scanner"].status),
            plugin_reports=current_app.extensions["modelhub.plugins"].plugin_reports()))
    response.vary.add("HX-Request")
    return response


@bp.route("/models/more")
def more_models():
    """The next page of cards, asked for by the "load more" sentinel at the end of the list."""
    try:
        query = filter_form_query(_query_schema, PAGE_SIZE)
    except ValidationError as error:
        return bad_request(error)
    page = registry.list_models(**query)
    return render_template("models/_model_cards.html", page=page, query=query, load_states=load_states(page.items),
                           here_marks=here_marks(page.items), preflight_marks=preflight_views.marks(page.items),
                           copy_badges=copy_badges(page.items))


@bp.route("/models/<path:model_name>/card")
def model_card(model_name):
    """One card, re-rendered after the modal saved it."""
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
    """One model's card (``_model_card.html``) as it is now; ``load_error``: why a Load was refused."""
    model = registry.get_model(model_name)
    return render_template("models/_model_card.html", model=model, state=load_states([model])[model.model_name],
                           load_error=load_error, here_marks=here_marks([model]),
                           preflight_marks=preflight_views.marks([model]), copy_badges=copy_badges([model]))


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


def copy_badges(models) -> dict[int, list[display.CopyBadge]]:
    """Each card's location badges (``_copy_badges.html``): its copies read in one query for the whole page."""
    copies = locations_summary.copies_by_model([model.id for model in models])
    return {model.id: display.copy_badges(copies[model.id]) for model in models}


def here_marks(models) -> dict[int, compatibility.Here]:
    """Each card's status on this host (``_here_mark.html``), read in one query for the whole page."""
    return compatibility.here_statuses(current_app, [model.id for model in models])
