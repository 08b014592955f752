"""Loading through the API: ``/api/models/{name}/load``, ``/unload``, ``/attempts``, and ``/api/plugins``."""

from flask import current_app, url_for
from flask.views import MethodView

from modelhub import registry
from modelhub.api.http import Blueprint
from modelhub.api.models import BODY_ERRORS, BUSY, NOT_FOUND, _document
from modelhub.loading import attempts
from modelhub.schemas import (
    AttemptListSchema,
    AttemptSchema,
    AttemptsQuerySchema,
    LoadRequestSchema,
    LoadStateSchema,
    PluginSchema,
)

blp = Blueprint("loading", __name__, url_prefix="/api", description="Loading models, their attempts, the plugins.")
CONFLICT = (409, "Already loading; or marked incompatible (reset it to 'unknown' or send force); or not loaded; "
                "or this server's Python lacks torch/transformers (the message says what to install).")


def supervisor():
    return current_app.extensions["modelhub.supervisor"]


@blp.route("/models/<path:model_name>/load")
class Load(MethodView):
    @blp.doc(operationId="startLoad")
    @blp.arguments(LoadRequestSchema(), required=False)
    @blp.response(202, AttemptSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, CONFLICT, BUSY)
    def post(self, options, model_name):
        """Start loading the model in a worker process; follow it with GET .../attempts."""
        attempt = supervisor().load(model_name, **options)
        return attempt, 202, {"Location": url_for("loading.Attempts", model_name=model_name)}


@blp.route("/models/<path:model_name>/unload")
class Unload(MethodView):
    @blp.doc(operationId="unloadModel")
    @blp.response(200, LoadStateSchema)
    @_document(NOT_FOUND, CONFLICT, BUSY)
    def post(self, model_name):
        """Unload the model (its worker ends, freeing its memory); a load in progress is cancelled."""
        registry.get_model(model_name)
        supervisor().unload(model_name)
        return supervisor().state(model_name)


@blp.route("/models/<path:model_name>/attempts")
class Attempts(MethodView):
    @blp.doc(operationId="listAttempts")
    @blp.arguments(AttemptsQuerySchema(), location="query")
    @blp.response(200, AttemptListSchema)
    @_document(NOT_FOUND, BUSY)
    def get(self, query, model_name):
        """The model's load attempts, newest first, and whether it is loading or loaded now."""
        model = registry.get_model(model_name)
        return {"load_state": supervisor().state(model_name), "items": attempts.recent(model, query["limit"])}


@blp.route("/plugins")
class Plugins(MethodView):
    @blp.doc(operationId="listPlugins")
    @blp.response(200, PluginSchema(many=True))
    def get(self):
        """Installed plugins: their hooks, the load_config keys they own, and any error loading them."""
        return current_app.extensions["modelhub.plugins"].plugin_reports()
