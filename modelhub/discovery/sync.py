"""Bringing the registry in step with what a scan found on disk.

- a model found for the first time is registered (named by its hub id), with its copy;
- the same model in several places is one registry entry with several copies (``model_copy``);
- what users edited (status, notes, load_config, scores) is never touched; a detected quantization
  only fills an empty field;
- a copy no longer on disk is marked missing (never deleted), and so is a model with no copy left; a
  copy that comes back is unmarked.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from marshmallow import ValidationError
from sqlalchemy import select

from modelhub.discovery.scanner import inspect_directory
from modelhub.discovery.types import FoundModel, Problem, ScanReport
from modelhub.extensions import db
from modelhub.fields import ModelName
from modelhub.models import MODEL_NAME_MAX, ModelCopy, ModelRegistry, utcnow

_NAME = ModelName(max_length=MODEL_NAME_MAX)
COPY_COLUMNS = ("location", "revision", "size_bytes", "weight_format", "architecture", "model_type",
                "quantization", "incomplete", "incomplete_reason")


@dataclass
class SyncSummary:
    added: list[str] = field(default_factory=list)
    copies_added: int = 0
    went_missing: list[str] = field(default_factory=list)
    came_back: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class _Registry:
    """The registry's models and copies, loaded once per sync (a scan may touch thousands)."""

    def __init__(self):
        self.models = list(db.session.scalars(select(ModelRegistry).order_by(ModelRegistry.id)))
        self.by_hf_path: dict[str, ModelRegistry] = {}
        for model in self.models:
            self.by_hf_path.setdefault(model.hf_path, model)
        self.copies = {(c.model_id, c.path): c for c in db.session.scalars(select(ModelCopy))}


def apply_scan(report: ScanReport) -> SyncSummary:
    """Record a scan's findings in one transaction."""
    summary = SyncSummary(problems=list(report.problems))
    registry = _Registry()
    now = utcnow()
    seen = set()
    for found in report.found:
        model = _model_for(found, registry, summary)
        if model is not None:
            _record_copy(model, found, registry, now, summary)
            seen.add((model.id, found.path))
    _mark_missing(report, registry, seen, summary)
    db.session.commit()
    return summary


def _model_for(found: FoundModel, registry: _Registry, summary: SyncSummary) -> ModelRegistry | None:
    model = registry.by_hf_path.get(found.hf_path)
    if model is not None:
        return model
    try:
        name = _NAME.deserialize(found.hf_path)
    except ValidationError as error:
        summary.problems.append(Problem(found.path, f"not registered: {found.hf_path!r} is not a usable model name "
                                                    f"({' '.join(error.messages)})"))
        return None
    model = ModelRegistry(model_name=name, hf_path=found.hf_path, cache_location=found.location,
                          cache_path=found.path, quantization=found.quantization)
    db.session.add(model)
    db.session.flush()
    registry.by_hf_path[found.hf_path] = model
    registry.models.append(model)
    summary.added.append(name)
    return model


def _record_copy(model, found: FoundModel, registry: _Registry, now, summary: SyncSummary) -> None:
    copy = registry.copies.get((model.id, found.path))
    if copy is None:
        copy = ModelCopy(model_id=model.id, path=found.path, first_seen_at=now)
        db.session.add(copy)
        registry.copies[(model.id, found.path)] = copy
        summary.copies_added += 1
    for column in COPY_COLUMNS:
        setattr(copy, column, getattr(found, column))
    copy.missing = False
    copy.last_seen_at = now
    if not model.quantization and found.quantization:
        model.quantization = found.quantization  # detected: fills the field only when the user left it empty
    if model.missing:
        model.missing = False
        summary.came_back.append(model.model_name)
    if not model.cache_path:
        model.cache_location, model.cache_path = found.location, found.path


def _mark_missing(report: ScanReport, registry: _Registry, seen: set, summary: SyncSummary) -> None:
    """Copies under the scanned roots that this scan did not see are gone, and models with no copy
    left; custom copies are checked where they are."""
    roots = tuple(str(location.root).rstrip("/") + "/" for location in report.roots)
    by_model = defaultdict(list)
    for key, copy in registry.copies.items():
        by_model[copy.model_id].append(copy)
        if key in seen or copy.missing:
            continue
        if copy.path.startswith(roots) or (copy.location == "custom" and not (Path(copy.path) / "config.json").is_file()):
            copy.missing = True
    for model in registry.models:
        copies = by_model.get(model.id)
        if not copies:
            continue
        present = [c for c in copies if not c.missing]
        if not present and not model.missing:
            model.missing = True
            summary.went_missing.append(model.model_name)
        elif present and model.cache_path in {c.path for c in copies if c.missing}:
            # Its copy is gone but another is here: load from that one, the hub cache first.
            best = sorted(present, key=lambda c: c.location != "primary")[0]
            model.cache_location, model.cache_path = best.location, best.path


def record_custom_copy(model: ModelRegistry) -> None:
    """A model registered with a custom directory gets that directory as its copy, described like a
    scanned one, so later scans can tell when it is gone."""
    try:
        found = inspect_directory(model.cache_path, location="custom")
    except ValueError:
        return  # validated at registration; gone since: the next scan marks it missing
    found.hf_path = model.hf_path
    db.session.add(ModelCopy(model_id=model.id, path=model.cache_path,
                             **{column: getattr(found, column) for column in COPY_COLUMNS}))
    if not model.quantization and found.quantization:
        model.quantization = found.quantization
    db.session.commit()
