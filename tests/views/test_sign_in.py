"""MODELHUB_API_TOKEN: writes need it (a bearer token, or the cookie the sign-in form sets), reads are
open unless MODELHUB_PROTECT_READS=1, and a refused write changes nothing."""

import pytest

from modelhub.app import create_app
from modelhub.security import COOKIE_NAME, exposure_problem, session_value

TOKEN = "correct-horse-battery-staple"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def guarded(database_url, tmp_path):
    """An app with a token, and a model registered with it."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_HOME": str(tmp_path),
                      "MODELHUB_API_TOKEN": TOKEN})
    client = app.test_client()
    assert client.post("/api/models", json={"model_name": "org/base"}, headers=BEARER).status_code == 201
    yield client
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def _names(client):
    return [m["model_name"] for m in client.get("/api/models").json["items"]]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token-of-some-length"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": f"Bearer{TOKEN}"},
    {"Authorization": "Bearer \u00e9\u00e9\u00e9"},
    {"Cookie": f"{COOKIE_NAME}={TOKEN}"},  # the cookie holds a value derived from the token, not the token
])
def test_writes_without_the_token_are_401_and_change_nothing(guarded, headers):
    api = guarded.post("/api/models", json={"model_name": "org/new"}, headers=headers)
    assert api.status_code == 401
    assert api.headers["WWW-Authenticate"] == 'Bearer realm="modelhub"'
    assert api.json == {"code": 401, "status": "Unauthorized", "message": (
        "Changes need the API token: send 'Authorization: Bearer <MODELHUB_API_TOKEN>', or sign in on the page (/sign-in).")}
    page = guarded.post("/models/org/base/load", headers={**headers, "HX-Request": "true"})
    assert page.status_code == 401 and b"sign in on the page" in page.data
    assert guarded.delete("/api/models/org/base", headers=headers).status_code == 401
    assert guarded.post("/scan", headers=headers).status_code == 401
    assert _names(guarded) == ["org/base"]
    assert guarded.get("/api/scan").json["state"] == "idle"


def test_the_token_lets_writes_through(guarded):
    response = guarded.patch("/api/models/org/base/config", json={"compatibility_notes": "ok"},
                             headers={"Authorization": f"bearer   {TOKEN}  "})
    assert response.status_code == 200 and response.json["compatibility_notes"] == "ok"


def test_the_token_does_not_excuse_a_cross_site_write(guarded):
    response = guarded.post("/api/models", json={"model_name": "org/new"}, headers={**BEARER, "Origin": "http://evil.example"})
    assert response.status_code == 403
    assert _names(guarded) == ["org/base"]


def test_reads_stay_open_by_default(guarded):
    assert guarded.get("/api/models/org/base").status_code == 200
    page = guarded.get("/")
    assert page.status_code == 200 and b"org/base" in page.data
    assert b"Read-only until you" in page.data and b'href="/sign-in?next=/"' in page.data


def test_the_sign_in_form_sets_a_strict_http_only_cookie(guarded):
    assert guarded.get("/sign-in").status_code == 200
    wrong = guarded.post("/sign-in", data={"token": "nope"})
    assert wrong.status_code == 401 and b"That is not the server&#39;s token." in wrong.data
    assert guarded.get_cookie(COOKIE_NAME) is None

    right = guarded.post("/sign-in", data={"token": TOKEN, "next": "/compare"})
    assert right.status_code == 303 and right.headers["Location"] == "/compare"
    cookie = right.headers["Set-Cookie"]
    assert f"{COOKIE_NAME}={session_value(TOKEN)}" in cookie and TOKEN not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie

    assert guarded.post("/api/models", json={"model_name": "org/new"}).status_code == 201
    assert b"Signed in" in guarded.get("/").data
    assert guarded.post("/sign-out").status_code == 303
    assert guarded.post("/api/models", json={"model_name": "org/other"}).status_code == 401
    assert _names(guarded) == ["org/base", "org/new"]


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_sign_in_only_goes_back_to_this_server(guarded, target):
    response = guarded.post("/sign-in", data={"token": TOKEN, "next": target})
    assert response.headers["Location"] == "/models"


def test_a_cross_site_sign_in_is_refused(guarded):
    # Login CSRF: another site must not sign this browser in (to its own token, or at all).
    response = guarded.post("/sign-in", data={"token": TOKEN}, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert guarded.get_cookie(COOKIE_NAME) is None


def test_protected_reads_need_the_token_too(database_url, tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_HOME": str(tmp_path),
                      "MODELHUB_API_TOKEN": TOKEN, "MODELHUB_PROTECT_READS": True})
    client = app.test_client()
    assert client.post("/api/models", json={"model_name": "org/secret"}, headers=BEARER).status_code == 201
    for path in ["/api/models", "/api/models/org/secret", "/", "/compare", "/api/openapi.json"]:
        response = client.get(path)
        assert response.status_code == 401, path
        assert b"org/secret" not in response.data and b"models.db" not in response.data
    assert client.get("/api/models", headers=BEARER).json["items"][0]["model_name"] == "org/secret"
    # What signing in needs stays open.
    assert client.get("/sign-in").status_code == 200
    assert client.get("/static/css/modelhub.css").status_code == 200
    assert b"models.db" not in client.get("/sign-in").data
    client.post("/sign-in", data={"token": TOKEN})
    assert b"org/secret" in client.get("/").data
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


@pytest.mark.parametrize("host, token, refused", [
    ("127.0.0.1", None, False),
    ("localhost", None, False),
    ("::1", None, False),
    ("127.0.0.5", None, False),
    ("0.0.0.0", None, True),
    ("::", None, True),
    ("192.168.1.5", None, True),
    ("gpu-box.lan", None, True),
    ("0.0.0.0", TOKEN, False),
    ("0.0.0.0", "short", True),
    ("127.0.0.1", "short", True),
])
def test_binding_beyond_loopback_needs_a_long_enough_token(host, token, refused):
    problem = exposure_problem(host, token)
    assert bool(problem) is refused
    if refused:
        assert "export MODELHUB_API_TOKEN=" in problem
