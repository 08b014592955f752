"""The browser surface: what keeps other web sites, and other machines, from using this server.

Checked before every view (``install`` registers the pair with one call in ``create_app``):

- **Host** must name this server (DNS rebinding: an attacker's name resolving to 127.0.0.1 would
  otherwise make the attacker's page same-origin with us). 400 otherwise.
- **Cross-site writes**: a POST/PUT/PATCH/DELETE whose ``Sec-Fetch-Site`` is anything but
  ``same-origin``/``none``, or whose ``Origin`` is not this server's, is refused (403). ``same-site``
  is refused too: every other port on localhost is "same site". Clients that send neither header
  (curl, scripts) are not browsers acting for a web page, and pass.
- **The token**: with ``MODELHUB_API_TOKEN`` set (required to bind beyond loopback), writes need
  ``Authorization: Bearer <token>`` or the sign-in cookie (401). ``MODELHUB_PROTECT_READS=1``: reads too.
- **Body size**: a declared Content-Length over ``MAX_CONTENT_LENGTH`` is 413 for every endpoint, also
  the HTML ones that never read their body; a body shorter than its Content-Length is 400 (the part
  that arrived is never applied).

Every response carries a Content-Security-Policy without inline scripts or styles, nosniff, a
referrer policy and ``frame-ancestors 'none'``. See docs/security.md.
"""

import hashlib
import hmac
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from modelhub.errors import error_answer
from modelhub.exceptions import Refusal

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})  # "none": the user typed or bookmarked it
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
TOKEN_MIN_LENGTH = 16
COOKIE_NAME = "modelhub_session"
COOKIE_MAX_AGE = 30 * 24 * 3600
# Views that must answer without the token: signing in, what the sign-in page needs to render, and the
# health check (it says only that the server is up).
OPEN_ENDPOINTS = frozenset({"views.sign_in.sign_in_form", "views.sign_in.sign_in", "views.sign_in.sign_out", "static",
                            "health.Health"})

CSP = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "font-src 'self'", "object-src 'none'", "base-uri 'self'",
    "form-action 'self'", "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def install(app: Flask) -> None:
    """Check every request before its view, and add the security headers to every response."""
    app.before_request(_guard)
    app.after_request(_add_headers)
    app.context_processor(lambda: {"auth": auth_state()})


def _guard():
    try:
        check_host()
        check_same_origin()
        check_token()
        check_size()
        check_body_complete()
    except Refusal as refusal:
        return refusal_response(refusal)
    return None


def _add_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def refusal_response(refusal: Refusal):
    """The API's error shape under /api/, else a readable page (a fragment for an HTMX request)."""
    return current_app.make_response(error_answer(refusal))


# Host (DNS rebinding)


def parse_host(value: str) -> tuple[str, int | None] | None:
    """``name``, ``name:port``, ``[v6]`` or ``[v6]:port`` -> (lower-case name, port); None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        address, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else None
        try:
            name = str(ipaddress.IPv6Address(address))
        except ValueError:
            return None
    else:
        name, colon, port = value.partition(":")
        if not colon:
            port = None
        if not _HOST_NAME.match(name) or len(name) > 253:
            return None
        name = name.rstrip(".")
    if port is not None:
        if not _PORT.match(port) or not 0 < int(port) < 65536:
            return None
        return name, int(port)
    return name, None


def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    address = _ip(host.strip("[]"))
    return host == "localhost" or bool(address and address.is_loopback)


def host_allowed(name: str, config) -> bool:
    """Loopback names, the bound address, MODELHUB_ALLOWED_HOSTS (``.example.org`` also matches its
    subdomains); bound to every interface (0.0.0.0, ::), any IP address and this machine's name too:
    a browser only sends an IP as Host when the user typed it, so IPs cannot be rebound."""
    bound = config["MODELHUB_BIND_HOST"].strip("[]").lower()
    address = _ip(name)
    if name in LOOPBACK_NAMES or name == bound or (address and address.is_loopback):
        return True
    for allowed in config["MODELHUB_ALLOWED_HOSTS"]:
        allowed = allowed.lower().rstrip(".")
        if name == allowed or (allowed.startswith(".") and (name.endswith(allowed) or name == allowed[1:])):
            return True
    if bound in WILDCARD_BINDS:
        return address is not None or name == socket.gethostname().lower()
    return False


def check_host() -> None:
    value = request.headers.get("Host")
    if value is None:
        return  # HTTP/1.0 without Host: no browser sends that, so nothing to rebind
    parsed = parse_host(value)
    if parsed is None:
        raise Refusal(400, f"Malformed Host header {value[:100]!r}.")
    if not host_allowed(parsed[0], current_app.config):
        raise Refusal(400, f"This server does not answer to the name {parsed[0]!r}. If you reach modelhub by "
                           "that name, add it to MODELHUB_ALLOWED_HOSTS (comma-separated) and restart.")


# Cross-site requests (CSRF)


def check_same_origin() -> None:
    if request.method not in UNSAFE_METHODS:
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in TRUSTED_FETCH_SITES:
        raise Refusal(403, f"Refused a cross-site request (Sec-Fetch-Site: {site[:40]}): changes can only be "
                           "made from modelhub's own pages or from clients such as curl.")
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin, request.headers.get("Host") or request.host):
        raise Refusal(403, f"Refused a request from another origin ({origin[:100]}): changes can only be made "
                           "from modelhub's own pages or from clients such as curl.")


def same_origin(origin: str, host: str) -> bool:
    """Whether ``Origin`` names the server the request was sent to (its Host). The scheme is not compared,
    so a TLS proxy in front keeps working; a port must match when the Host names one, else be the
    scheme's default. ``null`` (sandboxed frames, file:// pages) and anything malformed are refused."""
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.username:
        return False
    target = parse_host(host)
    if target is None:
        return False
    name = parts.hostname.lower().rstrip(".")
    if _ip(name) and _ip(name).version == 6:
        name = str(ipaddress.IPv6Address(name))
    return name == target[0] and origin_port == target[1]


# The token


def session_value(token: str) -> str:
    """The sign-in cookie's value: derived from the token (the cookie never holds the token itself), so
    changing the token signs every browser out."""
    return hmac.new(token.encode(), b"modelhub browser session", hashlib.sha256).hexdigest()


def equal_secrets(given: str, expected: str) -> bool:
    # Hashing first makes the comparison take the same time whatever the lengths.
    digest = lambda text: hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()  # noqa: E731
    return hmac.compare_digest(digest(given), digest(expected))


def token_required(config, method: str) -> bool:
    return bool(config["MODELHUB_API_TOKEN"]) and (method in UNSAFE_METHODS or config["MODELHUB_PROTECT_READS"])


def presented_credentials() -> bool:
    """Whether the request carries the token (Authorization: Bearer) or the sign-in cookie."""
    token = current_app.config["MODELHUB_API_TOKEN"]
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and given.strip() and equal_secrets(given.strip(), token):
        return True
    cookie = request.cookies.get(COOKIE_NAME)
    return bool(cookie) and equal_secrets(cookie, session_value(token))


def check_token() -> None:
    if request.endpoint in OPEN_ENDPOINTS or not token_required(current_app.config, request.method):
        return
    if not presented_credentials():
        what = "Changes need" if request.method in UNSAFE_METHODS else "This server needs"
        raise Refusal(401, f"{what} the API token: send 'Authorization: Bearer <MODELHUB_API_TOKEN>', "
                           "or sign in on the page (/sign-in).", {"WWW-Authenticate": 'Bearer realm="modelhub"'})


def auth_state() -> dict:
    """For the page header: whether writes need signing in, and whether this browser has."""
    config = current_app.config
    required = bool(config["MODELHUB_API_TOKEN"])
    signed_in = required and presented_credentials()
    return {"required": required, "signed_in": signed_in,
            "can_read": signed_in or not (required and config["MODELHUB_PROTECT_READS"])}


# Body size


def check_size() -> None:
    # The request's own limit: MAX_CONTENT_LENGTH, unless its endpoint raised it (imports do, in a
    # url_value_preprocessor, which runs before this hook).
    limit = request.max_content_length
    if limit and request.content_length is not None and request.content_length > limit:
        raise Refusal(413, f"The request body is {request.content_length:,} bytes; the limit is {limit:,}.")


def check_body_complete() -> None:
    """A body shorter than its Content-Length is refused before any view sees it.

    Servers that mark their input as terminated (gunicorn does) hand a WSGI app whatever arrived
    before the client gave up; applying that part would change the registry for a client that never
    saw an answer. modelhub serve's own front never dispatches such a request; this covers the others.
    """
    expected = request.content_length
    if not expected:
        return
    arrived = len(request.get_data(cache=True))  # views and form parsing reuse the cached body
    if arrived < expected:
        raise Refusal(400, f"The request body ended after {arrived:,} of its {expected:,} bytes; nothing was changed.")


# Start-up (modelhub serve)


def exposure_problem(host: str, token: str | None) -> str | None:
    """Why ``modelhub serve --host HOST`` must not start, or None."""
    if token is not None and len(token) < TOKEN_MIN_LENGTH:
        return (f"MODELHUB_API_TOKEN is {len(token)} characters long; use at least {TOKEN_MIN_LENGTH}, e.g.\n"
                "  export MODELHUB_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if token or is_loopback(host):
        return None
    return (f"Binding {host} makes modelhub reachable from other machines, so every change must need a token. "
            "Set one and start again:\n"
            "  export MODELHUB_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\n"
            "Or serve on loopback only (the default, --host 127.0.0.1).")


def startup_lines(host: str, url: str, config) -> list[str]:
    """What ``modelhub serve`` says about who may change the registry."""
    if not config["MODELHUB_API_TOKEN"]:
        return ["Writes are open to anyone on this machine (loopback only); set MODELHUB_API_TOKEN to require a token."]
    reads = ("Reads need the token too (MODELHUB_PROTECT_READS=1)." if config["MODELHUB_PROTECT_READS"]
             else "Reads are open to anyone who can reach this address (MODELHUB_PROTECT_READS=1 to protect them).")
    lines = [
        "WRITES ARE TOKEN-PROTECTED: send 'Authorization: Bearer $MODELHUB_API_TOKEN'; in a browser, "
        f"sign in at {url}sign-in.",
        reads,
    ]
    if not is_loopback(host):
        lines.append("Plain HTTP: the token crosses the network unencrypted; put a TLS proxy in front "
                     "on an untrusted network (add its name to MODELHUB_ALLOWED_HOSTS).")
    return lines
