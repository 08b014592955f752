"""``modelhub preflight NAME``: will the model load here, with its load_config or the one given, before
loading it (modelhub/preflight/ reads its metadata only). The exit status is for scripts: 0 fits (or
tight), 1 will not fit or cannot load, 2 bad input, 3 unknown (nothing to predict from)."""

import json

import click
from flask import current_app
from flask.cli import with_appcontext
from marshmallow import ValidationError

from modelhub import preflight, registry
from modelhub.exceptions import CopyMissing, ModelNotFound, UnknownCopy
from modelhub.schemas import PreflightQuerySchema

EXIT_STATUS = {"fits": 0, "tight": 0, "wont_fit": 1, "cannot_load": 1, "unknown": 3}
VERDICT_WORDS = {"fits": "fits", "tight": "tight", "wont_fit": "won't fit", "cannot_load": "cannot load",
                 "unknown": "unknown"}
TERM_WORDS = {"weights": "weights", "kv_cache": "KV cache", "activations": "activations",
              "overhead": "overhead", "calibration": "calibration"}


class BadInput(click.ClickException):
    """Input refused before anything was checked: exit status 2, as click's own usage errors."""

    exit_code = 2


@click.command()
@click.argument("model_name")
@click.option("--config", "load_config", metavar="JSON",
              help="A load_config to check instead of the saved one (JSON object; '' for the system defaults).")
@click.option("--context", type=int, metavar="N", help="Tokens of context to size the KV cache for.")
@click.option("--copy", "copy_id", type=click.IntRange(min=1), metavar="ID",
              help="Check this copy of its files (an id of GET /api/models/NAME/copies; default: its cache_path).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/models/{name}/preflight).")
@with_appcontext
def preflight_command(model_name, load_config, context, copy_id, as_json):
    """Will a model load here? Predicted peak memory per device, term by term, against what is free now,
    the verdict and its reason, and a config that would fit. Nothing is loaded.

    Exit status: 0 fits or tight, 1 will not fit or cannot load, 2 bad input, 3 unknown."""
    query = _query(load_config, context)
    try:
        model = registry.get_model(model_name)
    except ModelNotFound as error:
        raise BadInput(str(error)) from None
    try:
        result = preflight.check(current_app, model, load_config=query.get("load_config"),
                                 context_tokens=query.get("context"), copy_id=copy_id)
    except (UnknownCopy, CopyMissing) as error:
        raise BadInput(str(error)) from None
    if as_json:
        from modelhub.api.preflight import PreflightSchema  # here: only --json needs the API's schema

        click.echo(json.dumps(PreflightSchema().dump(result), indent=2))
    else:
        for line in describe(result):
            click.echo(line)
    click.get_current_context().exit(EXIT_STATUS.get(result["verdict"], 3))


def _query(load_config: str | None, context: int | None) -> dict:
    """The options, validated as the API validates its query (the plugins' keys, strict JSON)."""
    raw = {key: value for key, value in (("load_config", load_config), ("context", context)) if value is not None}
    try:
        return PreflightQuerySchema().load(raw)
    except ValidationError as error:
        option = {"load_config": "--config", "context": "--context"}
        lines = [f"  {option.get(field, field)}: {' '.join(map(str, messages))}"
                 for field, messages in error.messages.items()]
        raise BadInput("invalid options:\n" + "\n".join(lines)) from None


def describe(result: dict) -> list[str]:
    """The preflight for people: verdict first, then each device's terms, then what to do about it."""
    given = "the load_config given" if result["config_source"] == "given" else "its saved load_config"
    config = json.dumps(result["load_config"]) if result.get("load_config") else "system defaults"
    lines = [f"{result['model_name']}: {VERDICT_WORDS.get(result['verdict'], result['verdict'])}: {result['reason']}",
             f"  for {given} ({config}), batch 1, {result['context_tokens']:,} tokens of context"]
    if result.get("copy"):
        lines.append(f"  {copy_line(result['copy'])}")
    lines.append("")
    for device in result["devices"]:
        lines.extend(_device_lines(device))
    if result.get("total_bytes") is not None:
        raw = result.get("raw_total_bytes")
        before = f" ({size(raw)} before calibration)" if raw is not None and raw != result["total_bytes"] else ""
        lines.append(f"  total  {size(result['total_bytes'])}{before}")
    calibration = result.get("calibration")
    lines.append(f"  calibration: {calibration['text']}" if calibration else
                 "  calibration: none yet (no load measured on this host)")
    for problem in result.get("problems") or []:
        install = f" (pip install {problem['package']})" if problem.get("package") else ""
        lines.append(f"  problem ({problem['kind']}): {problem['message']}{install}")
    if result.get("fitting_config"):
        why = f": {result['fitting_reason']}" if result.get("fitting_reason") else ""
        lines.append(f"  a config that would fit{why}")
        lines.append(f"    --config '{json.dumps(result['fitting_config'])}'")
    lines.extend(f"  note: {note}" for note in result.get("notes") or [])
    return lines


def copy_line(copy: dict) -> str:
    """The copy that was checked: "copy 3: GGUF Q4_0, LM Studio (/home/…/tiny-qwen2.Q4_0.gguf)"."""
    if copy.get("id") is None:
        return f"files: {copy['path']}"
    missing = ", missing" if copy.get("missing") else ""
    return f"copy {copy['id']}: {copy['text']}{missing} ({copy['path']})"


def _device_lines(device: dict) -> list[str]:
    available = device.get("available_bytes")
    if available is None:
        against = "free memory not known"
    else:
        short = device["needed_bytes"] - available
        against = f"{size(available)} available, " + (f"{size(short)} short" if short > 0 else
                                                     f"{device.get('headroom') or 0:.0%} headroom")
    lines = [f"  {device['label']}: needs {size(device['needed_bytes'])} ({against})"]
    width = max((len(TERM_WORDS.get(term["name"], term["name"])) for term in device["terms"]), default=0)
    for term in device["terms"]:
        name = TERM_WORDS.get(term["name"], term["name"]).ljust(width)
        detail = f"  {term['detail']}" if term.get("detail") else ""
        lines.append(f"    {name}  {size(term['bytes']):>10}{detail}")
    return lines


def size(count: int) -> str:
    """Bytes in binary units, as the pages show them (Jinja's filesizeformat(binary=True))."""
    if abs(count) < 1024:
        return f"{count} Bytes"
    value = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
