"""``modelhub db``: the schema commands a user of an installed modelhub needs.

Flask-Migrate's own ``flask db`` group is for people who write migrations (``init``, ``revision``,
``edit``, a ``--directory`` option): modelhub ships its migrations inside the package, so those
commands would only offer ways to break an install. These wrap the few that read or move the schema.
"""

from functools import partial

import click
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext

from modelhub.app import create_app
from modelhub.database import migrations, migrations_dir


@click.group("db")
@click.pass_context
def db_group(ctx):
    """The registry database's schema (start-up upgrades it; these show or move it by hand)."""
    # Every other command brings the schema up to date first; these must see it as it is.
    ctx.obj = ScriptInfo(create_app=partial(create_app, {"MODELHUB_AUTO_UPGRADE": False}, web=False))


@db_group.command()
@with_appcontext
def current():
    """Show the schema revision the database is at."""
    migrations(current_app).current(directory=migrations_dir())


@db_group.command()
@click.option("-v", "--verbose", is_flag=True, help="Show each revision's details.")
@with_appcontext
def history(verbose):
    """List the schema revisions modelhub ships, newest first."""
    migrations(current_app).history(directory=migrations_dir(), verbose=verbose)


@db_group.command()
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision):
    """Upgrade the schema to REVISION (default: the newest)."""
    migrations(current_app).upgrade(directory=migrations_dir(), revision=revision)


@db_group.command()
@click.argument("revision", default="-1")
@click.confirmation_option(prompt="A downgrade may drop columns and the values in them. Go on?")
@with_appcontext
def downgrade(revision):
    """Downgrade the schema to REVISION (default: one step back), e.g. to run an older modelhub."""
    migrations(current_app).downgrade(directory=migrations_dir(), revision=revision)
