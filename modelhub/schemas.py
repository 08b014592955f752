"""Marshmallow schemas: the one definition of what the API (and the CLI and the pages) accept and return."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from modelhub import models as m
from modelhub.loading.types import FAILURE_KINDS
from modelhub import strict_json
from modelhub.fields import (
    LOAD_CONFIG_MAX_CHARS, Choice, HubId, LoadConfig, ModelDirectory, ModelName, StrictBoolean, StrictFloat, Text,
    UtcDateTime,
)
from modelhub.inventory_query import TESTED_STATES
from modelhub.metric_catalogue import METRICS, Metric
from modelhub.library_catalogue import LIBRARY_IDS

NOTES_MAX = 10_000
CACHE_PATH_MAX = 4096


def metric_input(metric: Metric) -> StrictFloat:
    """A metric as the API takes it: a JSON number from 0 (to 100 for a score), or null to clear it."""
    description = f"{metric.description} (0-{metric.maximum})" if metric.maximum else metric.description
    return StrictFloat(allow_none=True, validate=validate.Range(min=0, max=metric.maximum),
                       metadata={"description": description})


def metric_inputs() -> dict[str, StrictFloat]:
    """One input field per metric of the catalogue, in its order (for a schema's class body)."""
    return {metric.field: metric_input(metric) for metric in METRICS}


# The enums, each named once for the OpenAPI document (one enum class per concept in a generated client).
def compatibility_status(**kwargs) -> Choice:
    return Choice(m.COMPATIBILITY_STATUSES, component="CompatibilityStatus", **kwargs)


def cache_location(**kwargs) -> Choice:
    return Choice(m.CACHE_LOCATIONS, component="CacheLocation", **kwargs)


def quantization(**kwargs) -> Text:
    return Text(max_length=m.QUANTIZATION_MAX, allow_none=True, **kwargs)


class ConfigFields(Schema):
    """Compatibility configuration (``PATCH /api/models/{name}/config``)."""

    compatibility_status = compatibility_status()
    compatibility_notes = Text(max_length=NOTES_MAX, allow_none=True)
    load_config = LoadConfig(
        allow_none=True,
        metadata={
            "description": "A JSON object, or a string holding one; empty string or null = system defaults.",
        },
    )


class MetadataFields(Schema):
    """Benchmark metrics (``PATCH /api/models/{name}/metadata``); null clears a value."""

    locals().update(metric_inputs())  # a class body's namespace is a dict: the fields land in this order
    quantization = quantization()


class _RequireAnyField:
    """A PATCH that names no field is a mistake (usually a typo'd key or an empty body)."""

    OPENAPI = {"minProperties": 1}

    @validates_schema(pass_original=True)
    def _require_any(self, data, original, **kwargs):
        if not data and not (isinstance(original, dict) and original):
            raise ValidationError(f"Send at least one of: {', '.join(self.fields)}.", "_schema")


class ConfigUpdateSchema(_RequireAnyField, ConfigFields):
    pass


class MetadataUpdateSchema(_RequireAnyField, MetadataFields):
    pass


class CombinedUpdateSchema(_RequireAnyField, Schema):
    """What "Save All Changes" sends: both halves are validated, then written in one transaction."""

    config = fields.Nested(ConfigFields)
    metadata = fields.Nested(MetadataFields)


# A custom location needs a path, when a model is registered and when one is imported: the rule as
# the OpenAPI document says it (see modelhub.api.http.SchemaKeywords), and as the server checks it.
CUSTOM_NEEDS_A_PATH = {
    "if": {"properties": {"cache_location": {"const": "custom"}}, "required": ["cache_location"]},
    "then": {"properties": {"cache_path": {"type": "string"}}, "required": ["cache_path"]},
}


def custom_path_missing(data: dict, directory: str) -> str | None:
    """The message for ``cache_path`` when ``data`` breaks CUSTOM_NEEDS_A_PATH (``directory``: what the
    path names), else None."""
    if data.get("cache_location") == "custom" and not data.get("cache_path"):
        return f"A custom location needs cache_path: {directory}."
    return None


class ModelCreateSchema(ConfigFields, MetadataFields):
    """Register a model. Only ``model_name`` is required; ``hf_path`` defaults to it."""

    OPENAPI = CUSTOM_NEEDS_A_PATH

    model_name = ModelName(max_length=m.MODEL_NAME_MAX, required=True)
    hf_path = HubId(max_length=m.MODEL_NAME_MAX)
    cache_location = cache_location(load_default="primary")
    cache_path = ModelDirectory(max_length=CACHE_PATH_MAX, allow_none=True)

    @validates_schema
    def _custom_needs_a_path(self, data, **kwargs):
        if message := custom_path_missing(data, "the directory holding the model"):
            raise ValidationError(message, "cache_path")


class ModelSchema(Schema):
    """A registry entry as the API returns it. ``load_config`` is the text as saved (or null)."""

    model_name = fields.String()
    hf_path = fields.String()
    cache_location = cache_location()
    cache_path = fields.String(allow_none=True)
    compatibility_status = compatibility_status()
    compatibility_notes = fields.String(allow_none=True)
    load_config = fields.String(allow_none=True)
    locals().update({metric.field: fields.Float(allow_none=True) for metric in METRICS})
    quantization = fields.String(allow_none=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    missing = fields.Boolean(metadata={"description": "True when a scan found none of its copies on disk."})
    metric_sources = fields.Raw(
        allow_none=True,
        metadata={"description": "Per metric, where a value not typed by a user came from (card, measured)."},
    )
    version = fields.Integer(metadata={"description": "Bumped on every write; the ETag is built from it."})


SORTABLE = tuple(name for name in ModelSchema._declared_fields if name not in ("version", "missing", "metric_sources"))
# What the inventory sorts by beyond the model's own fields (modelhub/inventory_query.py).
INVENTORY_SORTS = ("size_bytes", "format", "library", "parameters", "last_tested")
FORMAT_MAX = 64


class ModelListQuerySchema(Schema):
    status = fields.List(
        compatibility_status(),
        metadata={"description": "Only these statuses (repeat the parameter for several)."},
    )
    q = Text(max_length=m.MODEL_NAME_MAX, metadata={"description": "Case-insensitive substring of the name."})
    format = fields.List(Text(max_length=FORMAT_MAX), metadata={
        "description": "Only models with a copy on disk in one of these formats (repeat for several): a weight format "
                       "(safetensors, pickle, gguf: every GGUF quantization) or a quantization (\"GGUF Q4_K_M\", GPTQ, "
                       "AWQ, \"bitsandbytes 4-bit\"), case ignored."})
    library = fields.List(Choice(LIBRARY_IDS, component="Library"), metadata={
        "description": "Only models with a copy on disk in one of these libraries (repeat for several)."})
    tested = Choice(TESTED_STATES, component="TestedState", metadata={
        "description": "tested: a load of it has succeeded or failed; untested: never (or only interrupted)."})
    sort = fields.String(
        load_default="model_name",
        validate=validate.OneOf(
            [*SORTABLE, *INVENTORY_SORTS, *(f"-{name}" for name in SORTABLE + INVENTORY_SORTS)],
            error="Not a sort this list offers: {input}. Name a column (model_name, -mmlu_score, -size_bytes, "
                  "-last_tested, ...), with '-' first for descending."),
        metadata={"description": "A column, or size_bytes (on disk), format, library, parameters, last_tested; prefix "
                                 "with '-' for descending. Text sorts ignoring case; empty values sort last."},
    )
    page = fields.Integer(strict=False, load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(strict=False, load_default=50, validate=validate.Range(min=1, max=500))


# The preflight's query: the API's GET .../preflight, the modal's "Will it load here?" and `modelhub preflight`.
PREFLIGHT_MAX_CONTEXT = 16 * 1024 * 1024  # tokens; more than any model's context window today


class LoadConfigQuery(fields.String):
    """A load_config not saved yet, as JSON text in a query parameter: refused exactly as a saved one would
    be (strict JSON, the plugins' declared keys and their values). Deserializes to the object, ``{}`` for
    an empty text (the system defaults)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = LoadConfig().deserialize(super()._deserialize(value, attr, data, **kwargs), attr, data)
        return {} if text is None else strict_json.loads(text)


class PreflightQuerySchema(Schema):
    load_config = LoadConfigQuery(metadata={
        "description": "A load_config to check instead of the saved one (e.g. one being typed, not saved yet): the "
                       "JSON text of an object with the plugins' keys; an empty text means the system defaults.",
        "maxLength": LOAD_CONFIG_MAX_CHARS, "allOf": [{"$ref": "#/components/schemas/LoadConfigText"}]})
    context = fields.Integer(strict=False, validate=validate.Range(min=1, max=PREFLIGHT_MAX_CONTEXT), metadata={
        "description": "Tokens of context the KV cache is sized for (default: the preflight's own, see the answer's "
                       "context_tokens)."})


class PaginationSchema(Schema):
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()


class ModelListSchema(Schema):
    items = fields.List(fields.Nested(ModelSchema))
    pagination = fields.Nested(PaginationSchema)


class LoadRequestSchema(Schema):
    """``POST /api/models/{name}/load``; the body is optional."""

    force = StrictBoolean(
        load_default=False, metadata={"description": "Load even though the model is marked incompatible."}
    )
    timeout = StrictFloat(
        validate=validate.Range(min=1, max=24 * 3600),
        metadata={"description": "Seconds before the load is given up (default MODELHUB_LOAD_TIMEOUT)."},
    )


class LoadStateSchema(Schema):
    """Whether the model's worker runs now, as every web process sees it (from its lease)."""

    state = Choice(("idle", *m.LEASE_STATES), component="WorkerState")
    job = Choice(m.WORKER_JOBS, component="WorkerJob", metadata={"description": "load, or measure (a benchmark run)."})
    stage = fields.String(allow_none=True, metadata={"description": "What the worker is doing while loading."})
    attempt_id = fields.Integer(metadata={"description": "The load attempt (or measurement) the worker runs."})
    pid = fields.Integer(allow_none=True, metadata={"description": "The worker process."})
    owner = fields.String(metadata={"description": "The web process (and host) that runs the worker."})
    seconds = fields.Float(metadata={"description": "Since the worker started."})


class WorkerRunSchema(Schema):
    """What a load attempt and a measurement both show: one run of a worker process on a model."""

    id = fields.Integer()
    outcome = Choice(m.ATTEMPT_OUTCOMES, component="RunOutcome")
    stage = fields.String(allow_none=True)
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    error_type = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    load_config = fields.String(allow_none=True)
    final_kwargs = fields.Dict(allow_none=True, metadata={"description": "What the model was loaded with."})
    environment = fields.Dict(allow_none=True, metadata={"description": "The machine and libraries it ran with."})
    environment_id = fields.Integer(allow_none=True, metadata={
        "description": "The environment (GET /api/environments/{id}) it ran in; null for runs from before "
                       "environments were recorded."})
    config_version_id = fields.Integer(allow_none=True, metadata={
        "description": "The database id of the load_config version it ran (config_version is its number)."})
    config_version = fields.Integer(allow_none=True, metadata={
        "description": "The number of the load_config version it ran (GET /api/models/{name}/configs/{number}); "
                       "null for runs from before versions were recorded."})
    worker_pid = fields.Integer(allow_none=True)
    copy_path = fields.String(allow_none=True, metadata={
        "description": "The copy of the model's files the worker loaded (a folder, or a GGUF file): the copy_id "
                       "asked for, else the model's cache_path; null for runs from before copies were recorded."})
    predicted_peak = fields.Dict(allow_none=True, metadata={
        "description": "Preflight's prediction of this run's peak memory when it started (host_bytes, gpu_bytes, "
                       "the verdict); set beside the measured peak, it calibrates preflight on this host."})


class AttemptSchema(WorkerRunSchema):
    """One load attempt: what was asked, what the plugins made of it, how it ended."""

    previous_status = compatibility_status()
    explanation = fields.String(allow_none=True)
    suggestion = fields.Dict(allow_none=True, metadata={"description": "load_config keys to change (null removes)"})
    plugin_changes = fields.List(fields.Dict(), allow_none=True, metadata={
        "description": "Per plugin that changed the kwargs: its name (plugin), the keys it set, its notes (or error)."})
    smoke_test = fields.Dict(allow_none=True, metadata={
        "description": "The fixed prompt, the model's greedy continuation of it, and how long it took."})
    load_report = fields.Dict(allow_none=True, metadata={
        "description": "What the load really was: dtype and attention used, where each part sits, quantization, "
                       "weights transformers reported missing, mismatched or unexpected."})
    warnings = fields.List(fields.String(), allow_none=True, metadata={
        "description": "What looked wrong without failing the load (e.g. a degenerate continuation)."})
    environment_status = compatibility_status(allow_none=True, metadata={
        "description": "The model's status in this attempt's environment after it ended."})
    failure_kind = Choice(FAILURE_KINDS, component="FailureKind", allow_none=True, metadata={
        "description": "Which kind of failure it was (out_of_memory, attention, bf16_unsupported, ...), as the "
                       "plugin that explained it or the supervisor (crash, timeout) classified it."})
    measured_peak = fields.Dict(allow_none=True, metadata={
        "description": "The worker's measured peak: host_peak_rss_bytes, gpu_peak_allocated_bytes, and "
                       "host_baseline_rss_bytes (before any weight was read)."})
    autoconfigure_run_id = fields.Integer(allow_none=True, metadata={
        "description": "The auto-configure run this attempt was a try of (its load_config is that try's "
                       "candidate, not a saved version)."})
    limitation = fields.String(allow_none=True, metadata={
        "description": "What a try's config gives up (4-bit weights, offload): a success is degraded."})


class AttemptsQuerySchema(Schema):
    limit = fields.Integer(strict=False, load_default=20, validate=validate.Range(min=1, max=500))


class AttemptListSchema(Schema):
    load_state = fields.Nested(LoadStateSchema)
    items = fields.List(fields.Nested(AttemptSchema))


class PluginSchema(Schema):
    name = fields.String()
    module = fields.String()
    distribution = fields.String(allow_none=True)
    version = fields.String(allow_none=True)
    hooks = fields.List(fields.String())
    keys = fields.List(fields.String(), metadata={"description": "load_config keys this plugin owns"})
    loaded = fields.Boolean()
    error = fields.String(allow_none=True)
