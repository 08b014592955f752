"""Export and import through the API: ``GET /api/export``, ``POST /api/import`` (a registry export or a
compatibility report, with a dry run) and ``GET /api/models/{name}/report``."""

from datetime import UTC, datetime

from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from webargs.flaskparser import is_json_request

from modelhub import registry
from modelhub.api.http import Blueprint
from modelhub.api.models import BAD_JSON, BUSY, NOT_FOUND, NOT_JSON, _document
from modelhub.exceptions import DocumentTooLarge, InvalidDocument, MalformedDocument
from modelhub.exchange.document import build_document, dumps, max_bytes, parse
from modelhub.exchange.merge import ON_CONFLICT, import_document
from modelhub.exchange.report import build_report
from modelhub.exchange.schemas import CompatibilityReport, RegistryDocument

blp = Blueprint("exchange", __name__, url_prefix="/api", description="Export and import the registry; compatibility reports.")

TOO_LARGE = (413, "The file is larger than the import limit (MODELHUB_IMPORT_MAX_BYTES, 64 MiB by default).")
INVALID = (422, "The file is not a valid export or report (per-field messages); nothing was imported.")
PLAN_CHANGED = (409, "expect_plan no longer matches what the import would do; nothing was imported.")
# download() offers the document as a file.
DOWNLOAD_HEADERS = {"Content-Disposition": {"$ref": "#/components/headers/Content-Disposition"}}
NO_PROOF = (409, "The model never loaded successfully: there is no working load_config to report.")
IMPORT_BODY = {
    "required": True,
    "description": "A registry export (format modelhub-registry) or a compatibility report "
                   "(format modelhub-compatibility-report), exactly as exported.",
    "content": {"application/json": {"schema": {"type": "object", "oneOf": [
        {"$ref": "#/components/schemas/RegistryDocument"}, {"$ref": "#/components/schemas/CompatibilityReport"}]},
        "example": {"format": "modelhub-registry", "version": 2, "models": [{"model_name": "microsoft/phi-2"}]}}},
}


class ImportQuerySchema(Schema):
    dry_run = fields.Boolean(load_default=False, metadata={"description": "Only say what would change."})
    on_conflict = fields.String(
        load_default="keep", validate=validate.OneOf(ON_CONFLICT),
        metadata={"description": "A field set here and in the file to different values: keep ours, or replace it."})
    expect_plan = fields.String(
        validate=validate.Regexp(r"^[0-9a-f]{64}$", error="Must be the plan_digest of a dry run."),
        metadata={"description": "A dry run's plan_digest: import only if the plan is still that one (else 409)."})


class ChangeSchema(Schema):
    field = fields.String()
    from_ = fields.Raw(data_key="from", allow_none=True)
    to = fields.Raw(allow_none=True)


class ConflictSchema(Schema):
    field = fields.String()
    local = fields.Raw(allow_none=True)
    imported = fields.Raw(allow_none=True)
    kept = fields.String(metadata={"description": "local or imported"})


class ModelPlanSchema(Schema):
    model_name = fields.String()
    action = fields.String(metadata={"description": "add, update or unchanged (listed when it has conflicts)"})
    changes = fields.List(fields.Nested(ChangeSchema))
    conflicts = fields.List(fields.Nested(ConflictSchema))
    attempts_added = fields.Integer()
    measurements_added = fields.Integer()
    config_versions_added = fields.Integer(metadata={"description": "load_config versions added to its history"})
    autoconfigure_runs_added = fields.Integer(metadata={"description": "finished auto-configure runs added"})


class ImportSummarySchema(Schema):
    models_added = fields.Integer()
    models_updated = fields.Integer()
    models_unchanged = fields.Integer()
    attempts_added = fields.Integer()
    measurements_added = fields.Integer()
    config_versions_added = fields.Integer()
    autoconfigure_runs_added = fields.Integer()
    conflicts = fields.Integer()


class ImportResultSchema(Schema):
    format = fields.String()
    dry_run = fields.Boolean()
    on_conflict = fields.String()
    summary = fields.Nested(ImportSummarySchema)
    models = fields.List(fields.Nested(ModelPlanSchema), metadata={"description": "Models added, changed or in conflict"})
    plan_digest = fields.String(metadata={"description": "Send as expect_plan to apply exactly this plan."})


@blp.url_value_preprocessor
def _import_size_limit(endpoint, values):
    # Runs before any view or request hook reads the body: an import may be far bigger than the
    # 1 MiB every other request is held to.
    if endpoint == "exchange.Import":
        request.max_content_length = max_bytes()


def download(document: dict, filename: str) -> Response:
    """The document's exact text (the same bytes ``modelhub export`` writes), offered as a file."""
    response = Response(dumps(document), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@blp.route("/export")
class Export(MethodView):
    @blp.doc(operationId="exportRegistry")
    @blp.response(200, RegistryDocument, headers=DOWNLOAD_HEADERS)
    @_document(BUSY)
    def get(self):
        """The whole registry as a versioned JSON document: models, load configs, notes, scores with their
        provenance, load attempts and measurements."""
        return download(build_document(), f"modelhub-registry-{today()}.json")


@blp.route("/import")
class Import(MethodView):
    @blp.doc(operationId="importRegistry")
    @blp.arguments(ImportQuerySchema(), location="query")
    @blp.response(200, ImportResultSchema)
    @blp.doc(requestBody=IMPORT_BODY)
    @_document(BAD_JSON, TOO_LARGE, NOT_JSON, PLAN_CHANGED, INVALID, BUSY)
    def post(self, query):
        """Import a registry export or a compatibility report: models are matched by name, nothing is deleted
        and no value is cleared; the whole file is checked first and imported in one transaction."""
        body = request.get_data(cache=True)  # 413 past the import limit
        if body and not is_json_request(request):
            abort(415, message="Send the file as the body, with 'Content-Type: application/json'.")
        try:
            kind, document = parse(body, max_bytes())
        except DocumentTooLarge as error:
            abort(413, errors={"json": error.messages})
        except MalformedDocument as error:
            abort(400, errors={"json": error.messages})
        except InvalidDocument as error:
            abort(422, errors={"json": error.messages})
        return import_document(kind, document, on_conflict=query["on_conflict"], dry_run=query["dry_run"],
                               expected_digest=query.get("expect_plan"))  # PlanChanged: 409


@blp.route("/models/<path:model_name>/report")
class Report(MethodView):
    @blp.doc(operationId="getCompatibilityReport")
    @blp.response(200, CompatibilityReport, headers=DOWNLOAD_HEADERS)
    @_document(NOT_FOUND, NO_PROOF, BUSY)
    def get(self, model_name):
        """The model's compatibility report: the load_config of its latest successful load and the
        environment it loaded in; import it on another machine with POST /api/import."""
        report = build_report(registry.get_model(model_name))  # NoProof: 409
        return download(report, report_filename(model_name))


def report_filename(model_name: str) -> str:
    return f"modelhub-report-{model_name.replace('/', '--')}.json"
