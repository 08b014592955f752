"""The registry service: every read and write of registered models goes through here.

The JSON API, the HTML pages and the CLI all call these functions, so the rules (unique names, guarded
writes, partial updates) hold whichever way a change arrives. Nothing here knows about HTTP.
"""

import math
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from modelhub import inventory_query
from modelhub.discovery.sync import record_custom_copy
from modelhub.exceptions import (CopyMissing, DuplicateModel, ModelNotFound, PreconditionFailed, UnknownCopy,
                                 WriteContention)
from modelhub.extensions import db
from modelhub.metric_catalogue import METRIC_FIELDS
from modelhub.models import MODEL_NAME_MAX, ModelCopy, ModelRegistry

# Writes without If-Match retry when a concurrent writer got in between our read and our write, so
# that fields the request named are applied on top of the newest row (and the other fields survive).
UNGUARDED_WRITE_ATTEMPTS = 20


LARGEST_ID = 2**31 - 1  # beyond what a database integer holds no row can exist (PostgreSQL would refuse it)

# Built once: every API request looks a model up by name, and rebuilding the statement is measurable.
_BY_NAME = select(ModelRegistry).where(ModelRegistry.model_name == bindparam("name"))
# A writer locks the row it read (PostgreSQL; SQLite serializes writers anyway), so concurrent writers
# queue instead of failing their version check over and over (8 writers on one row starved otherwise).
_BY_NAME_FOR_UPDATE = _BY_NAME.with_for_update().execution_options(populate_existing=True)


@dataclass(frozen=True)
class Page:
    items: list[ModelRegistry]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def list_models(
    *, status: list[str] | None = None, q: str | None = None, format: list[str] | None = None,
    library: list[str] | None = None, tested: str | None = None, sort: str = "model_name", page: int = 1,
    per_page: int = 50,
) -> Page:
    """Filter (status, name, the copies' format and library, tested or not), sort by any column or
    inventory value (``-col`` descending, empty values last), one page."""
    query = _filtered(select(ModelRegistry), status=status, q=q, format=format, library=library, tested=tested)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    order = _sort_key(sort)
    query = query.order_by(order.nulls_last(), ModelRegistry.model_name).limit(per_page).offset((page - 1) * per_page)
    return Page(items=list(db.session.scalars(query)), total=total, page=page, per_page=per_page)


def count_models(**filters) -> int:
    """How many models ``list_models`` would list with these filters."""
    return db.session.scalar(select(func.count()).select_from(filtered_ids(**filters).subquery()))


def filtered_ids(**filters):
    """The ids of the models ``list_models`` would list with these filters, as a subquery (for totals)."""
    return _filtered(select(ModelRegistry.id), **filters)


def _sort_key(sort: str):
    name = sort.lstrip("-")
    column = inventory_query.SORT_KEYS.get(name)
    if column is None:
        column = getattr(ModelRegistry, name)
        if column.type.python_type is str:
            column = func.lower(column)  # "gpt2" sorts beside "Gemma", not after every capital
    return column.desc() if sort.startswith("-") else column.asc()


def all_models(*, sort: str = "model_name", **filters) -> list[ModelRegistry]:
    """Every model that ``list_models`` would list with these filters, in its order, on one list."""
    rows, page = [], 1
    while True:
        result = list_models(**filters, sort=sort, page=page, per_page=500)
        rows.extend(result.items)
        if page >= result.pages:
            return rows
        page += 1


def has_models() -> bool:
    """Whether the registry holds any model at all (an empty filtered list may just be the filters)."""
    return db.session.scalar(select(ModelRegistry.id).limit(1)) is not None


def models_with(*fields: str, highest_first: str, limit: int, status: list[str] | None = None, q: str | None = None,
                **filters) -> list[ModelRegistry]:
    """The models (filtered as ``list_models`` does: ``filters`` are its other filters) that have a value in
    every one of ``fields``, at most ``limit``, the highest ``highest_first`` first."""
    query = select(ModelRegistry).where(*(getattr(ModelRegistry, name).is_not(None) for name in fields))
    order = getattr(ModelRegistry, highest_first).desc(), ModelRegistry.model_name
    return list(db.session.scalars(_filtered(query, status=status, q=q, **filters).order_by(*order).limit(limit)))


def copies(model: ModelRegistry) -> list[ModelCopy]:
    """Every copy of the model's files that a scan found (or that its custom path names), oldest first."""
    return list(db.session.scalars(select(ModelCopy).where(ModelCopy.model_id == model.id).order_by(ModelCopy.id)))


def present_copy(model: ModelRegistry, copy_id: int) -> ModelCopy:
    """Copy ``copy_id`` of ``model``, on disk as of the latest scan. Raises UnknownCopy (422) for an id that
    is not one of the model's copies, CopyMissing (409) for a copy the latest scan did not find."""
    copy = db.session.get(ModelCopy, copy_id) if 0 < copy_id <= LARGEST_ID else None
    if copy is None or copy.model_id != model.id:
        raise UnknownCopy(model.model_name, copy_id, [row.id for row in copies(model)])
    if copy.missing:
        raise CopyMissing(f"Copy {copy_id} of {model.model_name!r} ({copy.path}) is missing: the latest scan did not "
                          f"find it (deleted, moved, or its disk is not mounted). Choose another copy, or scan again "
                          "once it is back.")
    return copy


def set_primary_copy(name: str, copy_id: int, *, if_match: frozenset[str] | None = None) -> ModelRegistry:
    """Make copy ``copy_id`` the one a load that names no copy reads: the model's cache_path and
    cache_location become the copy's (a custom copy stays custom), in one write that moves its version
    (guarded by ``if_match`` as ``update_model``). Scans keep the choice while that copy is found."""
    copy = present_copy(get_model(name), copy_id)
    return update_model(name, {"cache_path": copy.path, "cache_location": copy.location}, if_match=if_match)


def get_model(name: str, *, for_update: bool = False) -> ModelRegistry:
    """The model named ``name``; ``for_update`` locks its row until the transaction ends."""
    if not _storable(name):
        # Could never have been registered; some databases would even reject it as a parameter.
        raise ModelNotFound(name)
    row = db.session.scalar(_BY_NAME_FOR_UPDATE if for_update else _BY_NAME, {"name": name})
    if row is None:
        raise ModelNotFound(name)
    return row


def create_model(fields: dict) -> ModelRegistry:
    """Register a model; ``fields`` are validated column values (``hf_path`` defaults to the name)."""
    name = fields["model_name"]
    if db.session.scalar(_BY_NAME, {"name": name}) is not None:
        raise DuplicateModel(name)
    row = ModelRegistry(**{"hf_path": name, **fields})
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        # Another request registered the same name between our check and our insert.
        db.session.rollback()
        raise DuplicateModel(name) from None
    if row.cache_location == "custom" and row.cache_path:
        record_custom_copy(row)
    return row


def update_model(name: str, changes: dict, *, if_match: frozenset[str] | None = None) -> ModelRegistry:
    """Apply ``changes`` (column -> value) to one model in one transaction, touching no other column.

    With ``if_match`` (ETags, or ``"*"``) the write happens only if the stored version is still one of
    them, else :class:`PreconditionFailed` and nothing changes.
    """
    for _ in range(UNGUARDED_WRITE_ATTEMPTS):
        row = get_model(name, for_update=True)
        _check_precondition(row, if_match)
        for column, value in _with_provenance(row, changes).items():
            setattr(row, column, value)
        try:
            db.session.commit()
            return row
        except StaleDataError:
            # The UPDATE's "WHERE version = <what we read>" matched nothing: a concurrent write won.
            db.session.rollback()
            if _names_a_version(if_match):
                raise PreconditionFailed(get_model(name)) from None
    raise WriteContention(f"Model {name!r} is being written by too many clients at once; retry shortly.")


def commit_on_newest(write, what: str):
    """Run ``write()`` (which changes rows in the session and returns what it wrote, or None when there
    is nothing to write) and commit. When a versioned row changed under it (a user's edit), roll back
    and run it again on the newest rows, so neither write is lost."""
    for _ in range(UNGUARDED_WRITE_ATTEMPTS):
        written = write()
        if written is None:
            return None
        try:
            db.session.commit()
            return written
        except StaleDataError:
            db.session.rollback()
    raise WriteContention(f"could not record {what}: too many concurrent writes; retry shortly.")


def delete_model(name: str, *, if_match: frozenset[str] | None = None) -> None:
    """Delete one model. With ``if_match`` naming versions, only if the stored one is still among them (else
    PreconditionFailed). Without it (or with ``"*"``) a write that lands between the read and the delete
    (a load finishing, a scan) does not refuse the delete: it is read again and deleted."""
    for _ in range(UNGUARDED_WRITE_ATTEMPTS):
        row = get_model(name, for_update=True)
        _check_precondition(row, if_match)
        db.session.delete(row)
        try:
            db.session.commit()
            return
        except StaleDataError:
            db.session.rollback()
            if _names_a_version(if_match):
                raise PreconditionFailed(get_model(name)) from None
    raise WriteContention(f"Model {name!r} is being written by too many clients at once; retry shortly.")


def _names_a_version(if_match: frozenset[str] | None) -> bool:
    """Whether the request's If-Match names versions (a stale one is a 412), not none or ``*`` (any)."""
    return if_match is not None and "*" not in if_match


def _with_provenance(row: ModelRegistry, changes: dict) -> dict:
    """A metric given a new value without a source is typed by its writer: it loses any card/measured
    source. Re-sending the stored value (the modal sends every field) keeps it."""
    if "metric_sources" in changes or not row.metric_sources:
        return changes
    typed = {field for field in set(changes) & set(METRIC_FIELDS) if changes[field] != getattr(row, field)}
    if not typed & set(row.metric_sources):
        return changes
    return {**changes, "metric_sources": {k: v for k, v in row.metric_sources.items() if k not in typed} or None}


def _filtered(query, *, status: list[str] | None = None, q: str | None = None, format: list[str] | None = None,
              library: list[str] | None = None, tested: str | None = None):
    """``query`` narrowed by the filter bar's filters: any of these statuses, a name containing ``q``, a
    present copy in one of these formats / libraries, tested or never tested (modelhub/inventory_query.py)."""
    if status:
        query = query.where(ModelRegistry.compatibility_status.in_(status))
    if q:
        query = query.where(ModelRegistry.model_name.icontains(q, autoescape=True))
    for condition in inventory_query.filters(format=format, library=library, tested=tested):
        query = query.where(condition)
    return query


def _storable(name: str) -> bool:
    return 0 < len(name) <= MODEL_NAME_MAX and "\x00" not in name and name.isprintable()


def _check_precondition(row: ModelRegistry, if_match: frozenset[str] | None) -> None:
    if if_match is not None and "*" not in if_match and row.etag not in if_match:
        raise PreconditionFailed(row)
