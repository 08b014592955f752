"""The ``modelhub`` command: its global options, and where each subcommand lives.

A subcommand's module is imported only when it runs (or when ``--help`` lists them all): a command line
starts in a fraction of a second only if ``--version`` imports nothing but the version and ``list``
never imports gunicorn, Alembic or the web views (click's "lazily loading subcommands" pattern). The
commands that need the app take it from Flask's ``ScriptInfo``, set here, through ``with_appcontext``.
"""

import atexit
import gc
import importlib
import os

import click

from modelhub import __version__

# Command name -> "module:attribute" of its click command.
COMMANDS = {
    "add": "modelhub.commands:add",
    "autoconfigure": "modelhub.autoconfigure.commands:autoconfigure_command",
    "bench": "modelhub.commands:bench",
    "db": "modelhub.database_commands:db_group",
    "export": "modelhub.exchange.commands:export_command",
    "import": "modelhub.exchange.commands:import_command",
    "list": "modelhub.commands:list_",
    "plugins": "modelhub.commands:plugins",
    "preflight": "modelhub.preflight_commands:preflight_command",
    "scan": "modelhub.commands:scan",
    "serve": "modelhub.commands:serve",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported by name when first needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module), attribute)


def _set_data_dir(ctx, _param, value):
    if value:
        os.environ["MODELHUB_HOME"] = value
    return value


def _create_app():
    from modelhub.app import create_app  # here: only a command that uses the app pays for importing it

    return create_app(web=False)  # no command answers a request (serve's workers build their own apps)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    metavar="DIR",
    callback=_set_data_dir,
    expose_value=False,
    is_eager=True,
    help="Where models.db lives (default: $MODELHUB_HOME, else ~/.local/share/modelhub).",
)
@click.version_option(__version__, prog_name="modelhub")
@click.pass_context
def main(ctx):
    """modelhub: a registry and loader for Hugging Face causal language models."""
    from flask.cli import ScriptInfo  # here, not at the top: `modelhub --version` imports no Flask

    # with_appcontext builds the app from this once, for the commands that need it.
    ctx.obj = ScriptInfo(create_app=_create_app, set_debug_flag=False)
    if ctx.invoked_subcommand != "serve":
        # Python's last garbage collection walks every object start-up made (SQLAlchemy, Flask): a fifth
        # of `modelhub list` on 2 cores. A command leaves nothing for it to close (its app pools no
        # connections), so it is skipped. Not for serve: its forked workers inherit this at exit.
        atexit.register(gc.freeze)
