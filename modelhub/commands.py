"""The registry's commands: serve, add, list, bench, scan, plugins (``modelhub.cli`` attaches them)."""

import json
import os
import sys
import time

import click
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext
from marshmallow import ValidationError

from modelhub import __version__, config_history, library_catalogue, registry
from modelhub.autoconfigure import runs as autoconfigure_runs
from modelhub.discovery import locations_summary
from modelhub.discovery.service import scan_and_record, summary_dict
from modelhub.exceptions import DuplicateModel, LoadConflict, ModelNotFound, UnknownCopy
from modelhub.measuring import measurements
from modelhub.measuring.schemas import MeasurementSchema
from modelhub.models import CACHE_LOCATIONS
from modelhub.plugin_manager import create_plugin_host
from modelhub.schemas import ModelCreateSchema, ModelListQuerySchema, ModelSchema, PluginSchema
from modelhub.settings import DEFAULT_HOST, DEFAULT_PORT, describe_database


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Threads per worker.")
@click.option("--allow-remote-code", is_flag=True,
              help="Let load configs use trust_remote_code (runs code shipped with a model).")
@click.option("--scan", "scan_first", is_flag=True, envvar="MODELHUB_SCAN_ON_START",
              help="Scan the cache locations for models before serving.")
@click.pass_context
def serve(ctx, host, port, workers, threads, allow_remote_code, scan_first):
    """Start the web server (gunicorn)."""
    # Imported here: gunicorn, and the request checks' error pages, only for the command that serves.
    from modelhub import security
    from modelhub.server import serve as run_server

    problem = security.exposure_problem(host, os.environ.get("MODELHUB_API_TOKEN") or None)
    if problem:
        raise click.ClickException(problem)
    if allow_remote_code:
        os.environ["MODELHUB_ALLOW_REMOTE_CODE"] = "1"  # read by the workers' apps and the load workers
    os.environ["MODELHUB_BIND_HOST"] = host  # the workers' Host check answers to the bound address
    app = ctx.ensure_object(ScriptInfo).load_app()  # creates or upgrades the database before any worker starts
    with app.app_context():  # not around run_server: the workers build their own apps
        app.extensions["modelhub.supervisor"].recover()  # loads a previous server left running
        autoconfigure_runs.close_interrupted(app)  # and its auto-configure searches
        if scan_first:
            _report_scan(_run_scan(show_progress=False))
    database = describe_database(app.config["SQLALCHEMY_DATABASE_URI"])
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"modelhub {__version__}: serving on http://{shown_host}:{port}/")
    click.echo(f"Registry database: {database}")
    for line in security.startup_lines(host, f"http://{shown_host}:{port}/", app.config):
        click.echo(line)
    if allow_remote_code:
        click.echo("trust_remote_code is ALLOWED: models may run code they ship with.")
    sys.stdout.flush()
    run_server(host, port, workers=workers, threads=threads)


@click.command()
@click.argument("model_name")
@click.option("--hf-path", help="Hugging Face repository path (default: the name).")
@click.option("--cache-location", type=click.Choice(CACHE_LOCATIONS), default="primary")
@click.option("--cache-path", help="Where the files are, for a custom location.")
@click.option("--status", "compatibility_status", help="Compatibility status (default: unknown).")
@click.option("--notes", "compatibility_notes", help="Compatibility notes.")
@click.option("--load-config", help="A JSON object of from_pretrained settings.")
@with_appcontext
def add(**options):
    """Register a model."""
    try:
        fields = ModelCreateSchema().load({k: v for k, v in options.items() if v is not None})
        with config_history.made_by("created", via="cli"):
            row = registry.create_model(fields)
    except ValidationError as error:
        raise _invalid("model", error) from None
    except DuplicateModel as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Registered {row.model_name} ({row.cache_location}).")


@click.command("list")
@click.option("--status", multiple=True, help="Only this status (repeatable).")
@click.option("--search", "q", help="Only names containing this text.")
@click.option("--sort", default="model_name", show_default=True, help="Column, '-column' for descending.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the API's model objects).")
@with_appcontext
def list_(status, q, sort, as_json):
    """List registered models."""
    raw = {"status": list(status), "sort": sort, "per_page": 500}
    if q:
        raw["q"] = q
    try:
        query = ModelListQuerySchema().load(raw)
    except ValidationError as error:
        raise _invalid("options", error, raw) from None
    rows = registry.all_models(status=query.get("status"), q=query.get("q"), sort=query["sort"])
    if as_json:
        click.echo(json.dumps(ModelSchema(many=True).dump(rows), indent=2))
    elif rows:
        _print_table(rows)
    elif status or q:
        click.echo(f"No registered model matches {_describe_filters(status, q)}.")
    else:
        click.echo("No models registered. Add one with: modelhub add ORG/NAME (or find them on disk: modelhub scan)")


def _describe_filters(status, q) -> str:
    parts = []
    if status:
        parts.append("status " + " or ".join(status))
    if q:
        parts.append(f"a name containing {q!r}")
    return " and ".join(parts)


@click.command()
@click.argument("model_name")
@click.option("--force", is_flag=True, help="Measure even a model marked incompatible.")
@click.option("--copy", "copy_id", type=click.IntRange(min=1),
              help="Measure this copy of its files (an id of GET /api/models/NAME/copies; default: its cache_path).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurement as JSON (as GET .../measurements).")
@with_appcontext
def bench(model_name, force, copy_id, as_json):
    """Measure a model here: TTFT, throughput, perplexity, memory (loads it in a worker)."""
    try:
        measurement_id = current_app.extensions["modelhub.supervisor"].measure(model_name, force=force,
                                                                               copy_id=copy_id).id
    except (LoadConflict, ModelNotFound, UnknownCopy) as refusal:
        raise click.ClickException(str(refusal)) from None
    stage, progress = None, sys.stderr.isatty() and not as_json
    while True:
        measurement = measurements.as_stored(measurement_id)
        if measurement.outcome != "running":
            break
        if progress and measurement.stage != stage:
            stage = measurement.stage
            click.echo(f"  {stage}…", err=True)
        time.sleep(0.2)
    record = MeasurementSchema().dump(measurement)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    elif record["outcome"] != "success":
        raise click.ClickException(f"measurement {record['outcome']}: {record['error_type']}: {record['error_message']}")
    else:
        results = record["results"]
        click.echo(f"{model_name}: TTFT {results['time_to_first_token']['avg_latency_ms']:.1f} ms, "
                   f"{results['throughput']['batch1_tokens_per_sec']:.1f} tokens/s at batch 1, "
                   f"best {results['throughput']['best_tokens_per_sec']:.1f} at batch {results['throughput']['best_batch_size']}, "
                   f"perplexity {results['perplexity']['perplexity']:.3f}, loaded in {results['load_seconds']:.1f} s")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (as GET /api/scan).")
@with_appcontext
def scan(as_json):
    """Find models in the Hugging Face cache, the secondary roots and the libraries of LM Studio, Ollama and
    text-generation-webui; update the registry."""
    summary = _run_scan(show_progress=sys.stderr.isatty() and not as_json)
    problems = summary_dict(summary)["problems"]
    if as_json:
        click.echo(json.dumps({**summary_dict(summary), "roots": locations_summary.roots(problems)}, indent=2))
    else:
        _report_scan(summary)
        _report_roots(locations_summary.roots(problems))


def _run_scan(show_progress: bool):
    if not show_progress:
        return scan_and_record()
    bar = click.progressbar(length=1, label="Scanning", file=sys.stderr)
    with bar:
        def progress(done, total):
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        return scan_and_record(progress)


def _report_scan(summary) -> None:
    click.echo(f"Scan done: {len(summary.added)} new model(s), {summary.copies_added} new cop(ies), "
               f"{len(summary.came_back)} back, {len(summary.went_missing)} missing.")
    for name in summary.added:
        click.echo(f"  new: {name}")
    for name in summary.went_missing:
        click.echo(f"  missing: {name}")
    for problem in summary.problems:
        click.echo(f"  could not read {problem.path}: {problem.message}", err=True)


def _report_roots(roots: list[dict]) -> None:
    """Each place looked in, what it holds now (as GET /api/scan's roots)."""
    click.echo("Where:")
    width = max((len(library_catalogue.BY_ID[root["library"]].name) for root in roots), default=0)
    for root in roots:
        name = library_catalogue.BY_ID[root["library"]].name
        held = f"{root['copies']} cop{'y' if root['copies'] == 1 else 'ies'}, {_size(root['size_bytes'])}"
        extra = "".join(f", {root[key]} {key}" for key in ("linked", "missing") if root[key])
        state = "" if root["exists"] else " (not there)"
        click.echo(f"  {name:<{width}}  {root['root'] or '(custom paths)'}: {held}{extra}{state}")


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/plugins).")
def plugins(as_json):
    """List plugins: their hooks, the load_config keys they own, and errors."""
    reports = create_plugin_host().plugin_reports()
    if as_json:
        click.echo(json.dumps(PluginSchema(many=True).dump(reports), indent=2))
        return
    if not reports:
        click.echo("No plugins installed (or MODELHUB_LOAD_PLUGINS names none).")
    for report in reports:
        where = f"{report.distribution} {report.version}" if report.distribution else report.module
        click.echo(f"{report.name}  ({where})")
        if report.error:
            click.echo(f"  NOT LOADED: {report.error}")
            continue
        click.echo(f"  hooks: {', '.join(report.hooks) or '-'}")
        click.echo(f"  keys:  {', '.join(report.keys) or '-'}")


def _invalid(what: str, error: ValidationError, given: dict | None = None) -> click.ClickException:
    """One line per field; a repeated option's message names the value it refuses (``status 'nope'``)."""
    lines = []
    for field, messages in error.messages.items():
        if isinstance(messages, dict):  # a list field: messages per item index
            for index, item_messages in messages.items():
                value = (given or {}).get(field, [])[index] if isinstance(index, int) else index
                lines.append(f"  {field} {value!r}: {' '.join(map(str, item_messages))}")
        else:
            lines.append(f"  {field}: {' '.join(map(str, messages))}")
    return click.ClickException(f"invalid {what}:\n" + "\n".join(lines))


def _print_table(rows):
    headers = ("MODEL", "STATUS", "LOCATION", "HF PATH")
    table = [(r.model_name, r.compatibility_status, r.cache_location, r.hf_path) for r in rows]
    widths = [max(len(str(row[i])) for row in [headers, *table]) for i in range(len(headers))]
    for row in [headers, *table]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
