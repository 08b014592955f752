"""Error answers given below the app (by gunicorn's parser or the request assembler), in the app's shapes:
the API's JSON error body for paths under /api/, a small HTML page for everything else."""

import hashlib
import html
import json
from urllib.parse import urlsplit

from gunicorn.http import errors as parse_errors
from werkzeug.http import HTTP_STATUS_CODES

from modelhub.errors import error_body
from modelhub.security import SECURITY_HEADERS

# Which gunicorn errors get which status; any other ParseException is a 400. Mirrors
# gunicorn.workers.base.Worker.handle_error, which only knows how to answer in HTML.
_STATUS_BY_ERROR = (
    ((parse_errors.InvalidResponseHeader, parse_errors.InvalidResponseHeaderName), 500),  # the app's fault
    (parse_errors.LimitRequestLine, 414),
    (parse_errors.LimitRequestHeaders, 431),
    (parse_errors.UnsupportedTransferCoding, 501),
    (parse_errors.ExpectationFailed, 417),
    (parse_errors.ForbiddenProxyRequest, 403),
    (parse_errors.ConfigurationProblem, 500),
    (parse_errors.ParseException, 400),
)
_MESSAGES = {
    414: "The request line is too long: {error}.",
    431: "The request's header fields are too large: {error}.",
    501: "{error}.",
    500: "The server could not answer this request; the error is in its log.",
}
# The answers are served without the app, so they carry the headers its responses always carry (and the
# OpenAPI document promises): the security headers and an ETag.
_SECURITY_HEADERS = "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS.items())
_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{code} {title} – modelhub</title></head>
<body><h1>{code} {title}</h1><p>{message}</p><p><a href="/">Back to the models</a></p></body>
</html>
"""


def describe(error: BaseException) -> tuple[int, str]:
    """The status and client-facing message for an error gunicorn met while parsing or answering."""
    for kinds, status in _STATUS_BY_ERROR:
        if isinstance(error, kinds):
            break
    else:
        status = 500
    template = _MESSAGES.get(status, "Bad request: {error}.")
    return status, template.format(error=str(error).rstrip("."))


def is_api_target(target: str) -> bool:
    """Whether a request target (origin or absolute form, possibly cut short) is under /api/."""
    path = urlsplit(target).path if "://" in target[:12] else target.partition("?")[0]
    return path == "/api" or path.startswith("/api/")


def error_response(status: int, message: str, target: str) -> bytes:
    """A whole HTTP/1.1 response that closes the connection."""
    title = HTTP_STATUS_CODES.get(status, "Error")
    if is_api_target(target):
        content_type, body = "application/json", json.dumps(error_body(status, message))
    else:
        content_type = "text/html; charset=utf-8"
        body = _PAGE.format(code=status, title=html.escape(title), message=html.escape(message))
    payload = body.encode()
    head = (f"HTTP/1.1 {status} {title}\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nETag: \"{hashlib.sha1(payload).hexdigest()}\"\r\n"
            f"{_SECURITY_HEADERS}\r\n")
    return head.encode("latin-1") + payload
