"""Will it load here, on the pages: the details modal's "Will it load here?" section
(``preflight/_preflight.html``), re-rendered as the user edits the load config (htmx, debounced, with the
text typed and not saved), and each card's fits/tight/won't-fit mark (``preflight/_mark.html``)."""

from flask import Blueprint, current_app, render_template, request
from marshmallow import EXCLUDE, ValidationError

from modelhub import preflight, registry
from modelhub.messages import flatten_messages
from modelhub.schemas import PreflightQuerySchema

bp = Blueprint("preflight", __name__)
_query_schema = PreflightQuerySchema(unknown=EXCLUDE)


@bp.route("/models/<path:model_name>/preflight")
def preflight_section(model_name):
    """The section for the load config sent (the editor's text, not saved), else the saved one. A text the
    API would refuse answers 422 with the section saying why, field by field, in place of the verdict
    (static/js/modelhub.js swaps it in: typing half a JSON object is not an error page)."""
    model = registry.get_model(model_name)
    try:
        query = _query_schema.load(request.args)
    except ValidationError as error:
        return render_template("preflight/_preflight.html", model=model, preflight=None,
                               preflight_errors=list(flatten_messages(error.messages))), 422
    return render_template("preflight/_preflight.html", model=model,
                           **section_values(model, query.get("load_config"), query.get("context")))


def section_values(model, load_config: dict | None = None, context_tokens: int | None = None) -> dict:
    """What ``_preflight.html`` shows: the preflight of ``load_config`` (None: the saved one)."""
    return {"preflight": preflight.check(current_app, model, load_config=load_config, context_tokens=context_tokens),
            "preflight_errors": None}


def marks(models) -> dict[int, dict]:
    """Each card's mark (``_mark.html``): model id -> verdict and reason, computed once for the whole page."""
    return preflight.marks(current_app, list(models))
