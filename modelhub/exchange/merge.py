"""Importing: a plan of what a document would change, and applying it in one transaction.

The rules (docs/exchange.md says them for users):

- models are matched by name; a model the registry lacks is added with everything the file holds;
- an import never deletes a model and never clears a value: a field the file leaves empty, or out,
  changes nothing;
- a field empty here is filled from the file; notes that begin with the notes kept here only add to
  them and are taken; any other difference is a conflict, which keeps the value here
  (``on_conflict="keep"``, the default) or takes the file's (``"replace"``); a metric and its source
  (typed, card, measured) travel together;
- load attempts and measurements are history: those the registry lacks (same model, same start) are
  added, none is changed or removed; so importing the same file twice changes nothing the second time;
- so is each model's load_config history: the versions the registry lacks are added, and a change of
  load_config made by the import is a version of its own (``exchange/history.py``).

A plan is computed inside the transaction that applies it; a concurrent edit of a model makes the
write fail its version check, and the whole import is planned and applied again on the newest rows.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from modelhub import config_history, registry
from modelhub.exceptions import PlanChanged, WriteContention
from modelhub.exchange import autoconfigure, history
from modelhub.exchange import environments as exchange_environments
from modelhub.exchange.document import sources_from_document, sources_to_document
from modelhub.exchange.report import report_entry
from modelhub.exchange.schemas import REGISTRY_FORMAT, AttemptEntry, MeasurementEntry
from modelhub.extensions import db
from modelhub.metric_catalogue import METRIC_FIELDS
from modelhub.models import AutoconfigureRun, LoadAttempt, Measurement, ModelRegistry, utcnow
from modelhub.schemas import NOTES_MAX

ON_CONFLICT = ("keep", "replace")
TEXT_FIELDS = ("hf_path", "cache_location", "cache_path", "compatibility_status", "compatibility_notes",
               "load_config", "quantization")
# The value a field has when nobody set it: the file's value fills it without a conflict.
UNSET = {"compatibility_status": "unknown", "cache_location": "primary"}
# A run in the document carries the columns it is stored in (its model aside), and the number of the
# load_config version it ran (config_version), which becomes that version's id here.
# References the document makes by number / fingerprint / start moment.
_NAMED = ("config_version", "environment_fingerprint", "autoconfigure_run")
ATTEMPT_COLUMNS = tuple(name for name in AttemptEntry().fields if name not in _NAMED)
MEASUREMENT_COLUMNS = tuple(name for name in MeasurementEntry().fields if name not in _NAMED)
CHUNK = 500  # names per IN (...) query


@dataclass
class ModelPlan:
    model_name: str
    action: str  # add, update, unchanged
    changes: list = field(default_factory=list)  # {"field", "from", "to"}
    conflicts: list = field(default_factory=list)  # {"field", "local", "imported", "kept"}
    attempts_added: int = 0
    measurements_added: int = 0
    autoconfigure_runs_added: int = 0
    versions: history.VersionPlan = field(default_factory=history.VersionPlan, repr=False)
    entry: dict = field(default_factory=dict, repr=False)
    updates: dict = field(default_factory=dict, repr=False)  # column -> value taken from the file
    sources: dict = field(default_factory=dict, repr=False)  # metric -> the file's source (or None)
    new_runs: tuple = field(default=((), ()), repr=False)
    new_searches: list = field(default_factory=list, repr=False)  # auto-configure runs to add
    row: ModelRegistry | None = field(default=None, repr=False)  # the registry's entry, when it has one

    def public(self) -> dict:
        return {"model_name": self.model_name, "action": self.action, "changes": self.changes,
                "conflicts": self.conflicts, "attempts_added": self.attempts_added,
                "measurements_added": self.measurements_added, "config_versions_added": self.versions.added,
                "autoconfigure_runs_added": self.autoconfigure_runs_added}


@dataclass
class Plan:
    kind: str
    on_conflict: str
    models: list[ModelPlan]
    document_digest: str

    @property
    def digest(self) -> str:
        text = json.dumps([self.on_conflict, self.document_digest, [m.public() for m in self.models]],
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def result(self, dry_run: bool) -> dict:
        actions = [m.action for m in self.models]
        summary = {
            "models_added": actions.count("add"), "models_updated": actions.count("update"),
            "models_unchanged": actions.count("unchanged"),
            "attempts_added": sum(m.attempts_added for m in self.models),
            "measurements_added": sum(m.measurements_added for m in self.models),
            "config_versions_added": sum(m.versions.added for m in self.models),
            "autoconfigure_runs_added": sum(m.autoconfigure_runs_added for m in self.models),
            "conflicts": sum(len(m.conflicts) for m in self.models),
        }
        shown = [m.public() for m in self.models if m.action != "unchanged" or m.conflicts]
        return {"format": self.kind, "dry_run": dry_run, "on_conflict": self.on_conflict, "summary": summary,
                "models": shown, "plan_digest": self.digest}


def import_document(kind: str, document: dict, **options) -> dict:
    """Import a validated registry document or compatibility report (see :func:`import_entries`)."""
    if kind != REGISTRY_FORMAT:
        return import_entries(kind, [report_entry(document)], **options)
    return import_entries(kind, document["models"], environments=document.get("environments") or [], **options)


def import_entries(kind: str, entries: list[dict], *, on_conflict: str = "keep", dry_run: bool = False,
                   expected_digest: str | None = None, environments: list[dict] = ()) -> dict:
    """Plan the import of validated model entries and, unless ``dry_run``, apply it in one transaction.
    With ``expected_digest`` (a dry run's ``plan_digest``) nothing is written unless the plan is still
    that one (else PlanChanged)."""
    document_digest = hashlib.sha256(json.dumps(entries, sort_keys=True, default=str).encode()).hexdigest()
    for _ in range(registry.UNGUARDED_WRITE_ATTEMPTS):
        plan = Plan(kind, on_conflict, make_plans(entries, on_conflict), document_digest)
        if expected_digest is not None and plan.digest != expected_digest:
            db.session.rollback()
            raise PlanChanged(plan)
        if dry_run:
            db.session.rollback()
            return plan.result(dry_run=True)
        try:
            # The import writes the versions itself: the file's history, then its own change.
            with config_history.recorded_by_caller():
                environment_ids = exchange_environments.write(list(environments))
                for model_plan in plan.models:
                    _apply(model_plan, environment_ids)
                db.session.flush()
            db.session.commit()
            return plan.result(dry_run=False)
        except (StaleDataError, IntegrityError):
            # A concurrent edit or registration got in first: plan again on the newest rows.
            db.session.rollback()
        except BaseException:
            db.session.rollback()
            raise
    raise WriteContention("The registry is being written by too many clients for the import; retry shortly.")


def make_plans(entries: list[dict], on_conflict: str) -> list[ModelPlan]:
    names = [entry["model_name"] for entry in entries]
    rows = {}
    for start in range(0, len(names), CHUNK):
        query = select(ModelRegistry).where(ModelRegistry.model_name.in_(names[start:start + CHUNK]))
        rows.update({row.model_name: row for row in db.session.scalars(query)})
    ids = [row.id for row in rows.values()]
    attempts, measurements = _run_starts(LoadAttempt, ids), _run_starts(Measurement, ids)
    versions = config_history.versions_of(ids)
    searches = _run_starts(AutoconfigureRun, ids)
    plans = []
    for entry in entries:
        row = rows.get(entry["model_name"])
        if row is None:
            plans.append(_plan_new(entry))
            _plan_searches(plans[-1], entry, {})
        else:
            plan = _plan_update(entry, row, on_conflict, attempts.get(row.id, {}), measurements.get(row.id, {}))
            plan.versions = history.plan(entry, versions[row.id], plan.updates.get("load_config", row.load_config),
                                         as_utc)
            if plan.versions.added:
                plan.action = "update"
            _plan_searches(plan, entry, searches.get(row.id, {}))
            plans.append(plan)
    return plans


def _plan_searches(plan: ModelPlan, entry: dict, local: dict) -> None:
    """The entry's auto-configure runs the registry lacks (``local``: run id -> start, here)."""
    plan.new_searches = autoconfigure.new_runs(entry, local.values())
    plan.autoconfigure_runs_added = len(plan.new_searches)
    if plan.new_searches and plan.action == "unchanged":
        plan.action = "update"


def _plan_new(entry: dict) -> ModelPlan:
    attempts, measurements = entry.get("attempts") or [], entry.get("measurements") or []
    return ModelPlan(entry["model_name"], "add", attempts_added=len(attempts), measurements_added=len(measurements),
                     entry=entry, new_runs=(attempts, measurements),
                     versions=history.plan(entry, None, entry.get("load_config"), as_utc))


def _plan_update(entry: dict, row: ModelRegistry, on_conflict: str, attempts: dict, measurements: dict) -> ModelPlan:
    plan = ModelPlan(row.model_name, "unchanged", entry=entry, row=row)
    for name in TEXT_FIELDS:
        if name == "compatibility_notes" and "append_notes" in entry:
            _plan_append(plan, row, entry["append_notes"])
        elif name in entry:
            _plan_field(plan, name, getattr(row, name), entry[name], on_conflict, _is_unset(row, name))
    local_sources = sources_to_document(row.metric_sources, measurements) or {}
    imported_sources = entry.get("metric_sources") or {}
    for metric in METRIC_FIELDS:
        if entry.get(metric) is None:
            continue
        local = (getattr(row, metric), local_sources.get(metric))
        imported = (entry[metric], imported_sources.get(metric))
        if local == imported:
            continue
        if local[0] is None or on_conflict == "replace":
            plan.updates[metric], plan.sources[metric] = imported
            plan.changes.append({"field": metric, "from": local[0], "to": imported[0]})
            if local[1] != imported[1]:
                plan.changes.append({"field": f"metric_sources.{metric}", "from": _kind(local[1]), "to": _kind(imported[1])})
        if local[0] is not None:
            plan.conflicts.append(_conflict(metric, _shown(local), _shown(imported), on_conflict))
    known_attempts, known_measurements = set(attempts.values()), set(measurements.values())
    new_attempts = [run for run in entry.get("attempts") or [] if run["started_at"] not in known_attempts]
    new_measurements = [run for run in entry.get("measurements") or [] if run["started_at"] not in known_measurements]
    plan.new_runs = (new_attempts, new_measurements)
    plan.attempts_added, plan.measurements_added = len(new_attempts), len(new_measurements)
    if plan.updates or new_attempts or new_measurements:
        plan.action = "update"
    return plan


def _plan_field(plan: ModelPlan, name: str, local, imported, on_conflict: str, local_unset: bool) -> None:
    if imported is None or imported == local or imported == UNSET.get(name):
        return
    extends = name == "compatibility_notes" and isinstance(local, str) and imported.startswith(local)
    if local_unset or extends or on_conflict == "replace":
        plan.updates[name] = imported
        plan.changes.append({"field": name, "from": local, "to": imported})
    if not (local_unset or extends):
        plan.conflicts.append(_conflict(name, local, imported, on_conflict))


def _plan_append(plan: ModelPlan, row: ModelRegistry, line: str) -> None:
    """A compatibility report adds one line to the notes (once), keeping what is there."""
    local = row.compatibility_notes or ""
    if line in local:
        return
    notes = f"{local.rstrip()}\n\n{line}" if local.strip() else line
    if len(notes) > NOTES_MAX:
        plan.conflicts.append(_conflict("compatibility_notes", local, line, "keep"))
        return
    plan.updates["compatibility_notes"] = notes
    plan.changes.append({"field": "compatibility_notes", "from": row.compatibility_notes, "to": notes})


def _is_unset(row: ModelRegistry, name: str) -> bool:
    value = getattr(row, name)
    if name == "hf_path":
        return value == row.model_name  # the default: registered without one
    if name == "cache_location":
        return value == "primary" and not row.cache_path
    return value is None or value == UNSET.get(name)


def _conflict(name: str, local, imported, on_conflict: str) -> dict:
    return {"field": name, "local": local, "imported": imported, "kept": "local" if on_conflict == "keep" else "imported"}


def _kind(source: dict | None) -> str:
    return source["source"] if source else "typed"


def _shown(metric: tuple) -> str:
    return f"{metric[0]:g} ({_kind(metric[1])})"


def _run_starts(model_class, model_ids: list[int]) -> dict[int, dict[int, object]]:
    """Per model: run id -> when it started (UTC), for every run, running ones included."""
    starts: dict[int, dict] = {}
    for start in range(0, len(model_ids), CHUNK):
        query = select(model_class.id, model_class.model_id, model_class.started_at).where(
            model_class.model_id.in_(model_ids[start:start + CHUNK]))
        for run_id, model_id, started_at in db.session.execute(query):
            starts.setdefault(model_id, {})[run_id] = as_utc(started_at)
    return starts


def as_utc(moment):
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _apply(plan: ModelPlan, environment_ids: dict[str, int]) -> None:
    if plan.action == "unchanged":
        return
    entry = plan.entry
    if plan.action == "add":
        row = ModelRegistry(
            model_name=entry["model_name"], hf_path=entry.get("hf_path") or entry["model_name"],
            cache_location=entry.get("cache_location") or "primary", cache_path=entry.get("cache_path"),
            compatibility_status=entry.get("compatibility_status") or "unknown",
            compatibility_notes=entry.get("compatibility_notes") or entry.get("append_notes"),
            created_at=entry.get("created_at") or utcnow(),
            **{name: entry.get(name) for name in ("load_config", "quantization", *METRIC_FIELDS)},
        )
        db.session.add(row)
        sources = entry.get("metric_sources") or {}
    else:
        row = plan.row
        for name, value in plan.updates.items():
            setattr(row, name, value)
        sources = None
    db.session.flush()
    version_ids = history.write(row.id, row.load_config, plan.versions)
    search_ids, searches = autoconfigure.write(row.id, plan.new_searches, version_ids, environment_ids, as_utc)
    attempts, measurements = plan.new_runs
    def named(run: dict) -> dict:
        return {"config_version_id": version_ids.get(run.get("config_version")),
                "environment_id": environment_ids.get(run.get("environment_fingerprint"))}

    db.session.add_all(LoadAttempt(model_id=row.id, **_columns(run, ATTEMPT_COLUMNS), **named(run),
                                   autoconfigure_run_id=search_ids.get(run.get("autoconfigure_run")))
                       for run in attempts)
    db.session.add_all(Measurement(model_id=row.id, **_columns(run, MEASUREMENT_COLUMNS), **named(run))
                       for run in measurements)
    db.session.flush()
    autoconfigure.link_tries(row.id, searches, as_utc)
    ids = {moment: run_id for run_id, moment in _run_starts(Measurement, [row.id]).get(row.id, {}).items()}
    if sources is not None:
        row.metric_sources = sources_from_document(sources, ids)
    elif plan.sources:
        merged = dict(row.metric_sources or {})
        for metric, source in plan.sources.items():
            merged.pop(metric, None)
            if source is not None:
                merged[metric] = sources_from_document({metric: source}, ids)[metric]
        row.metric_sources = merged or None


def _columns(run: dict, names: tuple) -> dict:
    return {name: run.get(name) for name in names}
