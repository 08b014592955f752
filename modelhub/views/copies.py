"""The details modal's "Copies on disk": "Load this copy" loads one chosen copy of a model (the same choice
as ``copy_id`` in ``POST /api/models/{name}/load``), answered with the model's card in its loading state;
"Make default" makes a copy the one a plain Load reads (``PUT /api/models/{name}/primary-copy``'s service),
answered with the table re-rendered."""

from flask import Blueprint, current_app, make_response, render_template

from modelhub import display, registry
from modelhub.api.http import if_match
from modelhub.exceptions import CopyMissing, LoadConflict, PreconditionFailed, UnknownCopy
from modelhub.views.models import card, details, load_states

bp = Blueprint("copies", __name__)
STALE_FORM = ("Not changed: someone else changed this model since this form was read. It now shows the model as it "
              "is: make the copy default again if you still want to.")


@bp.post("/models/<path:model_name>/copies/<int:copy_id>/load")
def load_copy(model_name, copy_id):
    """Start loading copy ``copy_id``; a refusal (a missing copy, one the model does not have, a load
    already running) is shown on the card, as the card's own Load button shows it."""
    try:
        current_app.extensions["modelhub.supervisor"].load(model_name, copy_id=copy_id)
    except (LoadConflict, UnknownCopy) as refusal:
        return card(model_name, str(refusal))
    return card(model_name)


@bp.post("/models/<path:model_name>/copies/<int:copy_id>/primary")
def make_default(model_name, copy_id):
    """Make copy ``copy_id`` the one a plain Load reads, guarded by the form's ETag (If-Match). Answers the
    table with the mark moved, the form's Cache Location out of band and the model's new ETag, which the
    form takes for its next Save (static/js/modelhub.js); the cards and "Will it load here?" follow the
    events in HX-Trigger. A copy gone missing (or not the model's) answers the table as it is, saying why;
    a model changed since the form was read, the whole form as it is now (as Restore does)."""
    try:
        model = registry.set_primary_copy(model_name, copy_id, if_match=if_match())
    except PreconditionFailed as refusal:
        response = details(model_name, copies_note=STALE_FORM, copies_refused=True)
        response.status_code = refusal.status
        response.headers.update({"HX-Retarget": "#model-form", "HX-Reswap": "outerHTML"})
        return response
    except (UnknownCopy, CopyMissing) as refusal:
        return _copies_table(registry.get_model(model_name), f"Not changed: {refusal}", refused=True), refusal.status
    copies = registry.copies(model)
    note = f"Load now reads this model from {display.copy_named(copies, model.cache_path)}."
    response = make_response(_copies_table(model, note, copies)
                             + render_template("models/_cache_location.html", model=model, oob=True))
    response.headers["ETag"] = f'"{model.etag}"'
    response.headers["HX-Trigger"] = "modelsChanged, primaryCopyChanged"
    return response


def _copies_table(model, note: str, copies=None, refused: bool = False) -> str:
    """``_copies.html`` as the modal shows it, with ``note`` in its caption (``refused``: why nothing changed)."""
    return render_template("models/_copies.html", model=model, copies=copies or registry.copies(model),
                           copies_note=note, copies_refused=refused, state=load_states([model])[model.model_name])
