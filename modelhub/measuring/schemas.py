"""Schemas of measuring: the benchmark request (its settings typed, so a wrong one is a 422 before any
model is loaded) and the measurements it records."""

from marshmallow import Schema, fields, validate

from modelhub.fields import StrictInteger, Text
from modelhub.loading.schemas import copy_id
from modelhub.schemas import LoadRequestSchema, WorkerRunSchema


def _count(low: int, high: int, **kwargs) -> fields.Integer:
    return StrictInteger(validate=validate.Range(min=low, max=high), **kwargs)


def _counts(low: int, high: int) -> fields.List:
    return fields.List(_count(low, high), validate=validate.Length(min=1, max=32))


# The settings modelhub.measuring.metrics.DEFAULTS knows, typed: a wrong type is a 422 here, not a
# failed measurement after the model has been loaded.
class TimeToFirstTokenSettings(Schema):
    error_messages = {"unknown": "Unknown setting; known: prompt_lengths, repeats, warmup."}
    prompt_lengths = _counts(1, 32768)
    repeats = _count(1, 1000)
    warmup = _count(0, 1000)


class ThroughputSettings(Schema):
    error_messages = {"unknown": "Unknown setting; known: new_tokens, batch_sizes, repeats, warmup."}
    new_tokens = _count(2, 32768)
    batch_sizes = _counts(1, 4096)
    repeats = _count(1, 1000)
    warmup = _count(0, 1000)


class PerplexitySettings(Schema):
    error_messages = {"unknown": "Unknown setting; known: text, max_length, stride."}
    # Bounded well under the 1 MiB request limit, so that a too-long text is a 422 naming the field.
    text = Text(max_length=50_000, allow_none=True, metadata={"description": "Text to score (default: the bundled one)."})
    max_length = _count(2, 1_000_000, allow_none=True)
    stride = _count(1, 1_000_000, allow_none=True)


class MeasurementSettingsSchema(Schema):
    error_messages = {"unknown": "Unknown measurement; known: time_to_first_token, throughput, perplexity."}
    time_to_first_token = fields.Nested(TimeToFirstTokenSettings, allow_none=True)
    throughput = fields.Nested(ThroughputSettings, allow_none=True)
    perplexity = fields.Nested(PerplexitySettings, allow_none=True)


class BenchmarkRequestSchema(LoadRequestSchema):
    """``POST /api/models/{name}/benchmark``; the body is optional."""

    settings = fields.Nested(
        MeasurementSettingsSchema,
        metadata={"description": 'Per measurement, settings over the defaults: {"throughput": {"new_tokens": 16}}.'},
    )
    copy_id = copy_id()


class MeasurementSchema(WorkerRunSchema):
    """One measurement: its settings and results, with the run's load_config and environment."""

    settings = fields.Dict(allow_none=True)
    results = fields.Dict(allow_none=True, metadata={"description": "time_to_first_token, throughput, perplexity, "
                                                                   "peak_memory, load_seconds"})
