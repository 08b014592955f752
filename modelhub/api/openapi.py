"""What the OpenAPI document says beyond what flask-smorest derives from each view, in one place.

An apispec plugin (``OpenApiRules``) that

- names every enum (``modelhub.fields.Choice``) as a component and refers to it, so that a generated
  client has one enum class per concept (compatibility status, cache location, run outcome...);
- states the load_config rule: an object whose keys are those the installed plugins declare (each
  with its value's schema), or a string holding one (``contentMediaType``/``contentSchema``);
- declares the headers the server sends, by status code: ``ETag`` and the security headers on every
  response (``modelhub.api.http.add_etag``, ``modelhub.security``), ``Location`` on 201 and 202,
  ``Retry-After`` on 503 (``modelhub.errors``); ``Allow`` is on the ``MethodNotAllowed`` response;
- declares conditional GETs (If-None-Match, 304);
- lists the refusals of the layers in front of every view (``modelhub.security``: Host 400, token 401,
  cross-site write 403, body size 413; ``modelhub.serving``: 408, 414, 431) on every operation that does
  not list them already;
- requires an ``operationId`` on every operation (a generated client names its functions after them).
"""

import http

from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import validate

from modelhub.exchange.schemas import OPENAPI_COMPONENTS as EXCHANGE_COMPONENTS
from modelhub.fields import LOAD_CONFIG_MAX_CHARS, Choice, LoadConfig
from modelhub.security import SECURITY_HEADERS
from modelhub.serving.buffering import BODY_GRACE_SECONDS, BODY_MIN_BYTES_PER_SECOND, HEAD_TIMEOUT_SECONDS

SCHEMAS = "#/components/schemas/"
HEADERS = "#/components/headers/"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})

HEADER_COMPONENTS = {
    "ETag": {"description": "The version of what was answered (of the model, for a model). Send it back as "
                            "If-Match to write only if nothing changed since; on a 412, the model's current ETag.",
             "required": True, "schema": {"type": "string"}},
    "Location": {"description": "Where to follow what was created or started.", "required": True,
                 "schema": {"type": "string", "format": "uri-reference"}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "Allow": {"description": "The methods this URL has.", "required": True, "schema": {"type": "string"}},
    "Content-Disposition": {"description": "Offered as a file: attachment, with its file name.", "required": True,
                            "schema": {"type": "string", "pattern": '^attachment; filename="[^"]+"$'}},
    **{name: {"description": f"Sent on every response: {value}", "required": True, "schema": {"type": "string"}}
       for name, value in SECURITY_HEADERS.items()},
}
EVERY_RESPONSE = ("ETag", *SECURITY_HEADERS)
BY_STATUS = {201: ("Location",), 202: ("Location",), 503: ("Retry-After",)}

# Refusals made before any view runs (modelhub.security), so every operation can answer them.
FRONT_REFUSALS = {
    400: "Bad request: a Host name this server does not answer to (or, for a body, invalid JSON).",
    401: "MODELHUB_API_TOKEN is set and no valid token was sent (writes; reads too with MODELHUB_PROTECT_READS=1).",
    413: "The body is larger than the limit (1 MiB).",
    # Answered by modelhub serve's front (modelhub.serving), before the app sees the request.
    408: f"The request did not arrive in time (its head within {HEAD_TIMEOUT_SECONDS:g} s, its body at "
         f"{BODY_MIN_BYTES_PER_SECOND // 1024} KiB/s or faster after {BODY_GRACE_SECONDS:g} s).",
    414: "The request line is longer than the server accepts.",
    431: "The request's header fields are larger than the server accepts.",
}
CROSS_SITE = (403, "A cross-site write: Origin or Sec-Fetch-Site names another site.")
# GETs answer 304 to an If-None-Match naming what they would answer (modelhub.api.http.add_etag).
IF_NONE_MATCH = {"in": "header", "name": "If-None-Match", "required": False, "schema": {"type": "string"},
                 "description": "ETags you hold: if the answer would be the same, 304 without a body."}
NOT_MODIFIED = {"description": "Not modified since the ETag sent in If-None-Match."}

SECURITY_SCHEMES = {
    "bearerToken": {"type": "http", "scheme": "bearer",
                    "description": "MODELHUB_API_TOKEN, when the server has one (required off loopback)."},
    "signInCookie": {"type": "apiKey", "in": "cookie", "name": "modelhub_session",
                     "description": "Set by the sign-in page."},
}
# Optional: a server without MODELHUB_API_TOKEN needs neither.
SECURITY = [{}, {"bearerToken": []}, {"signInCookie": []}]


class OpenApiRules(BasePlugin):
    """See the module's docstring. ``load_config_fields``: the plugins' keys, ``{key: marshmallow field}``."""

    def __init__(self, load_config_fields: dict):
        self.load_config_fields = dict(sorted(load_config_fields.items()))
        self.error_schema = None

    def init_spec(self, spec: APISpec) -> None:
        self.spec = spec
        marshmallow = next(plugin for plugin in spec.plugins if isinstance(plugin, MarshmallowPlugin))
        self.converter = marshmallow.converter
        self.converter.add_attribute_function(_named_enums_and_load_config(self))
        for name, schema in EXCHANGE_COMPONENTS.items():
            spec.components.schema(name, schema)
        for name, header in HEADER_COMPONENTS.items():
            spec.components.header(name, header)
        for name, scheme in SECURITY_SCHEMES.items():
            spec.components.security_scheme(name, scheme)
        spec.options.setdefault("security", SECURITY)
        spec.components.response("MethodNotAllowed", {
            "description": "Answered to a method the URL does not have (not an operation of this document).",
            "headers": {"Allow": {"$ref": HEADERS + "Allow"}, **_refs(EVERY_RESPONSE)},
            "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Error"}}},
        })

    def response_helper(self, response: dict, **kwargs) -> dict:
        # Component responses (flask-smorest's UNPROCESSABLE_ENTITY...) get their headers here.
        code = _status_code(response.get("description", ""))
        return {"headers": {**_headers_for(code), **response.get("headers", {})}} if code else {}

    def operation_helper(self, path: str, operations: dict, **kwargs) -> None:
        for method, operation in operations.items():
            if "operationId" not in operation:
                raise ValueError(f"{method.upper()} {path} has no operationId: add @blp.doc(operationId=...).")
            responses = operation.setdefault("responses", {})
            if method == "get" and ("200" in responses or 200 in responses):
                operation.setdefault("parameters", []).append(IF_NONE_MATCH)
                responses["304"] = dict(NOT_MODIFIED)
            refusals = {**FRONT_REFUSALS, **(dict([CROSS_SITE]) if method in WRITE_METHODS else {})}
            for code, description in refusals.items():
                if str(code) not in responses and code not in responses:
                    responses[str(code)] = {"description": description,
                                            "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Error"}}}}
            for code, response in responses.items():
                if isinstance(response, dict) and "$ref" not in response:
                    response["headers"] = {**_headers_for(int(code)), **response.get("headers", {})}


def _refs(names) -> dict:
    return {name: {"$ref": HEADERS + name} for name in names}


def _headers_for(code: int) -> dict:
    return _refs(EVERY_RESPONSE + BY_STATUS.get(code, ()))


def _status_code(description: str) -> int | None:
    """flask-smorest's component responses are described by their reason phrase."""
    return next((status.value for status in http.HTTPStatus if status.phrase == description), None)


def _named_enums_and_load_config(rules: OpenApiRules):
    def named_enums_and_load_config(converter, field, ret: dict, **kwargs) -> dict:
        """apispec attribute function: the property of a Choice or LoadConfig field, as a reference."""
        if isinstance(field, Choice):
            _register(converter.spec, field.component, {"type": "string", "enum": list(field.choices)})
            target = {"$ref": SCHEMAS + field.component}
        elif isinstance(field, LoadConfig):
            _register_load_config(converter, rules.load_config_fields)
            target = {"oneOf": [{"$ref": SCHEMAS + "LoadConfigText"}, {"$ref": SCHEMAS + "LoadConfigObject"}]}
        else:
            return _exclusive_bounds(field, ret)
        kept = {key: value for key, value in ret.items() if key in ("description", "default", "readOnly", "writeOnly")}
        if field.allow_none:
            target = {"oneOf": [*target.get("oneOf", [target]), {"type": "null"}]}
        ret.clear()  # the reference replaces what the other attribute functions said inline
        return {**target, **kept}

    return named_enums_and_load_config


def _value_schema(converter, field) -> dict:
    """A plugin key's value, as far as its field says; a custom field's rules are the plugin's own (in
    its description), but null is refused unless the field allows it."""
    schema = converter.field2property(field)
    if not field.allow_none and not {"type", "oneOf", "anyOf", "enum", "const"} & set(schema):
        schema["not"] = {"type": "null"}
    return schema


def _exclusive_bounds(field, ret: dict) -> dict:
    """apispec writes ``Range(min=0, min_inclusive=False)`` as ``minimum: 0``, which admits the 0 the
    server refuses; JSON Schema's exclusive bounds say it exactly."""
    for validator in (v for v in field.validators if isinstance(v, validate.Range)):
        for bound, inclusive, keyword in ((validator.min, validator.min_inclusive, "Minimum"),
                                          (validator.max, validator.max_inclusive, "Maximum")):
            if bound is not None and not inclusive and ret.get(keyword.lower()) == bound:
                del ret[keyword.lower()]
                ret[f"exclusive{keyword}"] = bound
    return {}


def _register(spec: APISpec, name: str, schema: dict) -> None:
    known = spec.components.schemas.get(name)
    if known is None:
        spec.components.schema(name, schema)
    elif known != schema:
        raise ValueError(f"Two different enums are both named {name}: {known} and {schema}")


def _register_load_config(converter, keys: dict) -> None:
    if "LoadConfigObject" in converter.spec.components.schemas:
        return
    listed = ", ".join(keys) or "none (no loader plugin is loaded)"
    _register(converter.spec, "LoadConfigObject", {
        "type": "object",
        "description": f"Loading options. The keys are those the installed plugins declare (GET /api/plugins): "
                       f"{listed}. Any other key is refused.",
        "propertyNames": {"enum": list(keys)},
        "properties": {key: _value_schema(converter, field) for key, field in keys.items()},
    })
    _register(converter.spec, "LoadConfigText", {
        "type": "string",
        "maxLength": LOAD_CONFIG_MAX_CHARS,
        "description": "The same object as JSON text (stored exactly as sent); an empty string clears it.",
        "contentMediaType": "application/json",
        "contentSchema": {"$ref": SCHEMAS + "LoadConfigObject"},
    })
