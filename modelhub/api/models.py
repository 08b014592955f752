"""``/api/models``: the registry's REST API (the paths, fields and statuses users' scripts rely on, plus list/create/delete)."""

from flask import url_for
from flask.views import MethodView
from marshmallow import EXCLUDE, Schema, fields, validate

from modelhub import config_history, registry
from modelhub.api.http import Blueprint, etag_header, if_match
from modelhub.errors import ModelhubApi
from modelhub.fields import Choice, UtcDateTime
from modelhub.models import CONFIG_SOURCES
from modelhub.schemas import (
    CombinedUpdateSchema,
    ConfigUpdateSchema,
    MetadataUpdateSchema,
    ModelCreateSchema,
    ModelListQuerySchema,
    ModelListSchema,
    ModelSchema,
)

blp = Blueprint("models", __name__, url_prefix="/api/models", description="The model registry.")

BAD_JSON = (400, "The body is not valid JSON.")
TOO_LARGE = (413, "The body is larger than the limit (1 MiB).")
NOT_JSON = (415, "The body is not declared as JSON.")
NOT_FOUND = (404, "No model with that name.")
DUPLICATE = (409, "A model with that name is already registered.")
PRECONDITION = (412, "If-Match no longer matches: the model changed since it was read; nothing was written.")
BUSY = (503, "The database is busy; retry after the Retry-After delay.")
NO_VERSION = (404, "No model with that name, or it has no load_config version with that number.")
ALREADY_IN_FORCE = (409, "That version's load_config is the one in force already: nothing was written.")
NO_LONGER_VALID = (422, "That version's load_config would be refused today (a key no installed plugin knows).")
BODY_ERRORS = (BAD_JSON, TOO_LARGE, NOT_JSON)
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag you read; the write happens only if the model is still at that version (else 412).",
}

# The path's number is matched as any text, so that /configs/abc answers 404 (no such version) rather
# than falling through to another route; the document says what a version number is.
VERSION_NUMBER = {"in": "path", "name": "number", "required": True, "description": "The version's number.",
                  "schema": {"type": "integer", "minimum": 1, "maximum": config_history.MAX_NUMBER}}


EDIT_VIAS = ("api", "page")
EDIT_SOURCES = ("typed", "suggestion")


class EditOriginSchema(Schema):
    """Optional headers saying who made a load_config change (its version's ``via`` and ``source``)."""

    class Meta:
        unknown = EXCLUDE  # every other header

    via = fields.String(data_key="X-Modelhub-Via", load_default="api", validate=validate.OneOf(EDIT_VIAS))
    source = fields.String(data_key="X-Load-Config-Source", load_default="typed",
                           validate=validate.OneOf(EDIT_SOURCES))


# The same headers for the OpenAPI document (the guarded writes' parameters are written out by hand).
EDIT_ORIGIN = [
    {"in": "header", "name": "X-Modelhub-Via", "required": False, "schema": {"type": "string", "enum": list(EDIT_VIAS)},
     "description": "page: sent by the details modal; api (the default) otherwise. Recorded with the load_config "
                    "version the write makes (GET .../configs)."},
    {"in": "header", "name": "X-Load-Config-Source", "required": False,
     "schema": {"type": "string", "enum": list(EDIT_SOURCES)},
     "description": "suggestion: the load_config sent is a failed load's suggestion as it was applied (the modal's "
                    "Apply button); typed (the default) otherwise."},
]


class KeyValueSchema(Schema):
    key = fields.String(metadata={"description": "The key; nested keys joined with '.'."})
    value = fields.Raw(allow_none=True)


class KeyChangeSchema(Schema):
    key = fields.String(metadata={"description": "The key; nested keys joined with '.'."})
    from_ = fields.Raw(data_key="from", attribute="from", allow_none=True)
    to = fields.Raw(allow_none=True)


class ConfigDiffSchema(Schema):
    """What changed from the version before (the first version: from the system defaults)."""

    added = fields.List(fields.Nested(KeyValueSchema))
    removed = fields.List(fields.Nested(KeyValueSchema))
    changed = fields.List(fields.Nested(KeyChangeSchema))
    only_formatting = fields.Boolean(metadata={"description": "The texts differ, the settings do not."})
    comparable = fields.Boolean(metadata={"description": "False when a text is not a JSON object (no key diff)."})
    text = fields.String(metadata={"description": "A unified diff of the two texts as saved; empty if equal."})


class LoadCountsSchema(Schema):
    success = fields.Integer(dump_default=0)
    failure = fields.Integer(dump_default=0)
    interrupted = fields.Integer(dump_default=0)
    running = fields.Integer(dump_default=0)


class ConfigVersionSchema(Schema):
    """One version of a model's load_config."""

    number = fields.Integer(metadata={"description": "1, 2, ... per model, in the order they were recorded."})
    load_config = fields.String(allow_none=True, metadata={"description": "The text as saved; null: defaults."})
    source = Choice(CONFIG_SOURCES, component="ConfigSource", metadata={"description": "What made it."})
    via = fields.String(allow_none=True, metadata={"description": "api, page, cli, import or scan (null: unknown)."})
    host = fields.String(allow_none=True, metadata={"description": "The host whose modelhub recorded it."})
    created_at = UtcDateTime()
    restored_from = fields.Integer(allow_none=True, metadata={"description": "The version a restore copied."})
    previous = fields.Integer(allow_none=True, metadata={"description": "The version the diff is against."})
    current = fields.Boolean(metadata={"description": "The load_config in force now."})
    diff = fields.Nested(ConfigDiffSchema)
    loads = fields.Nested(LoadCountsSchema, metadata={"description": "Load attempts that ran it, by outcome."})


class ConfigHistorySchema(Schema):
    model_name = fields.String()
    current = fields.Integer(allow_none=True, metadata={
        "description": "The version in force; null when load_config was changed outside modelhub."})
    items = fields.List(fields.Nested(ConfigVersionSchema), attribute="versions", metadata={
        "description": "Newest first."})


# OpenAPI links from a created model to everything that can be done with it: clients (and the
# stateful fuzzer) learn that the name in the 201 body addresses these operations (by operationId).
MODEL_OPERATIONS = ("getModel", "updateModel", "deleteModel", "updateModelConfig", "updateModelMetadata", "startLoad",
                    "unloadModel", "listAttempts", "startBenchmark", "listMeasurements", "listCopies",
                    "importCardScores", "getCompatibilityReport", "listConfigVersions", "getModelPreflight",
                    "listAutoconfigureRuns", "startAutoconfigure")
MODEL_LINKS = {
    operation[0].upper() + operation[1:]: {"operationId": operation,
                                           "parameters": {"model_name": "$response.body#/model_name"}}
    for operation in MODEL_OPERATIONS
}


def _document(*errors, guarded: bool = False, headers: tuple = ()):
    """Declare the error responses an endpoint really returns, so the OpenAPI document lists them, and
    the request headers it reads (If-Match for a guarded write)."""

    def decorate(view):
        for code, description in errors:
            view = blp.alt_response(code, schema=ModelhubApi.ERROR_SCHEMA, description=description)(view)
        parameters = [*([IF_MATCH] if guarded else []), *headers]
        return blp.doc(parameters=parameters)(view) if parameters else view

    return decorate


def _model_response(row, status: int = 200, extra_headers: dict | None = None):
    return row, status, {**etag_header(row), **(extra_headers or {})}


@blp.route("")
class Models(MethodView):
    @blp.doc(operationId="listModels")
    @blp.arguments(ModelListQuerySchema(), location="query")
    @blp.response(200, ModelListSchema)
    @_document(BUSY)
    def get(self, query):
        """List models: filter by status, search by name, sort by any column, paginate."""
        page = registry.list_models(**query)
        pagination = {"total": page.total, "page": page.page, "per_page": page.per_page, "pages": page.pages}
        return {"items": page.items, "pagination": pagination}

    @blp.doc(operationId="registerModel")
    @blp.arguments(ModelCreateSchema())
    @blp.response(201, ModelSchema)
    @blp.doc(responses={201: {"links": MODEL_LINKS}})
    @_document(DUPLICATE, *BODY_ERRORS, BUSY)
    def post(self, fields):
        """Register a model (version 1 of its load_config history)."""
        with config_history.made_by("created", via="api"):
            row = registry.create_model(fields)
        location = url_for("models.Model", model_name=row.model_name)
        return _model_response(row, 201, {"Location": location})


@blp.route("/<model_name:model_name>")
class Model(MethodView):
    @blp.doc(operationId="getModel")
    @blp.response(200, ModelSchema)
    @_document(NOT_FOUND, BUSY)
    def get(self, model_name):
        """One model."""
        return _model_response(registry.get_model(model_name))

    @blp.doc(operationId="updateModel")
    @blp.arguments(CombinedUpdateSchema())
    @blp.arguments(EditOriginSchema(), location="headers")
    @blp.response(200, ModelSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, PRECONDITION, BUSY, guarded=True, headers=EDIT_ORIGIN)
    def patch(self, body, origin, model_name):
        """Save config and metadata together: both are validated and written in one transaction, or neither."""
        changes = {**body.get("config", {}), **body.get("metadata", {})}
        with config_history.made_by(origin["source"], via=origin["via"]):
            return _model_response(registry.update_model(model_name, changes, if_match=if_match()))

    @blp.doc(operationId="deleteModel")
    @blp.response(204)
    @_document(NOT_FOUND, PRECONDITION, BUSY, guarded=True)
    def delete(self, model_name):
        """Remove a model from the registry (its files on disk are not touched)."""
        registry.delete_model(model_name, if_match=if_match())


@blp.route("/<path:model_name>/config")
class ModelConfig(MethodView):
    @blp.doc(operationId="updateModelConfig")
    @blp.arguments(ConfigUpdateSchema())
    @blp.arguments(EditOriginSchema(), location="headers")
    @blp.response(200, ModelSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, PRECONDITION, BUSY, guarded=True, headers=EDIT_ORIGIN)
    def patch(self, changes, origin, model_name):
        """Update compatibility status, notes and load_config; fields not sent are left as they are."""
        with config_history.made_by(origin["source"], via=origin["via"]):
            return _model_response(registry.update_model(model_name, changes, if_match=if_match()))


@blp.route("/<path:model_name>/metadata")
class ModelMetadata(MethodView):
    @blp.doc(operationId="updateModelMetadata")
    @blp.arguments(MetadataUpdateSchema())
    @blp.response(200, ModelSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, PRECONDITION, BUSY, guarded=True)
    def patch(self, changes, model_name):
        """Update benchmark metrics; fields not sent are left as they are, null clears one."""
        return _model_response(registry.update_model(model_name, changes, if_match=if_match()))


@blp.route("/<path:model_name>/configs")
class ModelConfigVersions(MethodView):
    @blp.doc(operationId="listConfigVersions")
    @blp.response(200, ConfigHistorySchema)
    @_document(NOT_FOUND, BUSY)
    def get(self, model_name):
        """The model's load_config history, newest first: every version, who or what made it, when, and
        what changed since the version before it."""
        return config_history.history(registry.get_model(model_name))


@blp.route("/<path:model_name>/configs/<number>", parameters=[VERSION_NUMBER])
class ModelConfigVersion(MethodView):
    @blp.doc(operationId="getConfigVersion")
    @blp.response(200, ConfigVersionSchema)
    @_document(NO_VERSION, BUSY)
    def get(self, model_name, number):
        """One version of the model's load_config, with its diff against the version before it."""
        return config_history.version_view(registry.get_model(model_name), number)


@blp.route("/<path:model_name>/configs/<number>/restore", parameters=[VERSION_NUMBER])
class RestoreConfigVersion(MethodView):
    @blp.doc(operationId="restoreConfigVersion")
    @blp.response(201, ConfigVersionSchema)
    @_document(NO_VERSION, PRECONDITION, ALREADY_IN_FORCE, NO_LONGER_VALID, BUSY, guarded=True)
    def post(self, model_name, number):
        """Make an old version's load_config the model's again: a new version equal to it (source
        ``restore``). If-Match as for every write; the answer's ETag is the model's new one."""
        restored = config_history.restore(model_name, number, if_match=if_match(), via="api")
        location = url_for("models.ModelConfigVersion", model_name=model_name, number=restored.number)
        return restored, 201, {**etag_header(registry.get_model(model_name)), "Location": location}
