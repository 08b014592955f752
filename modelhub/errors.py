"""One error shape for the whole API, and the mapping of service errors onto HTTP statuses.

Every error under ``/api/`` answers ``{"code": 4xx, "status": "...", "message": "...", "errors": {...}}``;
``errors`` (validation only) holds a list of messages per field, by request location (``json``, ``query``).
The same errors on a page's URL answer a readable page (a fragment for an HTMX request) instead.
"""

import logging

from flask import current_app, render_template, request
from flask_smorest import Api
from marshmallow import Schema, fields
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from modelhub.exceptions import RETRY_AFTER_SECONDS, ModelhubError
from modelhub.messages import flatten_messages

log = logging.getLogger(__name__)


class ErrorSchema(Schema):
    """Every error the API answers (``modelhub.errors``), whatever its status."""

    OPENAPI = {"additionalProperties": False}

    code = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    status = fields.String(required=True, metadata={"description": "Its name, e.g. Unprocessable Entity."})
    message = fields.String(required=True, metadata={"description": "What went wrong, for people."})
    errors = fields.Dict(metadata={
        "description": "Validation errors only: by request location (json, query), by field (nested for nested "
                       "fields), a list of messages; _schema for the request as a whole."})


class ModelhubApi(Api):
    """flask-smorest's Api with a human ``message`` on every error and the service errors mapped."""

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # each operation lists the error statuses it really answers

    def _register_error_handlers(self):
        super()._register_error_handlers()
        self._app.register_error_handler(ModelhubError, error_answer)  # each carries its own status
        self._app.register_error_handler(OperationalError, self._database_unavailable)

    def handle_http_exception(self, error: HTTPException):
        payload, code, headers = super().handle_http_exception(error)
        # flask-smorest drops the exception's own headers; a 405 must still say what is Allowed.
        own = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
        headers = {**own, **(headers or {})}
        if code >= 500:
            _rollback()
        if "errors" in payload and "message" not in payload:
            payload["message"] = "Invalid request: " + "; ".join(flatten_messages(payload["errors"]))
        payload.setdefault("message", error.description)
        return _for_the_requester(payload, code, headers)

    def _database_unavailable(self, error: OperationalError):
        _rollback()
        log.warning("database unavailable: %s", error.orig)
        message = f"The database is busy or unavailable ({error.orig}); retry shortly."
        return _for_the_requester(error_body(503, message), 503, {"Retry-After": RETRY_AFTER_SECONDS})


def error_answer(error: ModelhubError):
    """A modelhub error as the answer its requester reads: ``(body, status, headers)``."""
    return _for_the_requester(error_body(error.status, str(error)), error.status, error.headers())


def _for_the_requester(payload: dict, code: int, headers: dict):
    """The JSON error under /api/; elsewhere a person asked for a page, and gets one (with the way to
    sign in when that is what is missing)."""
    if request.path.startswith("/api/"):
        return payload, code, headers
    return error_page(code, payload["message"], show_sign_in=code == 401), code, headers


def error_page(code: int, message: str, *, show_sign_in: bool = False) -> str:
    """A standalone error page, or the fragment an HTMX request swaps in."""
    template = "_refused.html" if request.headers.get("HX-Request") else "refused.html"
    return render_template(template, code=code, title=HTTP_STATUS_CODES[code], message=message,
                           show_sign_in=show_sign_in)


def error_body(code: int, message: str) -> dict:
    """The API's error payload, for answers given outside a view (e.g. modelhub.security's refusals)."""
    return {"code": code, "status": HTTP_STATUS_CODES[code], "message": message}


def _rollback() -> None:
    db = current_app.extensions["sqlalchemy"]
    db.session.rollback()
