"""Marshmallow fields that refuse what the registry must never store.

Each refusal is a validation error with a message a user can act on, never an exception that would
become a 500: NUL bytes (PostgreSQL rejects them), lone surrogates (not encodable as UTF-8), numbers
sent as strings or booleans, NaN/Infinity, and load_config text that is not a JSON object.
"""

import json
import math
import os
import re
from datetime import UTC
from pathlib import Path
from urllib.parse import unquote

from marshmallow import ValidationError, fields, validate

from modelhub import strict_json
from modelhub.discovery.gguf_header import is_gguf
from modelhub.messages import flatten_messages
from modelhub.model_folders import TooManyEntries, links_leading_out

LOAD_CONFIG_MAX_CHARS = 64 * 1024
JSON_MAX_DEPTH = 32  # deeper is refused in load_config and in an import's JSON columns
# The API's per-model sub-resources (/api/models/{name}/<one of these>). A name "org/<one of these>"
# could not be told apart from that sub-resource of model "org", so such names are refused.
MODEL_SUBRESOURCES = ("config", "metadata", "load", "unload", "attempts", "benchmark", "measurements", "copies",
                      "card-scores", "report", "compatibility", "configs", "preflight", "autoconfigure",
                      "primary-copy")


class Text(fields.String):
    """A string that can be stored in every supported database, with a length cap."""

    # For the OpenAPI document: what JSON Schema can say of the rules below (clients and fuzzers read it).
    SCHEMA_PATTERN = r"^[^\x00]*$"

    def __init__(self, *, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.metadata = {"maxLength": max_length, "pattern": self.SCHEMA_PATTERN, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("Must not contain NUL characters.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("Must be valid Unicode text (no lone surrogates).") from None
        if len(text) > self.max_length:
            raise ValidationError(f"Longer than the maximum of {self.max_length} characters.")
        return text


class HubId(Text):
    """A Hugging Face style id: ``name`` or ``org/name`` (letters, digits, ``.``, ``_``, ``-``)."""

    PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
    # PATTERN and "no '..'" in one expression without look-arounds (a '.' is never followed by another).
    SCHEMA_PATTERN = r"^[A-Za-z0-9](\.?[A-Za-z0-9_-])*\.?(/[A-Za-z0-9](\.?[A-Za-z0-9_-])*\.?)?$"

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not self.PATTERN.match(text) or ".." in text:
            raise ValidationError(
                "Must look like a Hugging Face id, 'name' or 'org/name': letters, digits, '.', '_' and '-', "
                "starting with a letter or digit, no '..'."
            )
        return text


class ModelName(HubId):
    """A model's name in the registry: a HubId that is not ``org/<sub-resource>`` (``org/config``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata = {"not": {"pattern": f"/({'|'.join(MODEL_SUBRESOURCES)})$"}, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        org, _, last = text.rpartition("/")
        if org and last in MODEL_SUBRESOURCES:
            raise ValidationError(
                f"'{org}/{last}' cannot be a model name: /api/models/{org}/{last} is the {last} endpoint of model "
                f"'{org}'. Name it differently (e.g. '{org}/{last}-model'); hf_path can still be '{org}/{last}'."
            )
        return text


class ModelDirectory(Text):
    """An absolute path to a model: an existing directory holding its config.json or GGUF files, or a
    GGUF file itself.

    Refused, with nothing created: relative paths, ``..`` (also percent-encoded), paths that do not
    exist, files that are not GGUF, directories with neither config.json nor a GGUF file, and
    directories holding symlinks that lead out of them (see modelhub/model_folders.py).
    """

    SCHEMA_PATTERN = r"^/[^\x00]*$"

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        path = Path(text)
        if not path.is_absolute():
            raise ValidationError(f"Must be an absolute path (starting with /), not {text!r}.")
        if any(unquote(part) == ".." for part in path.parts):
            raise ValidationError("Must not contain '..': give the directory's real absolute path.")
        try:
            if not path.exists():
                raise ValidationError(f"No such directory: {text}")
            if not path.is_dir():
                if _is_gguf(path):
                    return text  # a GGUF file holds the whole model: there is no folder to check
                raise ValidationError(f"Not a directory: {text} (give the folder that holds config.json).")
            if not (path / "config.json").is_file() and not _holds_gguf(path):
                raise ValidationError(f"No config.json in {text}: this does not look like a model directory.")
            outside = links_leading_out(text)
        except TooManyEntries as error:
            raise ValidationError(f"{text} {error}: this does not look like a model directory.") from None
        except OSError as error:
            raise ValidationError(f"Cannot read {text}: {error.strerror or error}.") from None
        if outside:
            links = ", ".join(f"{name} -> {target}" for name, target in outside[:3])
            more = f" (and {len(outside) - 3} more)" if len(outside) > 3 else ""
            raise ValidationError(
                f"Symlinks lead out of the model folder: {links}{more}. modelhub reads only files inside the "
                "folder (or a hub-cache snapshot's blobs): copy those files in, or register the folder they are in."
            )
        return text


def _is_gguf(path: Path | str) -> bool:
    """By its first bytes, whatever its name (an Ollama blob is named by its digest)."""
    return is_gguf(path)


def _holds_gguf(directory: Path) -> bool:
    """Whether GGUF files lie in the folder itself (a GGUF repo: several quantizations of one model)."""
    with os.scandir(directory) as entries:
        return any(entry.name.lower().endswith(".gguf") and entry.is_file() and _is_gguf(entry.path)
                   for entry in entries)


class Choice(fields.String):
    """One of a fixed list of strings, which the OpenAPI document names as a component (``component``):
    every field holding the same concept refers to that one enum, so a generated client has one enum
    class per concept (see modelhub/api/openapi.py)."""

    def __init__(self, choices, *, component: str, **kwargs):
        self.choices = tuple(choices)
        self.component = component
        super().__init__(validate=validate.OneOf(self.choices), **kwargs)


class StrictFloat(fields.Float):
    """A JSON number: strings, booleans, NaN and Infinity are refused."""

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Must be a number (not a string or a boolean).")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictInteger(fields.Integer):
    """A JSON integer (``3`` or ``3.0``, as JSON Schema counts them): strings and booleans are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Must be a whole number (not a string or a boolean).")
        if isinstance(value, float) and not value.is_integer():
            raise ValidationError("Must be a whole number.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true/false only: marshmallow's Boolean would also take "yes", 1 or "on"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


class LoadConfig(fields.Field):
    """load_config: a JSON object, sent either as a string holding JSON (the form the modal and the first API used) or as an object.

    Deserializes to the text to store: a string is kept exactly as the user wrote it, an object is
    serialized; ``""`` and ``null`` clear it (``None``: use system defaults). Its OpenAPI schema (the
    plugins' keys, the string's content) is written by modelhub.api.openapi.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            if len(value) > LOAD_CONFIG_MAX_CHARS:
                raise ValidationError(f"Longer than the maximum of {LOAD_CONFIG_MAX_CHARS} characters.")
            parsed = parse_json_text(value)
            text = value
        elif isinstance(value, dict):
            parsed = value
            text = None
        else:
            raise ValidationError("Must be a JSON object, or a string holding one.")
        if not isinstance(parsed, dict):
            raise ValidationError(f"Must be a JSON object ({{...}}), not {_json_type(parsed)}.")
        check_json_value(parsed)  # its strings are checked below, as the text they are stored in
        if text is None:
            text = json.dumps(parsed, ensure_ascii=False)
            if len(text) > LOAD_CONFIG_MAX_CHARS:
                raise ValidationError(f"Longer than the maximum of {LOAD_CONFIG_MAX_CHARS} characters.")
        Text(max_length=LOAD_CONFIG_MAX_CHARS).deserialize(text)
        check_known_keys(parsed)
        return text

    def _serialize(self, value, attr, obj, **kwargs):
        return value


def check_known_keys(config: dict) -> None:
    """Validate a load_config against the keys the loaded plugins declare (an allow-list).

    Unknown keys would reach the model constructor, and some keys are dangerous, so a key no plugin
    understands is refused, naming the keys that are known and which plugin owns each value's rules.
    """
    # Imported here: plugins use these fields in load workers, which have no reason to load Flask.
    from flask import current_app, has_app_context

    if not has_app_context() or "modelhub.plugins" not in current_app.extensions:
        return
    host = current_app.extensions["modelhub.plugins"]
    messages = []
    for key, value in config.items():
        field = host.fields.get(key)
        if field is None:
            known = ", ".join(sorted(host.fields)) or "none (no loader plugin is loaded)"
            messages.append(f"Unknown key '{key}'. Known keys: {known}.")
            continue
        try:
            field.deserialize(value, key, config)
        except ValidationError as error:
            messages.extend(f"{key}: {message}" for message in flatten_messages(error.messages))
    if messages:
        raise ValidationError(messages)


def parse_json_text(text: str):
    """Parse JSON the strict way (modelhub.strict_json), turning every failure into a ValidationError."""
    try:
        return strict_json.loads(text)
    except strict_json.JsonError as error:
        raise ValidationError(f"Invalid JSON: {error}") from None


def check_json_value(value, *, strings: Text | None = None, depth: int = 0) -> None:
    """Refuse nesting deeper than JSON_MAX_DEPTH and non-finite numbers inside a JSON value; with
    ``strings``, also every string in it (keys included) that this field refuses."""
    if depth > JSON_MAX_DEPTH:
        raise ValidationError(f"Nested deeper than {JSON_MAX_DEPTH} levels.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("NaN and Infinity are not valid JSON numbers.")
    if isinstance(value, str) and strings is not None:
        strings.deserialize(value)
    elif isinstance(value, dict):
        for key, child in value.items():
            check_json_value(key, strings=strings, depth=depth + 1)
            check_json_value(child, strings=strings, depth=depth + 1)
    elif isinstance(value, list):
        for child in value:
            check_json_value(child, strings=strings, depth=depth + 1)


def _json_type(value) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


class UtcDateTime(fields.DateTime):
    """ISO 8601 with an explicit UTC offset. SQLite hands back naive datetimes; they were stored as UTC."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)
