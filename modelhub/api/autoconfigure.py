"""Auto-configure through the API: ``/api/models/{name}/autoconfigure`` (start, follow, stop) and
``/api/autoconfigure-runs/{id}`` (one run; ``/apply`` makes its result the model's load_config)."""

from flask import current_app, url_for
from flask.views import MethodView

from modelhub import registry
from modelhub.api.http import Blueprint
from modelhub.api.models import BODY_ERRORS, BUSY, NOT_FOUND, _document
from modelhub.autoconfigure import runs
from modelhub.autoconfigure.schemas import AutoconfigureRunListSchema, AutoconfigureRunSchema, StartAutoconfigureSchema

blp = Blueprint("autoconfigure", __name__, url_prefix="/api",
                description="Auto-configure: search for a load_config that loads, one real try after another.")
START_CONFLICT = (409, "A search already runs for this model, the model is loading or being measured, or this "
                       "server's Python lacks torch/transformers (the message says what to install).")
STOP_CONFLICT = (409, "No search is running for this model.")
APPLY_CONFLICT = (409, "The run found no config that loads, or its config was applied already.")
NO_RUN = (404, "No auto-configure run with that id.")


def runner():
    return current_app.extensions["modelhub.autoconfigure"]


@blp.route("/models/<path:model_name>/autoconfigure")
class ModelAutoconfigure(MethodView):
    @blp.doc(operationId="listAutoconfigureRuns")
    @blp.response(200, AutoconfigureRunListSchema)
    @_document(NOT_FOUND, BUSY)
    def get(self, model_name):
        """The model's auto-configure runs, newest first: the one running now with its progress (try k of N,
        each try's config, outcome and cause), and the earlier ones with their results."""
        return {"items": runs.of_model(model_name)}

    @blp.doc(operationId="startAutoconfigure")
    @blp.arguments(StartAutoconfigureSchema(), required=False)
    @blp.response(202, AutoconfigureRunSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, START_CONFLICT, BUSY)
    def post(self, options, model_name):
        """Search for a load_config that loads the model here, starting from its current one: each try is a real
        load in its own worker; after a failure the next config comes from its cause (out of memory: offload,
        then 8-bit, then 4-bit; an attention error: eager; no bf16: float16, then float32; ...). Follow it with
        GET .../autoconfigure; the first config that loads is proposed (or applied, with apply)."""
        run = runner().start(model_name, **(options or {}))
        return run, 202, {"Location": url_for("autoconfigure.AutoconfigureRunView", run_id=run.id)}

    @blp.doc(operationId="stopAutoconfigure")
    @blp.response(200, AutoconfigureRunSchema)
    @_document(NOT_FOUND, STOP_CONFLICT, BUSY)
    def delete(self, model_name):
        """Stop the model's running search; the try loading now is cut short (recorded as interrupted)."""
        registry.get_model(model_name)
        return runner().stop(model_name)


# Beyond what a database integer holds no run can exist (SQLite and PostgreSQL would refuse the query): 404.
@blp.route("/autoconfigure-runs/<int(max=2147483647):run_id>")
class AutoconfigureRunView(MethodView):
    @blp.doc(operationId="getAutoconfigureRun")
    @blp.response(200, AutoconfigureRunSchema)
    @_document(NO_RUN, BUSY)
    def get(self, run_id):
        """One auto-configure run: its state, every try, and its result with the diff applying it would make."""
        return runs.get(run_id)


@blp.route("/autoconfigure-runs/<int(max=2147483647):run_id>/apply")
class ApplyAutoconfigure(MethodView):
    @blp.doc(operationId="applyAutoconfigureResult")
    @blp.response(201, AutoconfigureRunSchema)
    @_document(NO_RUN, APPLY_CONFLICT, BUSY)
    def post(self, run_id):
        """Make the run's result the model's load_config: a new version (source auto-configure) in its history,
        which POST .../configs/{number}/restore rolls back."""
        return runner().apply(run_id, via="api"), 201
