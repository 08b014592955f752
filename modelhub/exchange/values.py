"""The value types of the export document, shared by its schemas (``schemas.py``, ``autoconfigure.py``):
moments in UTC with an explicit offset, JSON values a JSON column stores on every database, and
load_config version numbers."""

from datetime import UTC

from marshmallow import ValidationError, fields, validate

from modelhub.fields import StrictInteger, Text, check_json_value

MAX_VERSION_NUMBER = 2**31 - 1  # a load_config version's number: an INTEGER column
TEXT_MAX = 1_000_000  # history text (error messages, old load_configs): generous, but bounded
INSTANT_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-"  # Instant.YEARS, for the OpenAPI document


class Instant(fields.DateTime):
    """A moment: written in UTC with its offset; read only with an explicit offset (a time without
    one is ambiguous) and converted to UTC, the zone SQLite's naive timestamps are stored in.

    Years 1970 to 2999 only: a run or a registration outside them is a corrupt file, and within them
    no UTC offset can push a moment out of what Python's datetime holds (0001-01-01T00:00+00:01 would)."""

    YEARS = range(1970, 3000)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata = {"pattern": INSTANT_PATTERN, **self.metadata}

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Must be an ISO 8601 date and time, e.g. 2026-01-31T12:00:00+00:00.")
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            raise ValidationError("Must include a UTC offset, e.g. 2026-01-31T12:00:00+00:00.")
        if parsed.year not in self.YEARS:
            raise ValidationError(f"Must be in the years {self.YEARS.start} to {self.YEARS.stop - 1}.")
        return parsed.astimezone(UTC)


# A JSON column must hold its value on every database: no NUL characters and no lone surrogates in
# any string (PostgreSQL), besides the nesting and numbers check_json_value refuses.
STORABLE_TEXT = Text(max_length=TEXT_MAX)


class JsonValue(fields.Field):
    """A JSON object (or array) kept in a JSON column: environment facts, kwargs, results."""

    def __init__(self, kind: type = dict, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        # For the OpenAPI document, which would otherwise say "any value" (an array's items: any value).
        self.metadata = {**({"type": "object"} if kind is dict else {"type": "array", "items": {}}), **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, self.kind):
            raise ValidationError("Must be a JSON object." if self.kind is dict else "Must be a JSON array.")
        check_json_value(value, strings=STORABLE_TEXT)
        return value


def version_number(**kwargs) -> StrictInteger:
    return StrictInteger(validate=validate.Range(min=1, max=MAX_VERSION_NUMBER), **kwargs)

