"""Another connection holds the write lock past the busy timeout: every write answers 503 with
Retry-After within the timeout plus a second, reads keep working, and nothing changes."""

import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.support import LiveServer

pytestmark = pytest.mark.slow

BUSY_TIMEOUT = 1.0
WRITES = [  # (method, path, json): one of each kind of write the API has
    ("PATCH", "/api/models/locked/model/config", {"compatibility_notes": "new"}),
    ("PATCH", "/api/models/locked/model/metadata", {"mmlu_score": 50.0}),
    ("PATCH", "/api/models/locked/model", {"config": {"compatibility_status": "compatible"}}),
    ("POST", "/api/models", {"model_name": "another/model"}),
    ("DELETE", "/api/models/locked/model", None),
    ("POST", "/api/models/locked/model/load", {}),
]


@pytest.fixture
def server(database_url, tmp_path):
    # Threads enough for every request at once: a request queued behind a full thread pool would wait
    # for a thread before its own busy timeout even began (that is capacity, not the lock).
    server = LiveServer(tmp_path / "home", database_url, serve_args=("--workers", "2", "--threads", "16"),
                        env={"MODELHUB_BUSY_TIMEOUT": str(BUSY_TIMEOUT)})
    server.start(timeout=90)
    response = requests.post(f"{server.url}/api/models", json={"model_name": "locked/model"}, timeout=10)
    assert response.status_code == 201
    yield server
    server.stop()


def hold_write_lock(database_url):
    """A connection that holds the database's (SQLite) or the table's rows' (PostgreSQL) write lock."""
    engine = create_engine(database_url)
    connection = engine.connect()
    if engine.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.execute(text("LOCK TABLE modelregistry IN EXCLUSIVE MODE"))
    return engine, connection


def test_writes_blocked_past_the_busy_timeout_answer_503_promptly(server, record_figures):
    before = requests.get(f"{server.url}/api/models/locked/model", timeout=10).json()
    engine, connection = hold_write_lock(server.database_url)
    results = []

    def send(method, path, body):
        started = time.monotonic()
        response = requests.request(method, server.url + path, json=body, timeout=30)
        results.append((method, path, response.status_code, response.headers.get("Retry-After"),
                        time.monotonic() - started, response.text[:300]))

    try:
        threads = [threading.Thread(target=send, args=write) for write in WRITES * 2]  # two of each at once
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        read = requests.get(f"{server.url}/api/models/locked/model", timeout=BUSY_TIMEOUT)  # readers not blocked
        for thread in threads:
            thread.join(timeout=30)
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()

    slowest = max(result[4] for result in results)
    record_figures(busy_timeout_s=BUSY_TIMEOUT, writes=len(results), answered_503=sum(r[2] == 503 for r in results),
                   slowest_s=round(slowest, 2), statuses=sorted({r[2] for r in results}))
    assert read.status_code == 200
    assert len(results) == len(WRITES) * 2
    for method, path, status, retry_after, _seconds, body in results:
        assert status == 503, (method, path, status, body)
        assert retry_after == "1"
        assert "busy" in body
    assert slowest < BUSY_TIMEOUT + 1
    after = requests.get(f"{server.url}/api/models/locked/model", timeout=10).json()
    assert after == before  # nothing changed
    assert requests.get(f"{server.url}/api/models/another/model", timeout=10).status_code == 404
