"""``/api/models``: the registry's REST API (the paths, fields and statuses users' scripts rely on, plus list/create/delete)."""

from flask import url_for
from flask.views import MethodView

from modelhub import registry
from modelhub.api.http import Blueprint, etag_header, if_match
from modelhub.errors import ModelhubApi
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
BODY_ERRORS = (BAD_JSON, TOO_LARGE, NOT_JSON)
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag you read; the write happens only if the model is still at that version (else 412).",
}


# OpenAPI links from a created model to everything that can be done with it: clients (and the
# stateful fuzzer) learn that the name in the 201 body addresses these operations (by operationId).
MODEL_OPERATIONS = ("getModel", "updateModel", "deleteModel", "updateModelConfig", "updateModelMetadata", "startLoad",
                    "unloadModel", "listAttempts", "startBenchmark", "listMeasurements", "listCopies",
                    "importCardScores", "getCompatibilityReport")
MODEL_LINKS = {
    operation[0].upper() + operation[1:]: {"operationId": operation,
                                           "parameters": {"model_name": "$response.body#/model_name"}}
    for operation in MODEL_OPERATIONS
}


def _document(*errors, guarded: bool = False):
    """Declare the error responses an endpoint really returns, so the OpenAPI document lists them."""

    def decorate(view):
        for code, description in errors:
            view = blp.alt_response(code, schema=ModelhubApi.ERROR_SCHEMA, description=description)(view)
        return blp.doc(parameters=[IF_MATCH])(view) if guarded else view

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
        """Register a model."""
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
    @blp.response(200, ModelSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, PRECONDITION, BUSY, guarded=True)
    def patch(self, body, model_name):
        """Save config and metadata together: both are validated and written in one transaction, or neither."""
        changes = {**body.get("config", {}), **body.get("metadata", {})}
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
    @blp.response(200, ModelSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, PRECONDITION, BUSY, guarded=True)
    def patch(self, changes, model_name):
        """Update compatibility status, notes and load_config; fields not sent are left as they are."""
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
