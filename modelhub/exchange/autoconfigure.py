"""Auto-configure runs in the export document: each model's finished runs (``autoconfigure_runs``), and
on each load attempt the run it was a try of (``autoconfigure_run``).

Like every run in the document, an auto-configure run is named by its model and the moment it started
(never a database id): an attempt names its run by that moment, a run names the version its result
became by its number in the entry's ``config_history`` (``applied_version``), and each try of the run
names its load attempt by when that attempt started (``attempt``, where the registry says
``attempt_id``). A run still going is left out, and so are the attempts that are its tries: they come
with the run once it has ended.

Import adds the runs the registry lacks (same model, same start) and links the attempts it adds to
their run, here or in the file; runs it has are history, never rewritten.
"""

from collections import defaultdict

from marshmallow import Schema, ValidationError, validate
from sqlalchemy import or_, select

from modelhub import models as m
from modelhub.exchange.values import (
    INSTANT_PATTERN, MAX_VERSION_NUMBER, TEXT_MAX, Instant, JsonValue, version_number,
)
from modelhub.extensions import db
from modelhub.fields import Choice, StrictBoolean, StrictFloat, StrictInteger, Text
from modelhub.models import AutoconfigureRun, LoadAttempt
from modelhub.schemas import compatibility_status

ENDED_STATES = tuple(state for state in m.AUTOCONFIGURE_STATES if state != "running")  # a run going is not exported
MAX_TRY_ENTRIES = 1_000  # a run's chain, pruned configs included: far more than any search considers
MAX_SECONDS = 10**9
_instant = Instant()


class Tries(JsonValue):
    """A run's chain of tries as it saw it (config, why, outcome, cause...): history, kept as it was,
    except that a try names its load attempt by when it started (``attempt``), not by a database id."""

    def __init__(self, **kwargs):
        super().__init__(kind=list, **kwargs)
        self.metadata = {**self.metadata, "maxItems": MAX_TRY_ENTRIES, "items": {
            "type": "object", "not": {"required": ["attempt_id"]},
            "properties": {"attempt": {"type": "string", "format": "date-time", "pattern": INSTANT_PATTERN,
                                       "description": "Its load attempt: one of the same entry's attempts."}}}}

    def _deserialize(self, value, attr, data, **kwargs):
        tries = super()._deserialize(value, attr, data, **kwargs)
        if len(tries) > MAX_TRY_ENTRIES:
            raise ValidationError(f"At most {MAX_TRY_ENTRIES} tries.")
        errors = {}
        for index, entry in enumerate(tries):
            if not isinstance(entry, dict):
                errors[index] = ["Must be a JSON object."]
            elif "attempt_id" in entry:
                errors[index] = {"attempt_id": ['Name the attempt by when it started ("attempt"), not by a database id.']}
            elif "attempt" in entry:
                try:
                    _instant.deserialize(entry["attempt"])
                except ValidationError as error:
                    errors[index] = {"attempt": error.messages}
        if errors:
            raise ValidationError(errors)
        return tries


class AutoconfigureRunEntry(Schema):
    """A finished auto-configure run: a search for a load_config that loads the model on one host, each
    try a load attempt of the same entry."""

    started_at = Instant(required=True, metadata={"description": "Identifies the run within its model."})
    finished_at = Instant(allow_none=True, load_default=None)
    state = Choice(ENDED_STATES, component="EndedAutoconfigureState", required=True)
    host = Text(max_length=255, required=True)
    environment_fingerprint = Text(max_length=64, allow_none=True, load_default=None, metadata={
        "description": "The environment it ran in: one of the document's environments."})
    start_config = Text(max_length=TEXT_MAX, allow_none=True, load_default=None, metadata={
        "description": "The model's load_config text when it started (history: not re-checked)."})
    result_config = Text(max_length=TEXT_MAX, allow_none=True, load_default=None, metadata={
        "description": "The first config that loaded, as text (history: not re-checked)."})
    result_status = compatibility_status(allow_none=True, load_default=None)
    result_reason = Text(max_length=TEXT_MAX, allow_none=True, load_default=None)
    tries = Tries(allow_none=True, load_default=None)
    max_tries = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_VERSION_NUMBER))
    max_seconds = StrictFloat(required=True, validate=validate.Range(min=0, max=MAX_SECONDS))
    apply = StrictBoolean(load_default=False)
    applied_version = version_number(allow_none=True, load_default=None, metadata={
        "description": "The load_config version its result became: a number of the same entry's config_history."})


def check_entry(data: dict, errors: dict) -> None:
    """A model entry's cross-references (ModelEntry's validation): run start times unique; a run's
    applied_version in config_history; a try's attempt and an attempt's run in the same entry."""
    runs = data.get("autoconfigure_runs") or []
    _unique_starts(runs, errors)
    numbers = {version["number"] for version in data.get("config_history") or []}
    attempts = {attempt["started_at"] for attempt in data.get("attempts") or []}
    for index, run in enumerate(runs):
        problems = {}
        if run.get("applied_version") is not None and run["applied_version"] not in numbers:
            problems["applied_version"] = [
                f"Names load_config version {run['applied_version']}, which is not in this model's config_history."]
        unknown = {position: {"attempt": [f"Names attempt {entry['attempt']}, which is not among this model's "
                                          "attempts."]}
                   for position, entry in enumerate(run.get("tries") or [])
                   if "attempt" in entry and _instant.deserialize(entry["attempt"]) not in attempts}
        if unknown:
            problems["tries"] = unknown
        if problems:
            errors.setdefault("autoconfigure_runs", {}).setdefault(index, {}).update(problems)
    starts = {run["started_at"] for run in runs}
    for index, attempt in enumerate(data.get("attempts") or []):
        if attempt.get("autoconfigure_run") is not None and attempt["autoconfigure_run"] not in starts:
            errors.setdefault("attempts", {}).setdefault(index, {})["autoconfigure_run"] = [
                f"Names auto-configure run {_instant._serialize(attempt['autoconfigure_run'], None, None)}, which is "
                "not among this model's autoconfigure_runs."]


def _unique_starts(runs: list, errors: dict) -> None:
    seen = {}
    for index, run in enumerate(runs):
        if run["started_at"] in seen:
            errors.setdefault("autoconfigure_runs", {}).setdefault(index, {})["started_at"] = [
                f"Two auto-configure runs of this model started at the same moment (also autoconfigure_runs."
                f"{seen[run['started_at']]})."]
        seen.setdefault(run["started_at"], index)


# Export ------------------------------------------------------------------------------------------------

def finished_runs() -> dict[int, list[AutoconfigureRun]]:
    """Each model's ended runs, oldest first."""
    runs = defaultdict(list)
    query = (select(AutoconfigureRun).where(AutoconfigureRun.state != "running")
             .order_by(AutoconfigureRun.started_at, AutoconfigureRun.id))
    for run in db.session.scalars(query):
        runs[run.model_id].append(run)
    return runs


def not_a_running_try():
    """The condition an exported attempt meets: it is no try of a run still going."""
    running = select(AutoconfigureRun.id).where(AutoconfigureRun.state == "running")
    return or_(LoadAttempt.autoconfigure_run_id.is_(None), LoadAttempt.autoconfigure_run_id.not_in(running))


def without_running_tries(attempts: dict[int, list]) -> dict[int, list]:
    """``attempts`` (model id -> attempts) less the tries of runs still going."""
    running = set(db.session.scalars(select(AutoconfigureRun.id).where(AutoconfigureRun.state == "running")))
    if not running:
        return attempts
    kept = defaultdict(list)
    for model_id, rows in attempts.items():
        kept[model_id] = [row for row in rows if row.autoconfigure_run_id not in running]
    return kept


def entries(runs: list[AutoconfigureRun], attempts: list[LoadAttempt], numbers: dict[int, int],
            fingerprints: dict[int, str]) -> list[dict]:
    """One model's runs as the document holds them (to be dumped by AutoconfigureRunEntry)."""
    started = {attempt.id: attempt.started_at for attempt in attempts}
    return [{**{column.key: getattr(run, column.key) for column in run.__table__.columns},
             "environment_fingerprint": fingerprints.get(run.environment_id),
             "tries": _tries_to_document(run.tries, started),
             "applied_version": numbers.get(run.applied_version_id)} for run in runs]


def run_moments(runs: list[AutoconfigureRun]) -> dict:
    """Run id -> when it started, for the attempts that name their run."""
    return {run.id: run.started_at for run in runs}


def _tries_to_document(tries: list | None, started: dict) -> list | None:
    if tries is None:
        return None
    converted = []
    for entry in tries:
        if isinstance(entry, dict) and "attempt_id" in entry:
            # In place of the id, where it stood; left out when its attempt is not exported (still running).
            moment = started.get(entry["attempt_id"])
            entry = {("attempt" if key == "attempt_id" else key):
                     (_instant._serialize(moment, None, None) if key == "attempt_id" else value)
                     for key, value in entry.items() if key != "attempt_id" or moment is not None}
        converted.append(entry)
    return converted


# Import ------------------------------------------------------------------------------------------------

def new_runs(entry: dict, local_starts) -> list[dict]:
    """The entry's runs the registry lacks (``local_starts``: when the model's runs here started, UTC)."""
    known = set(local_starts)
    return [run for run in entry.get("autoconfigure_runs") or [] if run["started_at"] not in known]


def write(model_id: int, runs: list[dict], version_ids: dict[int, int], environment_ids: dict[str, int],
          as_utc) -> tuple[dict, list]:
    """Add the planned runs of one model (in the import's transaction). Returns each of its runs' start
    (UTC) -> id here, for the attempts to link, and the rows added with their tries still to link."""
    added = []
    for run in runs:
        row = AutoconfigureRun(
            model_id=model_id, **{name: run.get(name) for name in _COPIED},
            environment_id=environment_ids.get(run.get("environment_fingerprint")),
            applied_version_id=version_ids.get(run.get("applied_version")),
            stop_requested=False, owner_pid=None, tries=None)
        db.session.add(row)
        added.append((row, run.get("tries")))
    db.session.flush()
    query = select(AutoconfigureRun.started_at, AutoconfigureRun.id).where(AutoconfigureRun.model_id == model_id)
    return {as_utc(moment): run_id for moment, run_id in db.session.execute(query)}, added


def link_tries(model_id: int, added: list, as_utc) -> None:
    """Once the model's attempts are written: each added run's tries name their attempt by its id here."""
    if not added:
        return
    query = select(LoadAttempt.started_at, LoadAttempt.id).where(LoadAttempt.model_id == model_id)
    ids = {as_utc(moment): attempt_id for moment, attempt_id in db.session.execute(query)}
    for row, tries in added:
        # A document without its tries (null) still gives a run with a chain, empty: every run has one, as the
        # API's AutoconfigureRun.tries (an array) says.
        row.tries = [_try_from_document(entry, ids) for entry in tries or []]


def _try_from_document(entry: dict, ids: dict) -> dict:
    if "attempt" not in entry:
        return entry
    attempt_id = ids.get(_instant.deserialize(entry["attempt"]))
    return {("attempt_id" if key == "attempt" else key): (attempt_id if key == "attempt" else value)
            for key, value in entry.items()}


_COPIED = ("started_at", "finished_at", "state", "host", "start_config", "result_config", "result_status",
           "result_reason", "max_tries", "max_seconds", "apply")
