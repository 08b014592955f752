"""The Import / Export page: a download of the whole registry, and an import that shows its plan (a dry
run) before anything is written. The same service functions as ``/api/export`` and ``/api/import``.

The form posts the file to ``/exchange/preview``; the plan comes back with an Apply button, which posts
the same form (the file is still in it) to ``/exchange/apply`` with the plan's digest, so what is
applied is exactly what was shown: a different file, another conflict choice or a registry changed in
between gives the new plan to review instead (409).
"""

from flask import Blueprint, make_response, render_template, request

from modelhub.messages import flatten_messages
from modelhub.exceptions import InvalidDocument, PlanChanged
from modelhub.exchange.document import export_totals, max_bytes, parse
from modelhub.exchange.merge import ON_CONFLICT, import_document

bp = Blueprint("exchange", __name__)


@bp.url_value_preprocessor
def _import_size_limit(endpoint, values):
    if endpoint in ("views.exchange.preview", "views.exchange.apply"):
        request.max_content_length = max_bytes()


@bp.route("/exchange")
def exchange_page():
    """The page: what an export holds, and the import form."""
    return _render()


@bp.post("/exchange/preview")
def preview():
    """A dry run of the uploaded file: what would change, and the Apply button."""
    return _import(dry_run=True)


@bp.post("/exchange/apply")
def apply():
    """Apply the import previewed with this plan_digest (else show the new plan)."""
    return _import(dry_run=False)


def _import(dry_run: bool):
    upload = request.files.get("document")
    on_conflict = request.form.get("on_conflict", "keep")
    if on_conflict not in ON_CONFLICT:
        return _render(errors=[f"on_conflict: Must be one of: {', '.join(ON_CONFLICT)}."], status=422)
    if upload is None or not upload.filename:
        return _render(errors=["Choose a file: a modelhub registry export or a compatibility report."], status=422)
    limit = max_bytes()
    try:
        kind, document = parse(upload.stream.read(limit + 1), limit)
    except InvalidDocument as error:
        return _render(errors=list(flatten_messages(error.messages)), filename=upload.filename, status=422)
    expected = None if dry_run else request.form.get("plan_digest", "")
    try:
        plan = import_document(kind, document, on_conflict=on_conflict, dry_run=dry_run, expected_digest=expected)
    except PlanChanged as changed:
        return _render(plan=changed.plan.result(dry_run=True), filename=upload.filename, notice=str(changed), status=409)
    return _render(plan=plan, filename=upload.filename)


def _render(status: int = 200, **context):
    if request.headers.get("HX-Request") and request.method == "POST":
        applied = context.get("plan") and not context["plan"]["dry_run"]
        totals = export_totals() if applied else None  # the export panel's figures, swapped out of band
        response = make_response(render_template("exchange/_import_plan.html", totals=totals, **context), status)
    else:
        response = make_response(render_template("exchange/exchange.html", totals=export_totals(), **context), status)
    response.vary.add("HX-Request")
    return response
