"""modelhub.security through the test client: Host names, cross-site writes, the API token, the security
headers and the body limit. Each refusal is checked for its status, its shape (the API's JSON error,
else a readable page) and that nothing changed."""

import pytest

from modelhub.app import create_app
from modelhub.security import CSP, parse_host, same_origin

TOKEN = "correct-horse-battery-staple"
NOTES = {"compatibility_notes": "as it was"}

# (method, path, JSON body or None): a write of each kind, on the API and on the HTML side.
WRITES = [
    ("POST", "/api/models", {"model_name": "org/new"}),
    ("PATCH", "/api/models/org/base/config", {"compatibility_notes": "changed"}),
    ("PATCH", "/api/models/org/base", {"config": {"compatibility_notes": "changed"}}),
    ("DELETE", "/api/models/org/base", None),
    ("POST", "/api/scan", None),
    ("POST", "/scan", None),
    ("POST", "/models/org/base/load", None),
    ("POST", "/models/org/base/card-scores", None),
]
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port of localhost is "same site"
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    {"Origin": "http://evil.example"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "http://localhost:8080"},  # another server on this machine
    {"Origin": "null"},  # sandboxed iframes, file:// pages
    {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
]
MALFORMED = [
    {"Sec-Fetch-Site": "nonsense"},
    {"Sec-Fetch-Site": ""},
    {"Origin": ""},
    {"Origin": "http://[::1"},
    {"Origin": "http://localhost:99999"},
    {"Origin": "http://localhost:port"},
    {"Origin": "javascript:alert(1)"},
    {"Origin": "http://localhost/path"},
    {"Origin": "http://user@localhost"},
    {"Origin": "http://localhost, http://evil.example"},
    {"Origin": "\u00e9vil"},
]


@pytest.fixture
def lite(tmp_path):
    """A client on SQLite only: the checks run before any view touches the database, so the big
    matrices run once; the tests that write run on every backend (``client``)."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'lite.db'}",
                      "MODELHUB_HOME": str(tmp_path)})
    yield app.test_client()
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def _seed(client):
    assert client.post("/api/models", json={"model_name": "org/base", **NOTES}).status_code == 201
    return client


@pytest.fixture
def seeded(client):
    return _seed(client)


@pytest.fixture
def seeded_lite(lite):
    return _seed(lite)


def _send(client, method, path, body, headers=None):
    return client.open(path, method=method, json=body, headers=headers or {})


def _unchanged(client):
    listing = client.get("/api/models").json
    assert [m["model_name"] for m in listing["items"]] == ["org/base"]
    assert listing["items"][0]["compatibility_notes"] == "as it was"
    assert client.get("/api/scan").json["state"] == "idle"


def _is_refusal(response, code):
    assert response.status_code == code, response.data[:300]
    if response.request.path.startswith("/api/"):
        assert response.json["code"] == code and response.json["message"]
    else:
        assert response.mimetype == "text/html" and b"modelhub" in response.data


@pytest.mark.slow
@pytest.mark.parametrize("headers", CROSS_SITE + MALFORMED, ids=lambda h: repr(h)[:60])
@pytest.mark.parametrize("method, path, body", WRITES, ids=lambda v: v if isinstance(v, str) else None)
def test_cross_site_and_malformed_writes_are_403_and_change_nothing(seeded_lite, method, path, body, headers):
    _is_refusal(_send(seeded_lite, method, path, body, headers), 403)
    _unchanged(seeded_lite)


@pytest.mark.parametrize("method, path, body", WRITES, ids=lambda v: v if isinstance(v, str) else None)
def test_cross_site_writes_change_nothing_on_every_backend(seeded, method, path, body):
    _is_refusal(_send(seeded, method, path, body, {"Sec-Fetch-Site": "cross-site"}), 403)
    _is_refusal(_send(seeded, method, path, body, {"Origin": "http://evil.example"}), 403)
    _unchanged(seeded)


@pytest.mark.parametrize("headers", [
    {},  # curl, scripts
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},  # our own pages
    {"Sec-Fetch-Site": "none"},  # typed by the user
    {"Origin": "HTTP://LOCALHOST"},
])
def test_same_origin_and_headerless_writes_pass(seeded, headers):
    response = seeded.patch("/api/models/org/base/config", json={"compatibility_notes": "changed"}, headers=headers)
    assert response.status_code == 200
    assert response.json["compatibility_notes"] == "changed"


def test_cross_site_reads_are_answered(seeded_lite):
    # Links from other sites to the page work; the browser keeps other sites from reading the answer.
    assert seeded_lite.get("/", headers={"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}).status_code == 200


def test_a_refused_htmx_request_gets_a_fragment(seeded_lite):
    response = seeded_lite.post("/scan", headers={"Sec-Fetch-Site": "cross-site", "HX-Request": "true"})
    assert response.status_code == 403
    assert response.data.startswith(b'<p class="load-error refused-message" role="alert">Refused a cross-site request')


@pytest.mark.parametrize("origin, host, expected", [
    ("http://localhost:5000", "localhost:5000", True),
    ("https://models.example.org", "models.example.org", True),  # behind a TLS proxy
    ("http://[::1]:5000", "[::1]:5000", True),
    ("http://[0:0::1]:5000", "[::1]:5000", True),
    ("http://localhost", "localhost:5000", False),
    ("http://localhost:5000", "localhost", False),
    ("http://127.0.0.1:5000", "localhost:5000", False),
])
def test_same_origin_compares_name_and_port(origin, host, expected):
    assert same_origin(origin, host) is expected


# Host (DNS rebinding)

ALLOWED_HOSTS = ["localhost", "localhost:5000", "LOCALHOST.", "127.0.0.1:8000", "127.0.0.2", "[::1]:5000", "[::1]"]
REFUSED_HOSTS = ["evil.example", "evil.example:5000", "localhost.evil.example", "127.0.0.1.nip.io", "10.0.0.7",
                 "[fe80::1]:5000"]
MALFORMED_HOSTS = ["", "local host", "localhost:abc", "localhost:0", "localhost:99999", "[::1", "[::1]x", "[nope]",
                   "a" * 300, "evil.example/path", "user@localhost", "localhost:5000:1", "\u00e9vil.example"]


@pytest.mark.parametrize("host", ALLOWED_HOSTS)
def test_loopback_hosts_are_answered(lite, host):
    assert lite.get("/api/models", headers={"Host": host}).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("host", REFUSED_HOSTS + MALFORMED_HOSTS)
@pytest.mark.parametrize("path", ["/api/models", "/", "/static/css/modelhub.css"])
def test_other_hosts_are_400_and_see_nothing(lite, host, path):
    lite.post("/api/models", json={"model_name": "org/secret-model"})
    response = lite.get(path, headers={"Host": host})
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert response.json["code"] == 400
        assert "MODELHUB_ALLOWED_HOSTS" in response.json["message"] or "Malformed" in response.json["message"]
    assert b"secret-model" not in response.data and b"models.db" not in response.data


def test_a_write_under_another_host_changes_nothing(seeded):
    response = seeded.post("/api/models", json={"model_name": "org/new"}, headers={"Host": "evil.example"})
    assert response.status_code == 400
    _unchanged(seeded)


@pytest.mark.parametrize("bind, allowed, host, expected", [
    ("127.0.0.1", ["models.lan"], "models.lan:5000", 200),
    ("127.0.0.1", [".example.org"], "hub.example.org", 200),
    ("127.0.0.1", [".example.org"], "example.org", 200),
    ("127.0.0.1", [".example.org"], "example.org.evil.example", 400),
    ("127.0.0.1", [], "192.168.1.5:5000", 400),
    ("192.168.1.5", [], "192.168.1.5:5000", 200),
    ("192.168.1.5", [], "192.168.1.6:5000", 400),
    ("0.0.0.0", [], "192.168.1.5:5000", 200),  # every interface: any address the user typed
    ("0.0.0.0", [], "[fe80::1]:5000", 200),
    ("0.0.0.0", [], "evil.example:5000", 400),  # but never a name nobody allowed
    ("::", ["models.lan"], "models.lan", 200),
])
def test_the_bound_address_and_allowed_hosts_are_answered(tmp_path, bind, allowed, host, expected):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}", "MODELHUB_HOME": str(tmp_path),
                      "MODELHUB_BIND_HOST": bind, "MODELHUB_ALLOWED_HOSTS": allowed})
    assert app.test_client().get("/api/models", headers={"Host": host}).status_code == expected


def test_allowed_hosts_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELHUB_ALLOWED_HOSTS", " models.lan , gpu-box ")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}", "MODELHUB_HOME": str(tmp_path)})
    client = app.test_client()
    assert [client.get("/api/models", headers={"Host": h}).status_code for h in ("models.lan", "gpu-box:80", "evil")] == [
        200, 200, 400]


def test_parse_host():
    assert parse_host("LocalHost:5000") == ("localhost", 5000)
    assert parse_host("[::1]") == ("::1", None)
    assert parse_host("[0:0:0:0:0:0:0:1]:80") == ("::1", 80)
    assert [parse_host(h) for h in MALFORMED_HOSTS] == [None] * len(MALFORMED_HOSTS)


# Security headers


@pytest.mark.parametrize("path", ["/", "/compare", "/api/models", "/api/openapi.json", "/static/js/modelhub.js",
                                  "/no-such-page", "/sign-in"])
def test_every_response_carries_the_security_headers(lite, path):
    client = lite
    response = client.get(path)
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    refused = client.get(path, headers={"Host": "evil.example"})
    assert refused.headers["Content-Security-Policy"] == CSP


def test_the_policy_allows_no_inline_script_or_style():
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in CSP


# Body size


@pytest.mark.parametrize("method, path", [("POST", "/api/models"), ("PATCH", "/api/models/org/base/config"),
                                          ("POST", "/scan"), ("POST", "/models/org/base/load"),
                                          ("POST", "/sign-in")])
def test_a_body_over_the_limit_is_413_everywhere(seeded, method, path):
    body = b'{"compatibility_notes": "' + b"x" * (1024 * 1024) + b'"}'
    response = seeded.open(path, method=method, data=body, content_type="application/json")
    assert response.status_code == 413
    if path.startswith("/api/"):
        assert response.json["message"] == f"The request body is {len(body):,} bytes; the limit is 1,048,576."
    _unchanged(seeded)


@pytest.mark.parametrize("method, path, body", [w for w in WRITES if w[2] is not None] + [
    ("POST", "/models/org/base/load", {"force": True})], ids=lambda v: v if isinstance(v, str) else None)
def test_a_body_shorter_than_its_content_length_is_never_applied(seeded, method, path, body):
    """Servers that mark wsgi.input as terminated (gunicorn) give the app what arrived before the client
    gave up: the first half of a body here, as if the client had stalled and then hung up."""
    import io
    import json

    whole = json.dumps({**body, "compatibility_notes": "changed"} if "config" in path else body).encode()
    half = io.BytesIO(whole[: len(whole) // 2])
    response = seeded.open(path, method=method, data=whole, content_type="application/json",
                           environ_overrides={"wsgi.input": half, "wsgi.input_terminated": True})
    _is_refusal(response, 400)
    assert f"ended after {len(whole) // 2:,} of its {len(whole):,} bytes" in response.get_data(as_text=True)
    _unchanged(seeded)
