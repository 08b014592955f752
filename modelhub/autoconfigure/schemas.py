"""The API's schemas for auto-configure: starting a run, and a run with its chain of tries."""

from marshmallow import Schema, fields, validate

from modelhub import models as m
from modelhub.autoconfigure import runs
from modelhub.autoconfigure.runner import DEFAULT_MAX_SECONDS, DEFAULT_MAX_TRIES, diff_against
from modelhub.extensions import db
from modelhub.fields import Choice, StrictBoolean, StrictFloat, StrictInteger, UtcDateTime
from modelhub.loading.types import FAILURE_KINDS
from modelhub.schemas import compatibility_status

MAX_TRIES = 20


class StartAutoconfigureSchema(Schema):
    """``POST /api/models/{name}/autoconfigure``; the body is optional."""

    max_tries = StrictInteger(load_default=DEFAULT_MAX_TRIES, validate=validate.Range(min=1, max=MAX_TRIES),
                              metadata={"description": "At most this many loads, the current config's included."})
    max_seconds = StrictFloat(load_default=DEFAULT_MAX_SECONDS, validate=validate.Range(min=10, max=24 * 3600),
                              metadata={"description": "Wall-clock budget of the whole search, in seconds."})
    apply = StrictBoolean(load_default=False, metadata={
        "description": "Make the config that loads the model's load_config as soon as it is found (a new version, "
                       "source auto-configure, which can be restored back)."})


class TrySchema(Schema):
    """One try of the search: the config, why it was chosen, and how it ended."""

    config = fields.Dict(metadata={"description": "The load_config tried."})
    why = fields.String(metadata={"description": "Why this config was tried (the rule or plugin that proposed it)."})
    changes = fields.Dict(allow_none=True, metadata={"description": "What it changed from the try before (null removes)."})
    limitation = fields.String(allow_none=True, metadata={"description": "What this config gives up, if it loads."})
    attempt_id = fields.Integer(allow_none=True, metadata={"description": "Its load attempt (GET .../attempts)."})
    outcome = fields.String(metadata={"description": "running, success, failure, interrupted (cut short: "
                                                     "stopped, or the server stopped), skipped (not loaded: preflight "
                                                     "said it cannot fit or load here), or not started."})
    kind = Choice(FAILURE_KINDS, component="FailureKind", allow_none=True)
    cause = fields.String(allow_none=True, metadata={"description": "Why it failed, for people."})
    status = fields.String(allow_none=True)


class ProposedDiffSchema(Schema):
    added = fields.List(fields.Dict(), metadata={"description": "{key, value} per key added."})
    removed = fields.List(fields.Dict(), metadata={"description": "{key, value} per key removed."})
    changed = fields.List(fields.Dict(), metadata={"description": "{key, from, to} per key changed."})
    text = fields.String(metadata={"description": "The unified diff of the two texts."})


class AutoconfigureRunSchema(Schema):
    """A search for a load_config that loads the model on one host."""

    id = fields.Integer()
    model_name = fields.Method("_model_name", metadata={"type": "string"})
    host = fields.String()
    state = Choice(m.AUTOCONFIGURE_STATES, component="AutoconfigureState")
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    start_config = fields.Method("_start_config", metadata={"type": "object"})
    result_config = fields.Method("_result_config", allow_none=True, metadata={"type": "object"})
    result_status = compatibility_status(allow_none=True)
    result_reason = fields.String(allow_none=True, metadata={
        "description": "Succeeded: what the config gives up (degraded), if anything. Failed: why it ended and the "
                       "chain of causes."})
    proposed_diff = fields.Method("_proposed_diff", allow_none=True, metadata={
        "description": "What applying the result would change in the model's load_config now."})
    tries = fields.List(fields.Nested(TrySchema))
    max_tries = fields.Integer()
    max_seconds = fields.Float()
    apply = fields.Boolean()
    stop_requested = fields.Boolean()
    applied_version = fields.Method("_applied_version", allow_none=True, metadata={
        "type": "integer", "description": "The load_config version the result became, once applied."})

    def _model_name(self, run):
        return runs.model_name_of(run)

    def _start_config(self, run):
        return runs.config_of(run.start_config)

    def _result_config(self, run):
        return runs.config_of(run.result_config) if run.result_config is not None else None

    def _proposed_diff(self, run):
        if run.result_config is None:
            return None
        model = db.session.get(m.ModelRegistry, run.model_id)
        found = diff_against(model.load_config if model is not None else None, run.result_config)
        return ProposedDiffSchema().dump(found)

    def _applied_version(self, run):
        if run.applied_version_id is None:
            return None
        version = db.session.get(m.LoadConfigVersion, run.applied_version_id)
        return version.number if version is not None else None


class AutoconfigureRunListSchema(Schema):
    items = fields.List(fields.Nested(AutoconfigureRunSchema))
