"""``/api/scan``: discover models in the cache locations; ``/api/models/{name}/copies``: where a model is."""

from flask import current_app, url_for
from flask.views import MethodView

from modelhub import registry
from modelhub.api.http import Blueprint
from modelhub.discovery import locations_summary
from modelhub.api.models import BUSY, NOT_FOUND, _document
from modelhub.schemas import ModelCopySchema, ScanStatusSchema

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
