"""Where models load: ``GET /api/models/{name}/compatibility`` (results per environment) and the
environments themselves, ``GET /api/environments`` and ``/api/environments/{id}``."""

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields

from modelhub import compatibility, registry
from modelhub.loading.schemas import CopyReadSchema
from modelhub.api.http import Blueprint
from modelhub.api.models import BUSY, NOT_FOUND, _document
from modelhub.fields import Choice, UtcDateTime
from modelhub.models import ATTEMPT_OUTCOMES
from modelhub.schemas import compatibility_status

blp = Blueprint("compatibility", __name__, url_prefix="/api",
                description="Where models load: results per environment, and the environments (fingerprints).")
NO_ENVIRONMENT = (404, "No environment with that id.")


class EnvironmentSchema(Schema):
    id = fields.Integer()
    fingerprint = fields.String(metadata={"description": "A digest of the facts that change how a model loads."})
    host = fields.String(metadata={"description": "MODELHUB_HOST_NAME of the host, else its host name."})
    description = fields.String(metadata={"description": "One line: host · GPU · runtime · transformers version."})
    facts = fields.Dict(metadata={
        "description": "Host, OS, WSL, Python, accelerator (vendor, devices with architecture, driver, ROCm), "
                       "torch runtime, library versions."})
    first_seen_at = UtcDateTime()
    last_seen_at = UtcDateTime(metadata={"description": "When a modelhub process last started in it."})
    current = fields.Boolean(metadata={"description": "Whether this server runs in it now."})


class EnvironmentResultSchema(Schema):
    environment_id = fields.Integer(allow_none=True, metadata={
        "description": "null: attempts recorded before environments were (where is not known)."})
    fingerprint = fields.String(allow_none=True)
    host = fields.String(allow_none=True)
    description = fields.String()
    status = compatibility_status(metadata={"description": "The model's status in this environment."})
    reason = fields.String(allow_none=True, metadata={
        "description": "Why a load that worked counts as degraded there (parts offloaded), when it does."})
    outcome = Choice(ATTEMPT_OUTCOMES, component="RunOutcome", metadata={
        "description": "The newest finished attempt there."})
    attempt_id = fields.Integer()
    finished_at = UtcDateTime(allow_none=True)
    config_version = fields.Integer(allow_none=True, metadata={
        "description": "The number of the load_config version it ran (GET /api/models/{name}/configs)."})
    config_version_id = fields.Integer(allow_none=True)
    load_config = fields.String(allow_none=True, metadata={"description": "The load_config text it ran."})
    copy_path = fields.String(allow_none=True, metadata={
        "description": "The copy of the model's files that newest attempt loaded (a folder, or a GGUF file); null: "
                       "not recorded (attempts before copies were, or files the worker took from the hub by id)."})
    copy = fields.Nested(CopyReadSchema, allow_none=True, metadata={
        "description": "That copy as the registry knows it now (its id, library, label, quantization: 'GGUF "
                       "Q4_K_M, LM Studio'), so a status says which files it was learned from; null with copy_path."})
    successes = fields.Integer()
    failures = fields.Integer()
    here = fields.Boolean(metadata={"description": "This server's current environment."})
    stale = fields.Boolean(metadata={
        "description": "An older environment of its host: the host's libraries or driver changed since."})
    counted = fields.Boolean(metadata={"description": "Whether the registry's status (the summary) counts it."})


class HereSchema(Schema):
    environment_id = fields.Integer(metadata={"description": "This server's environment."})
    status = compatibility_status(allow_none=True, metadata={
        "description": "The model's status in it; null: not loaded in it yet."})
    stale = fields.Boolean(metadata={
        "description": "No result in it, but some from an older environment of this host: it needs a retest."})


class CompatibilitySchema(Schema):
    model_name = fields.String()
    summary = compatibility_status(metadata={
        "description": "The model's compatibility_status: the best status of each host's newest environment "
                       "with a result, or what a user set since."})
    here = fields.Nested(HereSchema)
    environments = fields.List(fields.Nested(EnvironmentResultSchema), metadata={
        "description": "One row per environment it was loaded in: this server's first, then newest first."})


@blp.route("/models/<path:model_name>/compatibility")
class ModelCompatibility(MethodView):
    @blp.doc(operationId="getModelCompatibility")
    @blp.response(200, CompatibilitySchema)
    @_document(NOT_FOUND, BUSY)
    def get(self, model_name):
        """Where the model loads: its status in each environment (host, GPU, driver, library versions),
        with the config each ran and when, which result is this server's and which are stale."""
        return compatibility.where_it_loads(current_app, registry.get_model(model_name))


@blp.route("/environments")
class Environments(MethodView):
    @blp.doc(operationId="listEnvironments")
    @blp.response(200, EnvironmentSchema(many=True))
    @_document(BUSY)
    def get(self):
        """Every environment a host of this registry ran loads in, by host, newest first."""
        return compatibility.all_environments(current_app)


@blp.route("/environments/<int:environment_id>")
class EnvironmentView(MethodView):
    @blp.doc(operationId="getEnvironment")
    @blp.response(200, EnvironmentSchema)
    @_document(NO_ENVIRONMENT, BUSY)
    def get(self, environment_id):
        """One environment: its host and the facts its fingerprint is made of."""
        return compatibility.get_environment(current_app, environment_id)
