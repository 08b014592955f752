"""HTTP plumbing shared by the API views: a stricter request-body parser and ETag helpers."""

import re

from apispec import BasePlugin
from flask import Request, request
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import abort
from marshmallow import RAISE
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import PathConverter

from modelhub import strict_json
from modelhub.fields import MODEL_SUBRESOURCES


class StrictJsonParser(FlaskParser):
    """webargs' parser, minus the ways a bad body could slip through or crash the server.

    - a body that is not declared as JSON is refused (415) instead of being silently ignored;
    - JSON that modelhub.strict_json refuses (deep nesting, a key given twice, a 5,000-digit integer)
      is a 400 saying why, not a 500 or a silently dropped value; a syntax error says where it is;
    - an unknown query parameter (``?stauts=``) is refused rather than silently ignored.
    """

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE}

    def _raw_load_json(self, req: Request):
        body = req.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
        if not body:
            return core.missing
        if not is_json_request(req):
            abort(415, message="Send the request body as JSON, with 'Content-Type: application/json'.")
        try:
            return strict_json.loads(body, allow_non_finite=True)  # NaN is refused per field (422)
        except strict_json.JsonError as error:
            message = f"Invalid JSON body: {str(error).rstrip('.')}."
            abort(400, message=message, errors={"json": [message]})


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = StrictJsonParser()


class ModelNameConverter(PathConverter):
    """``<model_name:...>``, for the model itself: a name with at most one '/', but not ``org/config``.

    ``/api/models/org/config`` is the config endpoint of model ``org``; were model names allowed to end
    in a sub-resource, a GET or DELETE there would reach a model named ``org/config`` instead of
    answering 405 (and OPTIONS would advertise methods that endpoint does not have). Likewise a PATCH of
    ``/api/models/org/configs/2`` (a version of model ``org``'s load_config) must not reach a model named
    ``org/configs/2``: no model name has a second '/'.
    """

    regex = rf"[^/]+(?:/(?!(?:{'|'.join(map(re.escape, MODEL_SUBRESOURCES))})$)[^/]+)?"


def model_name_parameter(converter) -> dict:
    return {"type": "string", "minLength": 1}


class SchemaKeywords(BasePlugin):
    """apispec plugin: a schema class's ``OPENAPI`` dict (object-level JSON Schema keywords such as
    ``minProperties`` or ``if``/``then``, which fields cannot declare) goes into its OpenAPI schema."""

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        return dict(getattr(schema, "OPENAPI", {})) or None


def if_match() -> frozenset[str] | None:
    """The strong ETags of the request's If-Match header, ``{"*"}``, or None when it has none."""
    if "If-Match" not in request.headers:
        return None
    tags = request.if_match
    return frozenset({"*"}) if tags.star_tag else frozenset(tags.as_set())


def etag_header(row) -> dict[str, str]:
    return {"ETag": f'"{row.etag}"'}


def add_etag(response):
    """after_request: every response carries an ETag (model responses set theirs from the version);
    GETs then honour If-None-Match with a 304."""
    if response.direct_passthrough or response.status_code == 304:
        return response
    if "ETag" not in response.headers:
        response.add_etag()
    if request.method in ("GET", "HEAD") and response.status_code == 200:
        response.make_conditional(request)
    return response
