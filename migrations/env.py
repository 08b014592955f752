"""Alembic environment for modelhub: runs inside the Flask app (Flask-Migrate), on its engine.

Unlike Flask-Migrate's template it does not call logging.config.fileConfig: migrations run at every
server start, and reconfiguring logging there would silence the server's own loggers.
"""

import logging
import warnings

from alembic import context
from flask import current_app
from sqlalchemy.exc import SAWarning

import modelhub.models  # noqa: F401  (registers the tables on the metadata)

config = context.config
# SQLite's batch migrations copy each table, reflecting it first; SQLAlchemy cannot reflect the expression
# indexes on lower(model_name) and says so at every fresh start, though the migrations re-create them (0002).
warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index", category=SAWarning)
logger = logging.getLogger("alembic.env")
migrate_ext = current_app.extensions["migrate"]
target_metadata = migrate_ext.db.metadata


def _skip_empty_autogenerate(context, revision, directives):
    """`modelhub db migrate` with no model change writes no empty revision."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline() -> None:
    url = migrate_ext.db.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    options = dict(migrate_ext.configure_args)
    options.setdefault("process_revision_directives", _skip_empty_autogenerate)
    with migrate_ext.db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
