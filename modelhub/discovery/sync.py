"""Bringing the registry in step with what a scan found on disk.

- a model found for the first time is registered (named by its hub id), with its copy;
- the same model in several places is one registry entry with several copies (``model_copy``);
- what users edited (status, notes, load_config, scores) is never touched; a detected quantization
  only fills an empty field;
- a copy no longer on disk is marked missing (never deleted), and so is a model with no copy left; a
  copy that comes back is unmarked;
- a GGUF copy whose digest another copy has is a copy of that copy's model, whatever its name in its
  tool (an LM Studio file and an Ollama blob with the same bytes: one model, two copies); a copy whose
  file is now reached through another path (its old path gone, an alias left) keeps its row.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from marshmallow import ValidationError
from sqlalchemy import select

from modelhub.discovery.identity import KnownFile, KnownFiles
from modelhub.discovery.scanner import inspect_custom
from modelhub.discovery.types import FoundModel, Problem, ScanReport
from modelhub.extensions import db
from modelhub.fields import ModelName
from modelhub.models import MODEL_NAME_MAX, ModelCopy, ModelRegistry, utcnow

_NAME = ModelName(max_length=MODEL_NAME_MAX)
COPY_COLUMNS = ("location", "revision", "size_bytes", "weight_format", "architecture", "model_type",
                "quantization", "incomplete", "incomplete_reason", "library", "library_root", "label", "digest",
                "file_key", "parameter_count", "context_length", "aliases")
KNOWN_COLUMNS = ("architecture", "model_type", "quantization", "parameter_count", "context_length", "digest")


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
        self.by_any_path = self._index_paths()
        self.by_id = {model.id: model for model in self.models}
        self.by_digest: dict[str, ModelRegistry] = {}
        for copy in sorted(self.copies.values(), key=lambda c: c.id):
            if copy.digest and copy.model_id in self.by_id:
                self.by_digest.setdefault(copy.digest, self.by_id[copy.model_id])

    def copy_of(self, model: ModelRegistry, found: FoundModel) -> ModelCopy | None:
        """The model's row for the file ``found`` is: by its path, else by a path it had before (one of its
        aliases now, or a row whose aliases hold its path)."""
        copy = self.copies.get((model.id, found.path))
        if copy is not None or found.file_key is None:
            return copy
        for path in (found.path, *(alias["path"] for alias in found.aliases or [])):
            row = self.by_any_path.get((model.id, path))
            if row is not None and self.copies.get((model.id, row.path)) is row:
                del self.copies[(model.id, row.path)]
                if model.cache_path == row.path:  # the model loads from that file: follow it to its path now
                    model.cache_location, model.cache_path = found.location, found.path
                row.path = found.path
                self.copies[(model.id, row.path)] = row
                return row
        return None

    def _index_paths(self) -> dict:
        """(model id, path) -> row, for every path of a GGUF copy: its own and its aliases'."""
        index = {}
        for (model_id, path), row in self.copies.items():
            if row.weight_format == "gguf":
                for other in (path, *(alias.get("path") for alias in row.aliases or [])):
                    index.setdefault((model_id, other), row)
        return index


def known_files() -> KnownFiles:
    """The registry's GGUF copies as a scan reuses them: their facts per file version (file_key), and
    the sizes they take (a new file of one of these sizes may be the same bytes: it gets hashed)."""
    known = KnownFiles()
    columns = [getattr(ModelCopy, name) for name in ("file_key", "size_bytes", *KNOWN_COLUMNS)]
    query = select(*columns).where(ModelCopy.weight_format == "gguf", ModelCopy.file_key.is_not(None))
    for file_key, size, *facts in db.session.execute(query):
        known.add(file_key, size, KnownFile(*facts))
    db.session.commit()  # end the read transaction: the scan that follows takes a while
    return known


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
    model = registry.by_digest.get(found.digest) if found.digest else None
    model = model or registry.by_hf_path.get(found.hf_path)
    if model is not None:
        if found.digest:
            registry.by_digest.setdefault(found.digest, model)
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
    registry.by_id[model.id] = model
    if found.digest:
        registry.by_digest[found.digest] = model
    registry.models.append(model)
    summary.added.append(name)
    return model


def _record_copy(model, found: FoundModel, registry: _Registry, now, summary: SyncSummary) -> None:
    copy = registry.copy_of(model, found)
    if copy is None:
        copy = ModelCopy(model_id=model.id, path=found.path, first_seen_at=now)
        db.session.add(copy)
        registry.copies[(model.id, found.path)] = copy
        summary.copies_added += 1
    for column in COPY_COLUMNS:
        value = getattr(found, column)
        if getattr(copy, column) != value:  # a rescan of thousands of unchanged copies: skip the ORM's bookkeeping
            setattr(copy, column, value)
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
        if copy.path.startswith(roots) or (copy.location == "custom" and not _custom_copy_there(copy)):
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


def _custom_copy_there(copy: ModelCopy) -> bool:
    """A custom copy is checked where it is: its GGUF file, or its folder's config.json."""
    if copy.weight_format == "gguf":
        return Path(copy.path).is_file()
    return (Path(copy.path) / "config.json").is_file()


def record_custom_copy(model: ModelRegistry) -> None:
    """A model registered with a custom path gets what the path holds as its copies, described like
    scanned ones (a folder copy, and a copy per GGUF file; or the one GGUF file the path is), so later
    scans can tell when they are gone."""
    try:
        found = inspect_custom(model.cache_path)
    except ValueError:
        return  # validated at registration; gone since: the next scan marks it missing
    for copy in found:
        db.session.add(ModelCopy(model_id=model.id, path=copy.path,
                                 **{column: getattr(copy, column) for column in COPY_COLUMNS}))
    quantized = next((copy.quantization for copy in found if copy.quantization), None)
    if not model.quantization and quantized:
        model.quantization = quantized
    db.session.commit()
