"""GET /api/health: the cheap check the page's connection banner retries (static/js/connection.js)."""

import pytest
from sqlalchemy import event

from modelhub.app import create_app


def test_it_answers_ok_and_is_never_cached(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_it_reads_and_writes_nothing_in_the_database(app, client):
    statements = []
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    client.get("/api/models")  # the listener works: a real endpoint queries
    assert statements
    statements.clear()
    for _ in range(3):
        assert client.get("/api/health").status_code == 200
    assert statements == []


@pytest.fixture
def protected(tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}",
                      "MODELHUB_HOME": str(tmp_path), "MODELHUB_API_TOKEN": "t" * 24, "MODELHUB_PROTECT_READS": True})
    yield app.test_client()
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def test_it_answers_without_the_token_where_reads_need_it(protected):
    assert protected.get("/api/models").status_code == 401
    assert protected.get("/api/health").status_code == 200


def test_writes_to_it_are_refused(client):
    response = client.post("/api/health", json={})
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
