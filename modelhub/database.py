"""Database set-up: connection settings per backend, and bringing the schema up to date at start."""

from pathlib import Path

import flask_migrate
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import make_url

from modelhub.paths import resource_dir


def engine_options(url: str) -> dict:
    """Pool settings per backend: a PostgreSQL server may restart under a long-running registry."""
    return {"pool_pre_ping": True} if make_url(url).get_backend_name() == "postgresql" else {}


def configure_connections(app: Flask, engine) -> None:
    """Per-connection settings. SQLite: WAL (readers never block the writer), busy timeout, foreign
    keys, and the data directory created. PostgreSQL: a lock timeout, so a blocked write fails (503)
    instead of hanging."""
    busy_ms = int(app.config["MODELHUB_BUSY_TIMEOUT"] * 1000)
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        statements = ["PRAGMA journal_mode=WAL", f"PRAGMA busy_timeout={busy_ms}", "PRAGMA foreign_keys=ON"]
    elif backend == "postgresql":
        statements = [f"SET lock_timeout = {busy_ms}"]
    else:
        return

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
        # psycopg opened a transaction for SET; end it so the setting outlives the pool's rollback.
        dbapi_connection.commit()


def migrations_dir() -> str:
    return str(resource_dir("migrations"))


def upgrade_database(app: Flask) -> None:
    """Create an empty database's schema, or upgrade an older one, to the newest migration."""
    with app.app_context():
        flask_migrate.upgrade(directory=migrations_dir())
