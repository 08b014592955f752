"""The inventory's per-model values as SQL: what the Models page (and GET /api/models) sorts and filters on
beyond the registry's own columns — size on disk, format, location, parameters, last tested.

Each is a correlated subquery or an EXISTS on ``model_copy.model_id`` / ``load_attempt.model_id`` (both
indexed), so a filter or a sort costs one index probe per model and nothing is stored twice: a scan or a
load changes what the page shows without any denormalized column to keep in step.
"""

from sqlalchemy import case, exists, func, or_, select

from modelhub.library_catalogue import LIBRARY_IDS
from modelhub.models import LoadAttempt, ModelCopy, ModelRegistry

# A load that ended one way or the other tested the model; an interrupted one (cancelled, server stopped)
# did not, and a running one has not yet.
TESTED_OUTCOMES = ("success", "failure")
TESTED_STATES = ("tested", "untested")

# A copy's library as library_catalogue.library_id reads it (rows from before libraries were recorded
# carry none: their location says which it is), for grouping and filtering in SQL.
COPY_LIBRARY = case(
    (ModelCopy.library.in_(LIBRARY_IDS), ModelCopy.library),
    (ModelCopy.location == "primary", "huggingface"),
    (ModelCopy.location == "custom", "custom"),
    else_="folder",
)
_LIBRARY_ORDER = case(*((COPY_LIBRARY == library, index) for index, library in enumerate(LIBRARY_IDS)), else_=len(LIBRARY_IDS))

_OF_THE_MODEL = ModelCopy.model_id == ModelRegistry.id
_PRESENT = ModelCopy.missing.is_(False)


def _of_primary_copy(value, *where):
    """``value`` of the model's primary present copy (with ``where``): the copy a load reads (the model's
    cache_path), else the oldest present one, as correlated scalar subqueries. (Two lookups rather than one
    ordered by "is it the cache_path": SQLite cannot see the outer row from a subquery's ORDER BY.)"""
    def first(*more):
        query = select(value).where(_OF_THE_MODEL, _PRESENT, *where, *more).order_by(ModelCopy.id).limit(1)
        return query.correlate(ModelRegistry).scalar_subquery()
    return func.coalesce(first(ModelCopy.path == ModelRegistry.cache_path), first())


# Bytes on disk: the present copies' sizes added (NULL without any, so it sorts last either way).
SIZE_ON_DISK = select(func.sum(ModelCopy.size_bytes)).where(_OF_THE_MODEL, _PRESENT).correlate(ModelRegistry).scalar_subquery()
FORMAT = _of_primary_copy(func.lower(func.coalesce(ModelCopy.quantization, ModelCopy.weight_format)))
LIBRARY = _of_primary_copy(_LIBRARY_ORDER)
PARAMETERS = _of_primary_copy(ModelCopy.parameter_count, ModelCopy.parameter_count.is_not(None))
LAST_TESTED = (select(func.max(LoadAttempt.started_at))
               .where(LoadAttempt.model_id == ModelRegistry.id, LoadAttempt.outcome.in_(TESTED_OUTCOMES))
               .correlate(ModelRegistry).scalar_subquery())

# ?sort= name -> the expression it sorts by (text sorts are lower-cased already); "-name" is descending.
SORT_KEYS = {
    "size_bytes": SIZE_ON_DISK,
    "format": FORMAT,
    "library": LIBRARY,
    "parameters": PARAMETERS,
    "last_tested": LAST_TESTED,
}


def was_tested() -> object:
    """The condition "has a finished load attempt" (success or failure), for ?tested=."""
    return exists().where(LoadAttempt.model_id == ModelRegistry.id, LoadAttempt.outcome.in_(TESTED_OUTCOMES))


def in_libraries(libraries: list[str]) -> object:
    """The condition "has a present copy in one of these libraries", for ?library=."""
    return exists().where(_OF_THE_MODEL, _PRESENT, COPY_LIBRARY.in_(libraries))


def with_formats(formats: list[str]) -> object:
    """The condition "has a present copy in one of these formats", for ?format=: a value names a weight
    format ("safetensors", "gguf") or a quantization ("GGUF Q4_K_M", "GPTQ", "bitsandbytes 4-bit"),
    case ignored; "gguf" is every GGUF quantization, and a folder holding both kinds of weights counts as
    safetensors and as pickle."""
    weights, quantization = func.lower(ModelCopy.weight_format), func.lower(ModelCopy.quantization)
    wanted = [value.lower() for value in formats]
    matches = [weights.in_(wanted), quantization.in_(wanted)]
    if "gguf" in wanted:
        matches.append(quantization.like("gguf%"))
    if {"safetensors", "pickle"} & set(wanted):
        matches.append(weights == "both")
    return exists().where(_OF_THE_MODEL, _PRESENT, or_(*matches))


def filters(*, format: list[str] | None = None, library: list[str] | None = None,
            tested: str | None = None) -> list:
    """The WHERE conditions of the inventory's filters that are set."""
    conditions = []
    if format:
        conditions.append(with_formats(format))
    if library:
        conditions.append(in_libraries(library))
    if tested in TESTED_STATES:
        conditions.append(was_tested() if tested == "tested" else ~was_tested())
    return conditions

