"""The export document and the compatibility report, as marshmallow schemas: one definition used to
write them (field order included), to check a file before anything is imported, and in the OpenAPI
document.

Nothing in them is an internal database id: runs (load attempts, measurements) are identified by
their model and the moment they started, so a measured metric's provenance names its measurement by
that moment and survives an import into another database; a run names the load_config version it ran
by the version's number in the same entry's ``config_history``.
"""

from pathlib import PurePosixPath

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from modelhub import models as m
from modelhub.exchange.autoconfigure import AutoconfigureRunEntry, check_entry
from modelhub.exchange.values import (  # noqa: F401  also this module's names (document.py reads Instant here)
    INSTANT_PATTERN, STORABLE_TEXT, TEXT_MAX, Instant, JsonValue, version_number as _version_number,
)
from modelhub.fields import Choice, HubId, LoadConfig, ModelName, Text, check_json_value
from modelhub.loading.types import FAILURE_KINDS
from modelhub.metric_catalogue import METRIC_FIELDS
from modelhub.schemas import (
    CACHE_PATH_MAX, CUSTOM_NEEDS_A_PATH, NOTES_MAX, cache_location, compatibility_status, custom_path_missing,
    metric_inputs, quantization,
)

REGISTRY_FORMAT = "modelhub-registry"
REPORT_FORMAT = "modelhub-compatibility-report"
# The version each format is written in, the newest this modelhub reads. Registry version 2 added each
# model's load_config history (config_history) and the version each run ran (config_version), the
# environments runs ran in (environments, environment_fingerprint) and what a load really was
# (environment_status, load_report, warnings); version 1 files, without them, are still read. Auto-configure
# runs (autoconfigure_runs, and on runs failure_kind, peaks...) and the copy a run read (copy_path) came within version 2: a reader without them
# refuses such a file (unknown fields), it cannot misread it.
REGISTRY_VERSION = 2
REPORT_VERSION = 1
VERSIONS = {REGISTRY_FORMAT: REGISTRY_VERSION, REPORT_FORMAT: REPORT_VERSION}
REGISTRY_VERSIONS_READ = (1, 2)
SOURCES = ("card", "measured")  # a metric typed by a user has no source entry
# Named in the OpenAPI document (registered by modelhub.api.openapi): one source type for every metric.
OPENAPI_COMPONENTS = {
    "MetricSourceKind": {"type": "string", "enum": list(SOURCES)},
    "MetricSource": {
        "type": "object", "required": ["source"], "properties": {"source": {"$ref": "#/components/schemas/MetricSourceKind"}},
        "description": "Where the value came from; a measured value names its measurement by when it started "
                       '("measurement": "2026-01-31T12:00:00+00:00", one of the same entry\'s measurements), '
                       "a card value its card, dataset and metric. Never a database id (measurement_id).",
        "not": {"required": ["measurement_id"]},
        "if": {"properties": {"source": {"const": "measured"}}},
        "then": {"properties": {"measurement": {"type": "string", "format": "date-time",
                                                "pattern": INSTANT_PATTERN}}},
    },
}



class AbsolutePath(Text):
    """Where a model's files were on the exporting machine: absolute, but not required to exist here."""

    SCHEMA_PATTERN = r"^/[^\x00]*$"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # No '..' segment (a null, where allowed, is no string and passes).
        self.metadata = {"not": {"type": "string", "pattern": r"(^|/)\.\.(/|$)"}, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not PurePosixPath(text).is_absolute() or ".." in PurePosixPath(text).parts:
            raise ValidationError("Must be an absolute path without '..'.")
        return text


class MetricSources(fields.Field):
    """Per metric, where its value came from: ``{"mmlu_score": {"source": "card", ...}}``. A measured
    value names its measurement by when it started (``"measurement": "2026-...+00:00"``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        source = {"$ref": "#/components/schemas/MetricSource"}  # see OPENAPI_COMPONENTS
        self.metadata = {"type": "object", "properties": {metric: source for metric in METRIC_FIELDS},
                         "additionalProperties": False, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("Must be a JSON object keyed by metric name.")
        errors = {}
        for metric, source in value.items():
            try:
                self._check(metric, source)
            except ValidationError as error:
                errors[metric] = error.messages
        if errors:
            raise ValidationError(errors)
        return value

    @staticmethod
    def _check(metric, source) -> None:
        if metric not in METRIC_FIELDS:
            raise ValidationError(f"Not a metric; metrics are: {', '.join(METRIC_FIELDS)}.")
        if not isinstance(source, dict) or source.get("source") not in SOURCES:
            raise ValidationError(f'Must be an object whose "source" is one of: {", ".join(SOURCES)}.')
        check_json_value(source, strings=STORABLE_TEXT)
        if "measurement_id" in source:
            raise ValidationError('Name a measurement by when it started ("measurement"), not by a database id.')
        if source["source"] == "measured" and "measurement" in source:
            Instant().deserialize(source["measurement"])



class _RunFields(Schema):
    started_at = Instant(required=True, metadata={"description": "Identifies the run within its model."})
    finished_at = Instant(allow_none=True)
    outcome = Choice(m.FINISHED_OUTCOMES, component="FinishedRunOutcome", required=True)  # a run going is not exported
    load_config = Text(max_length=TEXT_MAX, allow_none=True,
                       metadata={"description": "The load_config text as it was (history: not re-checked)."})
    final_kwargs = JsonValue(allow_none=True)
    environment = JsonValue(allow_none=True)
    error_type = Text(max_length=200, allow_none=True)
    error_message = Text(max_length=TEXT_MAX, allow_none=True)
    config_version = _version_number(allow_none=True, metadata={
        "description": "The number of the load_config version it ran, one of the same entry's config_history."})
    environment_fingerprint = Text(max_length=64, allow_none=True, metadata={
        "description": "The environment it ran in: one of the document's environments (null: before environments)."})
    predicted_peak = JsonValue(allow_none=True, metadata={"description": "Preflight's prediction when it began."})
    copy_path = Text(max_length=CACHE_PATH_MAX, allow_none=True, metadata={
        "description": "The copy of the model's files it read (a folder, or a GGUF file), on the host it ran on."})


class AttemptEntry(_RunFields):
    """A finished load attempt."""

    previous_status = compatibility_status(required=True)
    explanation = Text(max_length=TEXT_MAX, allow_none=True)
    suggestion = JsonValue(allow_none=True)
    plugin_changes = JsonValue(kind=list, allow_none=True)
    smoke_test = JsonValue(allow_none=True)
    load_report = JsonValue(allow_none=True)
    warnings = JsonValue(kind=list, allow_none=True)
    environment_status = compatibility_status(allow_none=True, metadata={
        "description": "The model's status in the environment it ran in, after it ended."})
    failure_kind = Choice(FAILURE_KINDS, component="FailureKind", allow_none=True)
    limitation = Text(max_length=TEXT_MAX, allow_none=True, metadata={
        "description": "What a try's config gives up (a success is degraded)."})
    measured_peak = JsonValue(allow_none=True, metadata={"description": "The worker's measured peak memory."})
    autoconfigure_run = Instant(allow_none=True, metadata={
        "description": "The auto-configure run it was a try of, by when that run started: one of the same "
                       "entry's autoconfigure_runs."})


class EnvironmentEntry(Schema):
    """An environment runs ran in (a host with its accelerator, driver and library versions), named by
    its fingerprint."""

    fingerprint = Text(max_length=64, required=True)
    host = Text(max_length=255, required=True)
    facts = JsonValue(required=True)
    first_seen_at = Instant(required=True)
    last_seen_at = Instant(required=True)


class MeasurementEntry(_RunFields):
    """A finished measurement."""

    settings = JsonValue(allow_none=True)
    results = JsonValue(allow_none=True)


class ConfigVersionEntry(Schema):
    """One version of the model's load_config, as its registry recorded it (history: its text is not
    re-checked against today's plugins; a restore checks it)."""

    number = _version_number(required=True, metadata={"description": "1, 2, ... within the model."})
    # Left out means null (the defaults; unknown; no restore): the import reads every key.
    load_config = Text(max_length=TEXT_MAX, allow_none=True, load_default=None,
                       metadata={"description": "The text; null: defaults."})
    source = Choice(m.CONFIG_SOURCES, component="ConfigSource", required=True)
    via = Text(max_length=16, allow_none=True, load_default=None)
    host = Text(max_length=255, allow_none=True, load_default=None)
    restored_from = _version_number(allow_none=True, load_default=None,
                                    metadata={"description": "The number a restore copied."})
    created_at = Instant(required=True)


class ModelEntry(Schema):
    """One model: what the registry stores about it, with its history. Only ``model_name`` is required;
    a field left out says nothing (an import never clears a value)."""

    # The cross-field rule the fuzzer can generate from. The others are in the descriptions: unique
    # names and run start times (no JSON Schema keyword), a source naming one of the entry's own
    # measurements (a cross-reference), a source's metric having a value (an if/then per metric,
    # which schemathesis 4.32.5 gives up on: UnsupportedSchema).
    OPENAPI = CUSTOM_NEEDS_A_PATH

    model_name = ModelName(max_length=m.MODEL_NAME_MAX, required=True)
    hf_path = HubId(max_length=m.MODEL_NAME_MAX)
    cache_location = cache_location()
    cache_path = AbsolutePath(max_length=CACHE_PATH_MAX, allow_none=True)
    compatibility_status = compatibility_status()
    compatibility_notes = Text(max_length=NOTES_MAX, allow_none=True)
    load_config = LoadConfig(allow_none=True, metadata={"description": "The load_config text as saved, or null."})
    locals().update(metric_inputs())  # as the API validates them (ranges, strict numbers), in this order
    quantization = quantization()
    metric_sources = MetricSources(allow_none=True, metadata={
        "description": "Per metric with a value in this entry, where that value came from."})
    created_at = Instant()
    config_history = fields.List(fields.Nested(ConfigVersionEntry), metadata={
        "description": "The load_config's versions, oldest first, each number once; the last is the one in force."})
    attempts = fields.List(fields.Nested(AttemptEntry), metadata={"description": "No two starting at the same moment."})
    measurements = fields.List(fields.Nested(MeasurementEntry), metadata={"description": "No two starting at the same moment."})
    autoconfigure_runs = fields.List(fields.Nested(AutoconfigureRunEntry), metadata={
        "description": "Finished auto-configure runs, oldest first, no two starting at the same moment."})

    @validates_schema
    def _consistent(self, data, **kwargs):
        errors = {}
        if message := custom_path_missing(data, "the directory that held the model"):
            errors["cache_path"] = [message]
        for key in ("attempts", "measurements"):
            seen = {}
            for index, run in enumerate(data.get(key) or []):
                if run["started_at"] in seen:
                    errors.setdefault(key, {})[index] = {"started_at": [
                        f"Two runs of this model started at the same moment (also {key}.{seen[run['started_at']]})."]}
                seen.setdefault(run["started_at"], index)
        _check_history(data, errors)
        check_entry(data, errors)  # auto-configure runs' references (exchange/autoconfigure.py)
        measured = {run["started_at"] for run in data.get("measurements") or []}
        for metric, source in (data.get("metric_sources") or {}).items():
            if data.get(metric) is None:
                errors.setdefault("metric_sources", {})[metric] = ["Has a source but the metric has no value."]
            elif "measurement" in source and Instant().deserialize(source["measurement"]) not in measured:
                errors.setdefault("metric_sources", {})[metric] = [
                    f"Names measurement {source['measurement']}, which is not among this model's measurements."]
        if errors:
            raise ValidationError(errors)


def _check_history(data: dict, errors: dict) -> None:
    """Version numbers unique; a restore and a run name a version the entry holds."""
    numbers = {}
    for index, version in enumerate(data.get("config_history") or []):
        if version["number"] in numbers:
            errors.setdefault("config_history", {})[index] = {"number": [
                f"Two versions numbered {version['number']} (also config_history.{numbers[version['number']]})."]}
        numbers.setdefault(version["number"], index)
    for index, version in enumerate(data.get("config_history") or []):
        if version.get("restored_from") is not None and version["restored_from"] not in numbers:
            errors.setdefault("config_history", {}).setdefault(index, {})["restored_from"] = [
                f"Names version {version['restored_from']}, which is not in this model's config_history."]
    for key in ("attempts", "measurements"):
        for index, run in enumerate(data.get(key) or []):
            if run.get("config_version") is not None and run["config_version"] not in numbers:
                errors.setdefault(key, {}).setdefault(index, {})["config_version"] = [
                    f"Names load_config version {run['config_version']}, which is not in this model's config_history."]


class RegistryDocument(Schema):
    """The whole registry (``modelhub export``, ``GET /api/export``): models sorted by name, each with
    its load attempts and measurements, oldest first."""

    format = fields.String(required=True, validate=validate.Equal(REGISTRY_FORMAT))
    version = fields.Integer(required=True, strict=True, validate=validate.OneOf(REGISTRY_VERSIONS_READ))
    environments = fields.List(fields.Nested(EnvironmentEntry), metadata={
        "description": "The environments the runs ran in, each fingerprint once."})
    models = fields.List(fields.Nested(ModelEntry), required=True, metadata={"description": "Each model_name once."})

    @validates_schema
    def _unique_names(self, data, **kwargs):
        first, errors = {}, {}
        for index, entry in enumerate(data.get("models", [])):
            name = entry["model_name"]
            if name in first:
                errors[index] = {"model_name": [f"Duplicate: {name!r} is also models.{first[name]}."]}
            first.setdefault(name, index)
        errors = {"models": errors} if errors else {}
        _check_environments(data, errors)
        if errors:
            raise ValidationError(errors)


def _check_environments(data: dict, errors: dict) -> None:
    """Each fingerprint once; a run names one the document holds."""
    known = {}
    for index, environment in enumerate(data.get("environments") or []):
        if environment["fingerprint"] in known:
            errors.setdefault("environments", {})[index] = {"fingerprint": [
                f"Two environments with this fingerprint (also environments.{known[environment['fingerprint']]})."]}
        known.setdefault(environment["fingerprint"], index)
    for model_index, entry in enumerate(data.get("models") or []):
        for key in ("attempts", "measurements", "autoconfigure_runs"):
            for index, run in enumerate(entry.get(key) or []):
                if run.get("environment_fingerprint") is not None and run["environment_fingerprint"] not in known:
                    errors.setdefault("models", {}).setdefault(model_index, {}).setdefault(key, {})[index] = {
                        "environment_fingerprint": [f"Names environment {run['environment_fingerprint']!r}, which is "
                                                    "not among the document's environments."]}


class Proof(Schema):
    """The successful load attempt a compatibility report rests on."""

    started_at = Instant(required=True)
    finished_at = Instant(allow_none=True)
    final_kwargs = JsonValue(allow_none=True)
    plugin_changes = JsonValue(kind=list, allow_none=True)
    environment = JsonValue(allow_none=True)
    smoke_test = JsonValue(allow_none=True)


class MeasuredProof(Schema):
    """The latest successful measurement under the same load_config, when there is one."""

    started_at = Instant(required=True)
    finished_at = Instant(allow_none=True)
    settings = JsonValue(allow_none=True)
    results = JsonValue(allow_none=True)
    environment = JsonValue(allow_none=True)


class CompatibilityReport(Schema):
    """One model's working load_config and the machine it was proven on (``GET .../report``)."""

    format = fields.String(required=True, validate=validate.Equal(REPORT_FORMAT))
    version = fields.Integer(required=True, strict=True, validate=validate.Equal(REPORT_VERSION))
    model_name = HubId(max_length=m.MODEL_NAME_MAX, required=True)
    hf_path = HubId(max_length=m.MODEL_NAME_MAX, required=True)
    quantization = quantization()
    load_config = LoadConfig(required=True, allow_none=True,
                             metadata={"description": "The load_config that loaded (null: system defaults)."})
    compatibility_status = compatibility_status(metadata={"description": "On the machine it was proven on (not imported)."})
    proven_on = fields.Nested(Proof, required=True)
    measured = fields.Nested(MeasuredProof, allow_none=True)
