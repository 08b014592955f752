"""``/api/scan``: discover models in the cache locations; ``/api/models/{name}/copies``: where a model is;
``/api/models/{name}/primary-copy``: which of its copies a load reads when the request names none."""

from flask import current_app, url_for
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, validate

from modelhub import registry
from modelhub.api.http import Blueprint, if_match
from modelhub.api.models import BODY_ERRORS, BUSY, NOT_FOUND, PRECONDITION, _document, _model_response
from modelhub.discovery import locations_summary
from modelhub.exceptions import UnknownCopy
from modelhub.fields import StrictInteger
from modelhub.discovery.schemas import ModelCopySchema, ScanStatusSchema
from modelhub.schemas import ModelSchema

blp = Blueprint("discovery", __name__, url_prefix="/api", description="Discovering models on disk.")


def runner():
    return current_app.extensions["modelhub.scanner"]


@blp.route("/scan")
class Scan(MethodView):
    @blp.doc(operationId="startScan")
    @blp.response(202, ScanStatusSchema)
    @_document((409, "A scan is already running."))
    def post(self):
        """Scan the primary (Hugging Face) cache and the secondary roots in the background."""
        return runner().start(), 202, {"Location": url_for("discovery.Scan")}

    @blp.doc(operationId="getScanStatus")
    @blp.response(200, ScanStatusSchema)
    def get(self):
        """The running scan's progress, or the last scan's summary (models added, gone, back, problems) and
        every root it looks in: its library (HF cache, LM Studio, Ollama, ...), the copies and bytes it holds."""
        return locations_summary.with_roots(runner().status)


@blp.route("/models/<path:model_name>/copies")
class Copies(MethodView):
    @blp.doc(operationId="listCopies")
    @blp.response(200, ModelCopySchema(many=True))
    @_document(NOT_FOUND, BUSY)
    def get(self, model_name):
        """Every copy of the model's files found on disk: the library it lives in (HF cache, LM Studio, Ollama,
        text-generation-webui, a folder, a custom path), its size, format, quantization and completeness."""
        model = registry.get_model(model_name)
        return registry.copies(model)


class PrimaryCopySchema(Schema):
    """``PUT /api/models/{name}/primary-copy``: the copy a load that names none reads from now on."""

    copy_id = StrictInteger(required=True, validate=validate.Range(min=1), metadata={
        "description": "One of the ids of GET /api/models/{name}/copies, present on disk. Another model's copy, or "
                       "an unknown id, is a 409 naming the model's copies; so is a copy the latest scan did not "
                       "find."})


COPY_REFUSED = (409, "That copy_id names none of the model's copies (errors name the ones it has), or the copy is "
                     "missing: the latest scan did not find it; nothing was written.")


@blp.route("/models/<path:model_name>/primary-copy")
class PrimaryCopy(MethodView):
    @blp.doc(operationId="setPrimaryCopy")
    @blp.arguments(PrimaryCopySchema())
    @blp.response(200, ModelSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, COPY_REFUSED, PRECONDITION, BUSY, guarded=True)
    def put(self, body, model_name):
        """Choose which copy a load (or a measurement) reads when its request names no copy_id: the model's
        cache_path and cache_location become that copy's, one write that moves its version (ETag). A rescan
        keeps the choice while the copy is found; once it is gone, another present copy takes its place.
        Answered with the model, as GET /api/models/{name}."""
        try:
            model = registry.set_primary_copy(model_name, body["copy_id"], if_match=if_match())
        except UnknownCopy as unknown:
            abort(unknown.status, errors={"json": unknown.messages})
        return _model_response(model)
