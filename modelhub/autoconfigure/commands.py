"""``modelhub autoconfigure NAME``: search for a load_config that loads, here, printing each try."""

import json
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from modelhub.autoconfigure import runs
from modelhub.autoconfigure.runner import DEFAULT_MAX_SECONDS, DEFAULT_MAX_TRIES
from modelhub.autoconfigure.schemas import MAX_TRIES, AutoconfigureRunSchema
from modelhub.exceptions import ModelhubError
from modelhub.extensions import db

POLL_EVERY = 0.25


@click.command("autoconfigure")
@click.argument("model_name")
@click.option("--apply", is_flag=True, help="Make the config that loads the model's load_config at once.")
@click.option("--max-tries", type=click.IntRange(1, MAX_TRIES), default=DEFAULT_MAX_TRIES, show_default=True,
              help="At most this many loads, the current config's included.")
@click.option("--max-seconds", type=click.FloatRange(10, 24 * 3600), default=DEFAULT_MAX_SECONDS, show_default=True,
              help="Wall-clock budget of the whole search.")
@click.option("--json", "as_json", is_flag=True, help="Print the finished run as JSON (as GET /api/autoconfigure-runs/{id}).")
@with_appcontext
def autoconfigure_command(model_name, apply, max_tries, max_seconds, as_json):
    """Find a load_config that loads MODEL_NAME here: real tries, the next chosen from each failure's cause.

    Exits 0 when a config loads, 1 when none does (or the search was stopped), 2 when it cannot start.
    Ctrl-C stops the search (the try loading now is cut short)."""
    runner = current_app.extensions["modelhub.autoconfigure"]
    try:
        run = runner.start(model_name, max_tries=max_tries, max_seconds=max_seconds, apply=apply)
    except ModelhubError as refused:
        click.echo(f"Error: {refused}", err=True)
        sys.exit(2)
    shown = 0
    try:
        while True:
            run = runs.get(run.id)
            shown = _show_tries(run, shown, quiet=as_json)
            if run.state != "running":
                break
            db.session.commit()
            time.sleep(POLL_EVERY)
    except KeyboardInterrupt:
        click.echo("Stopping the search…", err=True)
        runner.stop(model_name)
        while (run := runs.get(run.id)).state == "running":
            db.session.commit()
            time.sleep(POLL_EVERY)
    record = AutoconfigureRunSchema().dump(run)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        _show_result(record)
    sys.exit(0 if run.state == "succeeded" else 1)


def _show_tries(run, shown: int, quiet: bool) -> int:
    """Print the tries that ended since last time; returns how many are shown now."""
    tries = run.tries or []
    ended = [entry for entry in tries if entry.get("outcome") not in ("running", None)]
    for entry in ended[shown:]:
        if not quiet:
            config = json.dumps(entry.get("config") or {}, sort_keys=True)
            if entry["outcome"] == "skipped":
                click.echo(f"  skipped {config}: {entry.get('cause')}")
            else:
                why = f" ({entry['why']})" if entry.get("why") else ""
                cause = f": [{entry.get('kind')}] {entry.get('cause')}" if entry["outcome"] == "failure" else ""
                click.echo(f"  try {config}{why} -> {entry['outcome']}{cause}")
    return len(ended)


def _show_result(record: dict) -> None:
    if record["state"] == "succeeded":
        click.echo(f"Found: {json.dumps(record['result_config'], sort_keys=True)} loads "
                   f"({record['result_status']}{': ' + record['result_reason'] if record['result_reason'] else ''}).")
        if record["applied_version"]:
            click.echo(f"Applied as load_config version {record['applied_version']}.")
        else:
            click.echo(f"Apply it with the Apply button in its details, or POST /api/autoconfigure-runs/{record['id']}/apply.")
    else:
        click.echo(f"No config loaded ({record['state']}): {record['result_reason']}")
