"""Database set-up: connection settings per backend, and bringing the schema up to date at start."""

import ast
import re
from pathlib import Path

import click
from flask import Flask, current_app
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from modelhub.extensions import db
from modelhub.paths import resource_dir

# A migration's `revision = '0008'` and `down_revision = '0007'` lines (with or without a type annotation).
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def engine_options(url: str, *, pooled: bool = True) -> dict:
    """Pool settings per backend: a PostgreSQL server may restart under a long-running registry. An app
    for a command line pools nothing: each connection closes when its work is done, none is open at exit."""
    if not pooled:
        return {"poolclass": NullPool}
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


def migrations(app: Flask):
    """Flask-Migrate's command functions (``upgrade``, ``current`` ...), its extension bound to ``app``
    (migrations/env.py reads the engine and ``render_as_batch`` from it)."""
    import flask_migrate  # here, not at the top: Alembic is ~0.2 s of start-up and only a schema change needs it

    if "migrate" not in app.extensions:
        flask_migrate.Migrate(app, db, directory=migrations_dir(), render_as_batch=True)
    return flask_migrate


class MigrationCommands(click.Command):
    """``flask --app modelhub.app db ...``: Flask-Migrate's own commands, for a developer writing a
    migration (``db migrate``, ``db revision``). This stands in for Flask-Migrate's group, which is
    imported and bound to the app only when one of them runs."""

    def __init__(self):
        super().__init__("db", help="Perform database migrations.")

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        migrations(current_app)  # the flask command pushed the app's context
        from flask_migrate.cli import db  # here: see migrations()

        return db.make_context(info_name, args, parent=parent, **extra)


def upgrade_database(app: Flask) -> None:
    """Create an empty database's schema, or upgrade an older one, to the newest migration. A database
    already there is left as it is without starting Alembic (most of a command's start-up otherwise)."""
    with app.app_context():
        newest = newest_revision()
        if newest is None or _revisions_in(db.engine) != [newest]:
            migrations(app).upgrade(directory=migrations_dir())


def newest_revision() -> str | None:
    """The head of the migrations modelhub ships, read from each file's ``revision`` and
    ``down_revision`` lines; None where that is not one plain revision (a branch, a line written
    another way): then Alembic reads them itself."""
    revisions, parents = set(), set()
    for path in Path(migrations_dir(), "versions").glob("*.py"):
        lines = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        try:
            revision, parent = ast.literal_eval(lines["revision"]), ast.literal_eval(lines["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([parent] if isinstance(parent, str) else parent or ())
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _revisions_in(engine) -> list[str]:
    """The revision(s) Alembic recorded in the database; none for a new database."""
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError:  # no alembic_version table: nothing was ever migrated here
        return []
