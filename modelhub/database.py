"""Database set-up: connection settings per backend, and bringing the schema up to date at start."""

from pathlib import Path

import flask_migrate
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import make_url

from modelhub.paths import resource_dir


def engine_options(url: str, busy_timeout: float) -> dict:
    """Per-backend options so that a write waiting on a lock gives up after ``busy_timeout`` seconds
    (the API then answers 503 with Retry-After) instead of hanging or failing at once."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": busy_timeout}}
    if backend == "postgresql":
        return {"connect_args": {"options": f"-c lock_timeout={int(busy_timeout * 1000)}"}, "pool_pre_ping": True}
    return {}


def prepare_sqlite(app: Flask, engine) -> None:
    """WAL (readers never block the writer), busy timeout, foreign keys; create the data directory."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    busy_ms = int(app.config["MODELHUB_BUSY_TIMEOUT"] * 1000)

    @event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def migrations_dir() -> str:
    return str(resource_dir("migrations"))


def upgrade_database(app: Flask) -> None:
    """Create an empty database's schema, or upgrade an older one, to the newest migration."""
    with app.app_context():
        flask_migrate.upgrade(directory=migrations_dir())
