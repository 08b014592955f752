"""Loading through the API: ``/api/models/{name}/load``, ``/unload``, ``/attempts``, ``/api/plugins``;
loads asked of another host (``/api/hosts``, ``/api/host-jobs``) and this host's ``/api/retest``."""

from flask import current_app, jsonify, url_for
from flask.views import MethodView
from flask_smorest import abort

from modelhub import registry
from modelhub.api.http import Blueprint
from modelhub.api.models import BODY_ERRORS, BUSY, NOT_FOUND, _document
from modelhub.exceptions import UnknownCopy, UnknownHost
from modelhub.loading import attempts, host_jobs
from modelhub.loading.schemas import (
    HostJobSchema,
    HostJobsQuerySchema,
    HostSchema,
    RetestStatusSchema,
    StartLoadSchema,
)
from modelhub.schemas import (
    AttemptListSchema,
    AttemptSchema,
    AttemptsQuerySchema,
    LoadStateSchema,
    PluginSchema,
)

blp = Blueprint("loading", __name__, url_prefix="/api", description="Loading models, their attempts, the plugins.")
CONFLICT = (409, "Already loading; or marked incompatible (reset it to 'unknown' or send force); or not loaded; "
                "or this server's Python lacks torch/transformers (the message says what to install); or, for "
                "another host, the same load already waits for it; or copy_id names none of the model's copies (errors "
                "name the ones it has), or a copy the latest scan did not find.")
UNKNOWN_HOST = (400, "host names no host of this registry (errors.json.host lists the known ones); nothing was queued.")
NO_JOB = (404, "No host job with that id.")
# A load answers the attempt started here, or the job queued for another host.
LOAD_ANSWER = {"oneOf": [{"$ref": "#/components/schemas/Attempt"}, {"$ref": "#/components/schemas/HostJob"}]}


def supervisor():
    return current_app.extensions["modelhub.supervisor"]


@blp.route("/models/<path:model_name>/load")
class Load(MethodView):
    @blp.doc(operationId="startLoad")
    @blp.arguments(StartLoadSchema(), required=False)
    @blp.response(202, LOAD_ANSWER, description="The attempt started here; with another host's name, the job "
                                                 "queued for that host (its modelhub picks it up).")
    @_document(*BODY_ERRORS, UNKNOWN_HOST, NOT_FOUND, CONFLICT, BUSY)
    def post(self, options, model_name):
        """Start loading the model in a worker process (follow it with GET .../attempts), or ask another host
        sharing this registry to load it (follow the job with GET /api/host-jobs/{id})."""
        host = options.pop("host", None)
        if not host_jobs.is_this_host(host):
            if "copy_id" in options:  # a path on this host's disks may not be one on that host's
                abort(422, errors={"json": {"copy_id": [
                    "A load asked of another host reads that host's copy (the model's cache_path there); copy_id "
                    "chooses a copy for loads on this host."]}})
            try:
                job = host_jobs.request_load(model_name, host, **options)
            except UnknownHost as unknown:
                abort(400, errors={"json": unknown.messages})
            return _answer(HostJobSchema().dump(job), url_for("loading.HostJob", job_id=job["id"]))
        attempt = with_copy_checked(lambda: supervisor().load(model_name, **options))
        return _answer(AttemptSchema().dump(attempt), url_for("loading.Attempts", model_name=model_name))


def with_copy_checked(start):
    """``start()`` a load or a measurement; a copy_id that names none of the model's copies is a 409 with
    the message on that field, in the shape of every validation error."""
    try:
        return start()
    except UnknownCopy as unknown:
        abort(unknown.status, errors={"json": unknown.messages})


def _answer(body: dict, location: str):
    """A 202 whose body is one of two schemas (the response decorator dumps one only)."""
    return jsonify(body), 202, {"Location": location}


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


@blp.route("/hosts")
class Hosts(MethodView):
    @blp.doc(operationId="listHosts")
    @blp.response(200, HostSchema(many=True))
    @_document(BUSY)
    def get(self):
        """The hosts sharing this registry (each once its modelhub has run), their newest environment, when
        each was last seen running, and which one answers."""
        return host_jobs.hosts()


@blp.route("/host-jobs")
class HostJobs(MethodView):
    @blp.doc(operationId="listHostJobs")
    @blp.arguments(HostJobsQuerySchema(), location="query")
    @blp.response(200, HostJobSchema(many=True))
    @_document(BUSY)
    def get(self, query):
        """Loads asked of hosts, newest first (the last 100); ``?host=`` and ``?state=`` narrow them."""
        return host_jobs.listing(**query)


@blp.route("/host-jobs/<int:job_id>")
class HostJob(MethodView):
    @blp.doc(operationId="getHostJob")
    @blp.response(200, HostJobSchema)
    @_document(NO_JOB, BUSY)
    def get(self, job_id):
        """A load asked of another host: queued, claimed, finished (run_id: the attempt it started; its
        outcome beside it) or failed (error), or cancelled."""
        return host_jobs.get(job_id)

    @blp.doc(operationId="cancelHostJob")
    @blp.response(200, HostJobSchema)
    @_document(NO_JOB, (409, "The job is no longer queued: its host has claimed it (or it ended)."), BUSY)
    def delete(self, job_id):
        """Cancel a job its host has not claimed yet."""
        return host_jobs.cancel(job_id)


def retest_runner():
    return current_app.extensions["modelhub.retest"]


@blp.route("/retest")
class Retest(MethodView):
    @blp.doc(operationId="getRetest")
    @blp.response(200, RetestStatusSchema)
    @_document(BUSY)
    def get(self):
        """This host's Retest: the models whose results here come only from an older environment of this host
        (a library or driver upgrade since), and the progress or the results of the last retest."""
        return retest_runner().status()

    @blp.doc(operationId="startRetest")
    @blp.response(202, RetestStatusSchema)
    @_document((409, "A retest is already running on this host, no model needs one, or the ML libraries are not "
                     "installed."), BUSY)
    def post(self):
        """Load every model needing a retest on this host, one after another, in the background (each unloaded
        again unless it was loaded before); follow it with GET /api/retest."""
        return retest_runner().start(), 202, {"Location": url_for("loading.Retest")}

    @blp.doc(operationId="stopRetest")
    @blp.response(200, RetestStatusSchema)
    @_document((409, "No retest is running on this host."), BUSY)
    def delete(self):
        """Stop the retest after the model loading now (that load ends as it would; cancel it with unload)."""
        return retest_runner().stop()
