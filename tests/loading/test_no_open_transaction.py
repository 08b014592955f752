"""No database transaction stays open while a model loads or a benchmark runs: the supervisor's
records are short transactions, so other clients' writes and SQLite's checkpoints never wait on a
worker. Watched from the database's side: PostgreSQL's pg_stat_activity, SQLite's locks."""

import sqlite3
import time
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelhub.app import create_app
from tests.loading.conftest import Loader

pytestmark = pytest.mark.slow

WINDOWS = 3  # one-second windows watched while the worker hangs


@pytest.fixture
def tracked(database_url, tmp_path, with_test_plugins):
    """A loader whose PostgreSQL connections carry a name of their own, to find them in pg_stat_activity."""
    name = f"modelhub-{uuid.uuid4().hex[:8]}"
    url = database_url
    if not url.startswith("sqlite"):
        url = make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "MODELHUB_LOAD_TIMEOUT": 120})
    yield Loader(app), name
    app.extensions["modelhub.supervisor"].shutdown()
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def long_transactions_postgresql(database_url, name) -> int:
    """How many of the app's connections are inside a transaction begun over a second ago."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                "AND xact_start IS NOT NULL AND now() - xact_start > interval '1 second'"), {"name": name}).scalar()
    finally:
        engine.dispose()


def sqlite_window_is_free(path) -> bool:
    """Within one second: a writer gets the lock at once, and a full checkpoint finds no reader."""
    deadline, wrote, checkpointed = time.monotonic() + 1, False, False
    while time.monotonic() < deadline and not (wrote and checkpointed):
        connection = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            wrote = True
            checkpointed = checkpointed or connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        except sqlite3.OperationalError:
            pass
        finally:
            connection.close()
        time.sleep(0.05)
    return wrote and checkpointed


def watch(database_url, name) -> list[bool]:
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        return [sqlite_window_is_free(path) for _ in range(WINDOWS)]
    results = []
    for _ in range(WINDOWS):
        results.append(long_transactions_postgresql(database_url, name) == 0)
        time.sleep(1)
    return results


@pytest.mark.parametrize("job", ["load", "benchmark"])
def test_no_transaction_is_held_while_a_worker_runs(tracked, database_url, tiny_models, job):
    loader, name = tracked
    loader.register("tiny/llama", tiny_models["llama"], load_config={"fault_hang_seconds": 60})
    response = loader.client.post(f"/api/models/tiny/llama/{job}", json={})
    assert response.status_code == 202, response.json
    loader.wait_for_stage("tiny/llama", "loading")

    assert watch(database_url, name) == [True] * WINDOWS
    # And the model itself stays writable meanwhile.
    edit = loader.client.patch("/api/models/tiny/llama/config", json={"compatibility_notes": "edited during the run"})
    assert edit.status_code == 200
    assert loader.client.post("/api/models/tiny/llama/unload").status_code == 200
