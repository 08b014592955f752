"""The inventory: what each model of a page holds on disk and when it was last tested, and the totals of a
filtered list (models, copies, bytes per place, untested), for the Models page's cards, table and header.

A page's summaries cost a fixed number of queries whatever its size (its copies in one, its last tests in
one): no query per model. The totals are a few aggregate queries over the filtered set.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from modelhub import display, environments, registry
from modelhub.discovery.locations_summary import copies_by_model
from modelhub.extensions import db
from modelhub.inventory_query import COPY_LIBRARY, TESTED_OUTCOMES, was_tested
from modelhub.library_catalogue import BY_ID, LIBRARY_IDS
from modelhub.models import Environment, LoadAttempt, ModelCopy, ModelRegistry

# Libraries whose root is worth naming in the totals even when there is one: a folder is any folder
# (a second disk), whereas "HF cache" or "Ollama" says where it is.
ROOT_NAMED = ("folder", "text-generation-webui")


@dataclass(frozen=True)
class LastTest:
    """A model's latest load that succeeded or failed, and where it ran."""

    outcome: str  # success | failure
    environment_status: str | None  # compatible, degraded, incompatible in that environment
    started_at: datetime
    host: str | None
    environment: str  # environments.describe: host, GPU, runtime, transformers

    @property
    def text(self) -> str:
        said = display.TEST_OUTCOMES[self.outcome]
        return f"{said} ({self.environment_status})" if self.outcome == "success" and self.environment_status == "degraded" else said


@dataclass
class Summary:
    """One model's inventory line: its present copies' size, formats, architecture, parameters and badges."""

    size_bytes: int | None = None  # None: no copy on disk
    copies: int = 0  # present copies
    formats: list[str] = field(default_factory=list)  # primary copy's first: "GGUF Q4_K_M", "safetensors"
    architecture: str | None = None
    parameters: int | None = None
    badges: list = field(default_factory=list)  # display.CopyBadge, per library and state
    last_test: LastTest | None = None

    @property
    def size(self) -> str:
        return display.human_bytes(self.size_bytes)

    @property
    def format(self) -> str:
        return ", ".join(self.formats)

    @property
    def params(self) -> str:
        return display.parameters(self.parameters)


def summaries(models: list[ModelRegistry]) -> dict[int, Summary]:
    """Each model's Summary, read in two queries for the whole page (copies, then last tests)."""
    copies = copies_by_model([model.id for model in models])
    tests = last_tests([model.id for model in models])
    return {model.id: _summary(model, copies[model.id], tests.get(model.id)) for model in models}


def _summary(model: ModelRegistry, copies: list[ModelCopy], last_test: LastTest | None) -> Summary:
    present = sorted((copy for copy in copies if not copy.missing),
                     key=lambda copy: (copy.path != model.cache_path, copy.id))  # the copy a load reads first
    summary = Summary(badges=display.copy_badges(copies), last_test=last_test, copies=len(present))
    if present:
        summary.size_bytes = sum(copy.size_bytes or 0 for copy in present)
        summary.formats = list(dict.fromkeys(display.copy_format(copy) for copy in present))
        summary.architecture = next((copy.architecture for copy in present if copy.architecture), None)
        summary.parameters = next((copy.parameter_count for copy in present if copy.parameter_count), None)
    return summary


def last_tests(model_ids: list[int]) -> dict[int, LastTest]:
    """Each model's latest load that succeeded or failed, with its environment, in one query."""
    if not model_ids:
        return {}
    latest = func.row_number().over(partition_by=LoadAttempt.model_id,
                                    order_by=(LoadAttempt.started_at.desc(), LoadAttempt.id.desc()))
    ranked = (select(LoadAttempt.model_id, LoadAttempt.outcome, LoadAttempt.environment_status, LoadAttempt.started_at,
                     LoadAttempt.environment_id, latest.label("rank"))
              .where(LoadAttempt.model_id.in_(model_ids), LoadAttempt.outcome.in_(TESTED_OUTCOMES)).subquery())
    query = (select(ranked.c.model_id, ranked.c.outcome, ranked.c.environment_status, ranked.c.started_at, Environment)
             .outerjoin(Environment, Environment.id == ranked.c.environment_id).where(ranked.c.rank == 1))
    return {model_id: LastTest(outcome, status, started_at, environment.host if environment else None,
                               environments.describe(environment))
            for model_id, outcome, status, started_at, environment in db.session.execute(query)}


@dataclass(frozen=True)
class Place:
    """Where some of the filtered models' copies are: a library (and its root, when worth naming)."""

    library: str
    name: str  # "HF cache", "Folder /mnt/d/models"
    copies: int
    size_bytes: int

    @property
    def size(self) -> str:
        return display.human_bytes(self.size_bytes)


@dataclass(frozen=True)
class Totals:
    models: int
    copies: int
    size_bytes: int
    untested: int
    places: list[Place]

    @property
    def size(self) -> str:
        return display.human_bytes(self.size_bytes)


def totals(models: int, **filters) -> Totals:
    """The totals of the models ``registry.list_models(**filters)`` lists (``models`` of them, counted
    already): their present copies and bytes per place, and how many were never tested."""
    filtered = any(filters.values())
    copies = select(COPY_LIBRARY, ModelCopy.library_root, func.count(), func.sum(ModelCopy.size_bytes)).where(
        ModelCopy.missing.is_(False))
    if filtered:
        copies = copies.where(ModelCopy.model_id.in_(registry.filtered_ids(**filters)))
    rows = db.session.execute(copies.group_by(COPY_LIBRARY, ModelCopy.library_root)).all()
    tested = select(func.count()).select_from(registry.filtered_ids(**filters).where(was_tested()).subquery())
    untested = models - (db.session.scalar(tested) or 0) if models else 0
    places = _places(rows)
    return Totals(models=models, copies=sum(place.copies for place in places),
                  size_bytes=sum(place.size_bytes for place in places), untested=untested, places=places)


def _places(rows) -> list[Place]:
    """Rows of (library, root, copies, bytes) as places, in the catalogue's order: one per library, or one
    per root where the root says something (folders, or a library found in several roots); custom paths
    are one place."""
    by_library = defaultdict(dict)
    for library, root, count, size in rows:
        root = None if library == "custom" else root
        counts = by_library[library].setdefault(root, [0, 0])
        counts[0] += int(count or 0)
        counts[1] += int(size or 0)
    places = []
    for library in sorted(by_library, key=LIBRARY_IDS.index):
        roots = by_library[library]
        name = BY_ID[library].name
        if len(roots) > 1 or library in ROOT_NAMED:
            places.extend(Place(library, f"{name} {display.short_path(root)}".strip(), count, size)
                          for root, (count, size) in sorted(roots.items(), key=lambda item: item[0] or ""))
        else:
            (count, size), = roots.values()
            places.append(Place(library, name, count, size))
    return places


def format_choices() -> list[tuple[str, str]]:
    """The filter bar's format menu, as (value of ?format=, label): the weight formats and quantizations of
    the copies on disk, each once ("GGUF" for any GGUF quantization, then each one)."""
    query = select(ModelCopy.weight_format, ModelCopy.quantization).where(ModelCopy.missing.is_(False)).distinct()
    families, quantizations = set(), set()
    for weights, quantization in db.session.execute(query):
        if weights == "both":
            families.update(("safetensors", "pickle"))
        elif weights:
            families.add(weights)
        if quantization:
            quantizations.add(quantization)
    names = {"gguf": "GGUF (any)", "pickle": "pickle (.bin)"}
    return ([(family, names.get(family, family)) for family in sorted(families)]
            + [(text, text) for text in sorted(quantizations, key=str.lower)])
