"""``modelhub export`` and ``modelhub import`` (``modelhub.cli`` attaches them by name)."""

import json
import os
import tempfile
from pathlib import Path

import click
from flask.cli import with_appcontext

from modelhub import registry
from modelhub.exceptions import InvalidDocument, ModelNotFound, NoProof
from modelhub.exchange.document import build_document, counts, dumps, max_bytes, parse
from modelhub.exchange.merge import ON_CONFLICT, import_document
from modelhub.exchange.report import build_report
from modelhub.messages import flatten_messages


@click.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (default: standard output).")
@click.option("--report", "model_name", metavar="MODEL",
              help="Export MODEL's compatibility report (its working load_config and where it loaded) instead.")
@with_appcontext
def export_command(output, model_name):
    """Write the whole registry (or one model's compatibility report) as versioned JSON."""
    try:
        document = build_report(registry.get_model(model_name)) if model_name else build_document()
    except (ModelNotFound, NoProof) as error:
        raise click.ClickException(str(error)) from None
    text = dumps(document)
    if output is None:
        click.echo(text, nl=False)
        return
    _write_atomically(output, text)
    if model_name:
        click.echo(f"Wrote the compatibility report of {model_name} to {output}.", err=True)
    else:
        n = counts(document)
        click.echo(f"Exported {n['models']} model(s), {n['attempts']} load attempt(s) and {n['measurements']} "
                   f"measurement(s) to {output}.", err=True)


@click.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--on-conflict", type=click.Choice(ON_CONFLICT), default="keep", show_default=True,
              help="When a field is set both here and in the file to different values: keep this registry's "
                   "value, or replace it with the file's.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (as POST /api/import).")
@with_appcontext
def import_command(file, dry_run, on_conflict, as_json):
    """Import a registry export or a compatibility report (FILE, or - for standard input).

    Models are matched by name; nothing is deleted and no value is cleared. The whole file is
    checked first and imported in one transaction: a file with any error changes nothing.
    """
    limit = max_bytes()
    try:
        kind, document = parse(file.read(limit + 1), limit)
    except InvalidDocument as error:
        lines = "\n".join(f"  {line}" for line in flatten_messages(error.messages))
        raise click.ClickException(f"{file.name} cannot be imported; nothing was changed:\n{lines}") from None
    result = import_document(kind, document, on_conflict=on_conflict, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print_plan(result)


def _print_plan(result: dict) -> None:
    s = result["summary"]
    click.echo("Dry run: nothing was changed. This import would:" if result["dry_run"] else "Imported:")
    click.echo(f"  {s['models_added']} model(s) added, {s['models_updated']} updated, {s['models_unchanged']} unchanged; "
               f"{s['attempts_added']} load attempt(s), {s['measurements_added']} measurement(s), "
               f"{s['config_versions_added']} load_config version(s) and "
               f"{s.get('autoconfigure_runs_added', 0)} auto-configure run(s) added.")
    if s["conflicts"]:
        kept = "this registry's value was kept" if result["on_conflict"] == "keep" else "the file's value was taken"
        click.echo(f"  {s['conflicts']} conflict(s): {kept} (--on-conflict).")
    for model in result["models"]:
        marker = {"add": "+", "update": "~", "unchanged": "="}[model["action"]]
        runs = (f"{model['attempts_added']} attempt(s), {model['measurements_added']} measurement(s), "
                f"{model['config_versions_added']} load_config version(s), "
                f"{model.get('autoconfigure_runs_added', 0)} auto-configure run(s) added")
        click.echo(f"{marker} {model['model_name']} ({'new' if model['action'] == 'add' else runs})")
        for change in model["changes"]:
            click.echo(f"    {change['field']}: {_short(change['from'])} -> {_short(change['to'])}")
        for conflict in model["conflicts"]:
            click.echo(f"    conflict {conflict['field']}: here {_short(conflict['local'])}, "
                       f"file {_short(conflict['imported'])}; kept {conflict['kept']}")


def _short(value) -> str:
    text = "(empty)" if value is None else json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _write_atomically(path: Path, text: str) -> None:
    """Never leave a half-written export where a good one was."""
    path = path.expanduser()
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent or ".", prefix=f".{path.name}.",
                                         delete=False) as handle:
            handle.write(text)
        os.replace(handle.name, path)
    except OSError as error:
        if "handle" in locals() and os.path.exists(handle.name):
            os.unlink(handle.name)
        raise click.ClickException(f"Cannot write {path}: {error.strerror or error}") from None
    os.chmod(path, 0o644)  # a temporary file is private; an export is an ordinary file
