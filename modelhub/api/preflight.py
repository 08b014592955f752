"""Will it load here: ``GET /api/models/{name}/preflight``, the preflight of a model's load_config (the saved
one, or one not saved yet) on this host, read from its metadata only (modelhub/preflight/)."""

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields

from modelhub import preflight, registry
from modelhub.loading.schemas import CopyReadSchema
from modelhub.api.http import Blueprint
from modelhub.api.models import BUSY, NOT_FOUND, _document
from modelhub.exceptions import UnknownCopy
from modelhub.fields import Choice
from modelhub.preflight.schemas import PreflightCopyQuerySchema

blp = Blueprint("preflight", __name__, url_prefix="/api",
                description="Will it load here: a model's predicted peak memory per device against this host, "
                            "before loading it.")

VERDICTS = ("fits", "tight", "wont_fit", "cannot_load", "unknown")
TERMS = ("weights", "kv_cache", "activations", "overhead", "calibration")
PROBLEM_KINDS = ("missing_package", "refused", "capability")
CONFIG_SOURCES = ("saved", "given")
COPY_REFUSED = (409, "copy_id names none of the model's copies (errors name the ones it has), or the copy is missing: "
                     "the latest scan did not find it.")


class PreflightTermSchema(Schema):
    name = Choice(TERMS, component="PreflightTermName")
    bytes = fields.Integer(metadata={"description": "Its share of the device's predicted peak."})
    detail = fields.String(allow_none=True, metadata={"description": "How it was counted, for people."})


class PreflightDeviceSchema(Schema):
    device = fields.String(metadata={"description": "cpu, gpu0, gpu1... or disk (offloaded weights)."})
    label = fields.String(metadata={"description": "The device for people, e.g. 'GPU 0 · Radeon RX 7900 XTX'."})
    needed_bytes = fields.Integer(metadata={"description": "The predicted peak there: the sum of its terms."})
    available_bytes = fields.Integer(allow_none=True, metadata={"description": "Free there now; null: not known."})
    headroom = fields.Float(allow_none=True, metadata={
        "description": "(available - needed) / available; below 0.1 the verdict is tight, below 0 it will not fit."})
    terms = fields.List(fields.Nested(PreflightTermSchema))


class CalibrationSchema(Schema):
    loads = fields.Integer(metadata={"description": "Loads here whose measured peak was compared with a prediction."})
    low = fields.Float(metadata={"description": "The largest under-prediction, as a fraction (-0.07: 7% under)."})
    high = fields.Float(metadata={"description": "The largest over-prediction, as a fraction."})
    factor = fields.Float(metadata={"description": "What the raw prediction is multiplied by, learned from them."})
    text = fields.String(metadata={"description": "e.g. 'within +4/-7% over 12 loads here'."})


class PreflightProblemSchema(Schema):
    kind = Choice(PROBLEM_KINDS, component="PreflightProblemKind")
    message = fields.String()
    package = fields.String(allow_none=True, metadata={"description": "The package to install, when one is missing."})


class PreflightMetadataSchema(Schema):
    """What was read of the model's files (config.json, safetensors headers, the index, quantization_config)."""

    parameters = fields.Integer(allow_none=True)
    weights_bytes = fields.Integer(allow_none=True, metadata={"description": "The checkpoint's tensors as stored."})
    dtype = fields.String(allow_none=True, metadata={"description": "The checkpoint's own dtype."})
    quantization = fields.String(allow_none=True, metadata={"description": "gptq, awq, bitsandbytes... as stored."})
    shards = fields.Integer(allow_none=True)
    source = fields.String(allow_none=True, metadata={"description": "The folder the metadata was read from."})


class PreflightHostSchema(Schema):
    """This host now, as the web process sees it (psutil, the GPU's management library, the last worker)."""

    ram_available_bytes = fields.Integer(allow_none=True)
    ram_total_bytes = fields.Integer(allow_none=True)
    memory_limit_bytes = fields.Integer(allow_none=True, metadata={"description": "A cgroup limit, when lower."})
    gpus = fields.List(fields.Dict(), metadata={"description": "Each GPU: index, name, total and free memory."})
    source = fields.String(allow_none=True, metadata={"description": "Where these facts came from."})


class PreflightSchema(Schema):
    model_name = fields.String()
    load_config = fields.Dict(allow_none=True, metadata={"description": "The load_config that was checked."})
    config_source = Choice(CONFIG_SOURCES, component="PreflightConfigSource", metadata={
        "description": "saved: the model's load_config; given: the one sent in the query."})
    context_tokens = fields.Integer(metadata={"description": "The context the KV cache was sized for."})
    copy = fields.Nested(CopyReadSchema, allow_none=True, metadata={
        "description": "The copy of the model's files that was checked: the one copy_id names, else the model's "
                       "cache_path (or, without one, the hub cache's snapshot); null: no local files to check."})
    verdict = Choice(VERDICTS, component="PreflightVerdict", metadata={
        "description": "fits; tight (under 10% headroom on a device); wont_fit; cannot_load (a missing package, a "
                       "refused setting, a capability the device lacks); unknown (nothing to predict from)."})
    reason = fields.String(metadata={"description": "The verdict's reason, for people."})
    devices = fields.List(fields.Nested(PreflightDeviceSchema), metadata={
        "description": "Each device the load would use: the predicted peak, term by term, against what is free."})
    total_bytes = fields.Integer(allow_none=True, metadata={"description": "The predicted peak of all devices."})
    raw_total_bytes = fields.Integer(allow_none=True, metadata={"description": "The same before calibration."})
    calibration = fields.Nested(CalibrationSchema, allow_none=True, metadata={
        "description": "The prediction's error over the loads measured here; null: none measured yet."})
    problems = fields.List(fields.Nested(PreflightProblemSchema))
    fitting_config = fields.Dict(allow_none=True, metadata={
        "description": "A load_config that would fit (max_memory and offload, 8-bit, 4-bit), when the checked one "
                       "does not and one exists; null otherwise."})
    fitting_reason = fields.String(allow_none=True, metadata={"description": "Why that one fits."})
    notes = fields.List(fields.String())
    metadata = fields.Nested(PreflightMetadataSchema, allow_none=True)
    host = fields.Nested(PreflightHostSchema, allow_none=True)


@blp.route("/models/<path:model_name>/preflight")
class ModelPreflight(MethodView):
    @blp.doc(operationId="getModelPreflight")
    @blp.arguments(PreflightCopyQuerySchema(), location="query")
    @blp.response(200, PreflightSchema)
    @_document(NOT_FOUND, COPY_REFUSED, BUSY)
    def get(self, query, model_name):
        """Whether the model would load here with its load_config, or with the one given (not saved): the
        predicted peak memory per device, term by term, against what is free on this host now; the
        verdict with its reason, what stops it loading, and a config that would fit when one exists.
        Checks one copy of its files (copy_id; default its cache_path) and says which. Reads the model's
        metadata only; nothing is loaded and nothing is written."""
        model = registry.get_model(model_name)
        try:
            return preflight.check(current_app, model, load_config=query.get("load_config"),
                                   context_tokens=query.get("context"), copy_id=query.get("copy_id"))
        except UnknownCopy as unknown:
            abort(unknown.status, errors={"query": unknown.messages})
