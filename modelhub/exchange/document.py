"""Writing and reading the export document.

The document holds no volatile field (no export time, no database ids, no ``version`` counters), so
exporting, importing into a fresh database and exporting again gives the same bytes. Left out on
purpose: runs still going (a load or measurement in progress; the model's status is the one it had
before that load began), and what only this machine knows (copies on disk, the ``missing`` flag,
worker process ids): a scan rebuilds those.
"""

import json
import os
from collections import defaultdict

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import func, select

from modelhub import config_history
from modelhub.exchange import autoconfigure, environments
from modelhub.exceptions import DocumentTooLarge, InvalidDocument, MalformedDocument
from modelhub.exchange.schemas import (
    REGISTRY_FORMAT,
    REGISTRY_VERSION,
    REPORT_FORMAT,
    VERSIONS,
    CompatibilityReport,
    ConfigVersionEntry,
    Instant,
    ModelEntry,
    RegistryDocument,
)
from modelhub.extensions import db
from modelhub.fields import parse_json_text
from modelhub.models import LoadAttempt, Measurement, ModelRegistry

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # a registry with its history is far bigger than an API request
FORMATS = {REGISTRY_FORMAT: RegistryDocument, REPORT_FORMAT: CompatibilityReport}
_instant = Instant()
_ENTRY = ModelEntry()
_VERSION_FIELDS = tuple(ConfigVersionEntry().fields)


def build_document() -> dict:
    """The whole registry as the export document (a dict in the document's key order)."""
    # Sorted as the Models page lists them (ignoring case), ties broken exactly: the same registry
    # always gives the same document, on every database.
    models = sorted(db.session.scalars(select(ModelRegistry)), key=lambda row: (row.model_name.lower(), row.model_name))
    attempts = autoconfigure.without_running_tries(_finished_runs(LoadAttempt))  # they come with their run
    measurements = _finished_runs(Measurement)
    searches = autoconfigure.finished_runs()
    versions = config_history.versions_of([row.id for row in models])
    fingerprints = environments.fingerprints(
        run.environment_id for runs in (*attempts.values(), *measurements.values(), *searches.values()) for run in runs)
    running = _running_previous_status()
    entries = []
    for row in models:
        entry = model_entry(row, attempts[row.id], measurements[row.id], versions[row.id], fingerprints,
                            searches[row.id])
        if row.id in running and entry["compatibility_status"] == "testing":
            entry["compatibility_status"] = running[row.id]  # as if the load in progress had not begun
        entries.append(entry)
    return {"format": REGISTRY_FORMAT, "version": REGISTRY_VERSION,
            "environments": environments.to_document(fingerprints), "models": entries}


def export_totals() -> dict:
    """What an export made now would hold (runs in progress are left out of it), and how many runs are
    in progress."""

    def count(model, *where):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))

    return {"models": count(ModelRegistry),
            "attempts": count(LoadAttempt, LoadAttempt.outcome != "running", autoconfigure.not_a_running_try()),
            "measurements": count(Measurement, Measurement.outcome != "running"),
            "running": count(LoadAttempt, LoadAttempt.outcome == "running")
            + count(Measurement, Measurement.outcome == "running")}


def model_entry(row: ModelRegistry, attempts: list, measurements: list, versions: list,
                fingerprints: dict[int, str], searches: list = ()) -> dict:
    """One model's entry; its runs name the load_config version they ran by its number, their
    environment by its fingerprint, and an attempt its auto-configure run by when that started."""
    numbers = {version.id: version.number for version in versions}
    search_starts = autoconfigure.run_moments(searches)
    entry = _ENTRY.dump({
        **_columns(row), "metric_sources": None,
        "config_history": [{name: getattr(version, name) for name in _VERSION_FIELDS} for version in versions],
        "attempts": [{**_run(run, numbers, fingerprints), "autoconfigure_run": search_starts.get(run.autoconfigure_run_id)}
                     for run in attempts],
        "measurements": [_run(run, numbers, fingerprints) for run in measurements],
        "autoconfigure_runs": autoconfigure.entries(searches, attempts, numbers, fingerprints)})
    entry["metric_sources"] = sources_to_document(row.metric_sources, {m.id: m.started_at for m in measurements})
    return entry


def _run(run, numbers: dict, fingerprints: dict) -> dict:
    return {**{column.key: getattr(run, column.key) for column in run.__table__.columns},
            "config_version": numbers.get(run.config_version_id),
            "environment_fingerprint": fingerprints.get(run.environment_id)}


def sources_to_document(sources: dict | None, started: dict) -> dict | None:
    """A measured source's ``measurement_id`` becomes ``measurement``: when that measurement started
    (the key order is kept, so the document reads as the registry does)."""
    if not sources:
        return None
    converted = {}
    for metric, source in sources.items():
        if source.get("source") == "measured" and "measurement_id" in source:
            moment = started.get(source["measurement_id"])
            source = {("measurement" if k == "measurement_id" else k): v for k, v in source.items()}
            if moment is None:  # its measurement is gone: the value stays, marked measured, unlinked
                del source["measurement"]
            else:
                source["measurement"] = _instant._serialize(moment, None, None)
        converted[metric] = source
    return converted


def sources_from_document(sources: dict | None, ids: dict) -> dict | None:
    """The reverse: ``measurement`` (a start moment) becomes the local ``measurement_id``."""
    if not sources:
        return None
    converted = {}
    for metric, source in sources.items():
        if source.get("source") == "measured" and "measurement" in source:
            moment = _instant.deserialize(source["measurement"])
            source = {("measurement_id" if k == "measurement" else k): v for k, v in source.items()}
            source["measurement_id"] = ids[moment]
        converted[metric] = source
    return converted


def dumps(document: dict) -> str:
    """The document's text: stable (same document, same bytes), readable, UTF-8."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def parse(text: str | bytes, max_bytes: int) -> tuple[str, dict]:
    """Check a file and return (its format, the validated document). Raises InvalidDocument with
    per-field messages; nothing is looked up or written."""
    if len(text) > max_bytes:
        raise DocumentTooLarge({"_schema": [
            f"The file is over the import limit of {max_bytes:,} bytes (MODELHUB_IMPORT_MAX_BYTES)."]})
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise MalformedDocument({"_schema": [f"Not UTF-8 text (byte {error.start}): is this a modelhub export?"]}) from None
    if not text.strip():
        raise MalformedDocument({"_schema": ["The file is empty: give a modelhub export or compatibility report."]})
    try:
        raw = parse_json_text(text)
    except ValidationError as error:
        raise MalformedDocument({"_schema": error.messages}) from None
    return validate(raw)


def _format_found(raw: dict) -> str:
    """What the file's "format" field holds, in words: a file without one is not "None" to a user."""
    if "format" not in raw:
        return "this file has no \"format\" field: is it a modelhub export?"
    kind = raw["format"]
    if kind is None:
        return "this file's \"format\" is null"
    if isinstance(kind, str):
        return f"this file says {kind!r}"
    shown = json.dumps(kind)
    return f"this file's \"format\" is {shown if len(shown) <= 40 else shown[:40] + '…'}, not a text"


def validate(raw) -> tuple[str, dict]:
    """Check an already parsed document: its format and version first (a different kind of file gets
    one clear message, not a list of every field it lacks), then every field."""
    if not isinstance(raw, dict):
        raise InvalidDocument({"_schema": ["Must be a JSON object: a modelhub export or compatibility report."]})
    kind = raw.get("format")
    if not isinstance(kind, str) or kind not in FORMATS:  # {"format": {}} is not hashable
        raise InvalidDocument({"format": [
            f"Must be {REGISTRY_FORMAT!r} (a registry export) or {REPORT_FORMAT!r} (a compatibility report); "
            f"{_format_found(raw)}."]})
    version = raw.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSIONS[kind]:
        raise InvalidDocument({"version": [
            f"This file is format version {version}, written by a newer modelhub; this one reads up to version "
            f"{VERSIONS[kind]}. Upgrade modelhub to import it."]})
    try:
        return kind, FORMATS[kind]().load(raw)
    except ValidationError as error:
        raise InvalidDocument(error.messages) from None


def max_bytes() -> int:
    """The largest file an import reads: ``MODELHUB_IMPORT_MAX_BYTES`` (app config, else environment)."""
    configured = current_app.config.get("MODELHUB_IMPORT_MAX_BYTES") or os.environ.get("MODELHUB_IMPORT_MAX_BYTES")
    return int(configured or DEFAULT_MAX_BYTES)


def counts(document: dict) -> dict:
    models = document["models"]
    return {"models": len(models), "attempts": sum(len(e.get("attempts") or []) for e in models),
            "measurements": sum(len(e.get("measurements") or []) for e in models)}


# An entry's fields that are its row's columns as they are (metric sources and runs are converted).
_COLUMNS = tuple(name for name in _ENTRY.fields
                 if name not in ("metric_sources", "config_history", "attempts", "measurements", "autoconfigure_runs"))


def _columns(row: ModelRegistry) -> dict:
    return {name: getattr(row, name) for name in _COLUMNS}


def _finished_runs(model_class) -> dict[int, list]:
    """Each model's finished runs, oldest first."""
    runs = defaultdict(list)
    query = select(model_class).where(model_class.outcome != "running").order_by(model_class.started_at, model_class.id)
    for run in db.session.scalars(query):
        runs[run.model_id].append(run)
    return runs


def _running_previous_status() -> dict[int, str]:
    query = select(LoadAttempt).where(LoadAttempt.outcome == "running").order_by(LoadAttempt.id.desc())
    return {attempt.model_id: attempt.previous_status for attempt in db.session.scalars(query)}

