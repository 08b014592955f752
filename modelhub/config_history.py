"""The history of each model's load_config: every change is a version (``LoadConfigVersion``).

A version is written by a session listener, in the same transaction as the change itself, whichever
way the change arrives: a registration (version 1, ``created``), a PATCH or the modal (``typed``, or
``suggestion`` when the user saved a failed load's suggestion as it was applied), an import, a
restore. The surfaces say who made the change with :func:`made_by`; what a write leaves unsaid is
``created`` for a new model and ``typed`` for a change. Saving the text the newest version already
holds makes no version, so the newest version is always the config in force: a run records it as the
config it ran (``loading/worker_runs.provenance``).

Numbers count 1, 2, ... per model, in the order versions were recorded here. A restore makes a new
version equal to an old one (``restored_from`` names it): history is never rewritten.
"""

import re
import socket
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, has_app_context
from marshmallow import ValidationError
from sqlalchemy import event, func, insert, inspect, select
from sqlalchemy.orm import Session

from modelhub import environments, registry
from modelhub.config_diff import ConfigDiff, diff
from modelhub.exceptions import ConfigVersionNotFound, NothingToRestore, PreconditionFailed, RestoreRefused
from modelhub.extensions import db
from modelhub.fields import LoadConfig
from modelhub.messages import flatten_messages
from modelhub.models import LoadAttempt, LoadConfigVersion, ModelRegistry, utcnow

MAX_NUMBER = 2**31 - 1  # the column is an INTEGER: a larger number names no version
_TABLE = LoadConfigVersion.__table__

# How each source reads in the modal ("made by ...").
SOURCE_LABELS = {
    "existing": "already there when history began",
    "created": "registered",
    "typed": "typed",
    "import": "imported",
    "suggestion": "applied a failed load's suggestion",
    "auto-configure": "auto-configure",
    "restore": "restored",
}


@dataclass(frozen=True)
class Origin:
    source: str | None = None
    via: str | None = None
    restored_from: int | None = None


_origin: ContextVar[Origin] = ContextVar("modelhub_config_origin", default=Origin())
_suspended: ContextVar[bool] = ContextVar("modelhub_config_history_suspended", default=False)


@contextmanager
def made_by(source: str, *, via: str | None = None, restored_from: int | None = None):
    """Changes of load_config written inside this block are recorded as made by ``source``
    (``CONFIG_SOURCES``) through ``via`` (api, page, cli, import)."""
    token = _origin.set(Origin(source, via, restored_from))
    try:
        yield
    finally:
        _origin.reset(token)


@contextmanager
def recorded_by_caller():
    """Inside this block (flush before leaving it) the listener records nothing: the caller writes the
    versions itself (an import brings a model's history with it)."""
    token = _suspended.set(True)
    try:
        yield
    finally:
        _suspended.reset(token)


@event.listens_for(Session, "after_flush")
def _record_changes(session, flush_context) -> None:
    """After every flush: a version for each model just registered and each whose load_config changed."""
    if _suspended.get():
        return
    new = [row for row in session.new if isinstance(row, ModelRegistry)]
    changed = [row for row in session.dirty if isinstance(row, ModelRegistry) and row not in session.deleted
               and inspect(row).attrs.load_config.history.has_changes()]
    if not new and not changed:
        return
    origin = _origin.get()
    connection = session.connection()
    for row in new:
        source = "import" if origin.source == "import" else "created"
        record(row.id, row.load_config, source=source, via=origin.via, connection=connection)
    for row in changed:
        source = origin.source if origin.source not in (None, "created") else "typed"
        restored_from = origin.restored_from if source == "restore" else None
        record(row.id, row.load_config, source=source, via=origin.via, restored_from=restored_from,
               connection=connection)


def record(model_id: int, text: str | None, *, source: str, via: str | None, restored_from: int | None = None,
           connection=None) -> int | None:
    """Make ``text`` the model's newest version unless it is already; returns the new number or None.
    Runs inside the caller's transaction (the model's row is locked by its UPDATE, so numbers are
    never given twice)."""
    connection = connection or db.session.connection()
    newest = connection.execute(
        select(_TABLE.c.number, _TABLE.c.load_config).where(_TABLE.c.model_id == model_id)
        .order_by(_TABLE.c.number.desc()).limit(1)).first()
    if newest is not None and newest.load_config == text:
        return None
    number = 1 if newest is None else newest.number + 1
    append(model_id, number=number, load_config=text, source=source, via=via, host=this_host(),
           restored_from=restored_from, created_at=utcnow(), connection=connection)
    return number


def append(model_id: int, *, number: int, load_config: str | None, source: str, via: str | None,
           host: str | None, restored_from: int | None, created_at: datetime, connection=None) -> None:
    """Write one version as given (an import keeps the host and moment of versions made elsewhere)."""
    connection = connection or db.session.connection()
    connection.execute(insert(_TABLE).values(
        model_id=model_id, number=number, load_config=load_config, source=source, via=via, host=host,
        restored_from=restored_from, created_at=created_at))


def this_host() -> str:
    return environments.host_name(current_app.config) if has_app_context() else socket.gethostname()


# ---- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionView:
    """One version as the API and the modal show it: with its diff against the version before it,
    whether it is the config in force, and how the loads that ran it ended."""

    number: int
    load_config: str | None
    source: str
    via: str | None
    host: str | None
    restored_from: int | None
    created_at: datetime
    previous: int | None
    diff: ConfigDiff
    current: bool
    loads: dict  # outcome -> how many load attempts ran this version

    @property
    def made_by(self) -> str:
        label = SOURCE_LABELS.get(self.source, self.source)
        return f"{label} version {self.restored_from}" if self.restored_from else label


@dataclass(frozen=True)
class History:
    model_name: str
    current: int | None  # the version in force (None: load_config was changed outside modelhub)
    versions: list[VersionView]  # newest first


def versions_of(model_ids: list[int]) -> dict[int, list[LoadConfigVersion]]:
    """Each model's versions, oldest first."""
    found = defaultdict(list)
    for start in range(0, len(model_ids), 500):
        query = (select(LoadConfigVersion).where(LoadConfigVersion.model_id.in_(model_ids[start:start + 500]))
                 .order_by(LoadConfigVersion.model_id, LoadConfigVersion.number))
        for version in db.session.scalars(query):
            found[version.model_id].append(version)
    return found


def history(model: ModelRegistry) -> History:
    """The model's versions, newest first, each with what changed since the one before it."""
    versions = versions_of([model.id])[model.id]
    current = versions[-1].number if versions and versions[-1].load_config == model.load_config else None
    loads = _loads_by_version(model)
    views, before = [], None
    for version in versions:
        views.append(VersionView(
            number=version.number, load_config=version.load_config, source=version.source, via=version.via,
            host=version.host, restored_from=version.restored_from, created_at=version.created_at,
            previous=before.number if before else None, diff=diff(before.load_config if before else None,
                                                                     version.load_config),
            current=version.number == current, loads=loads.get(version.id, {})))
        before = version
    return History(model.model_name, current, views[::-1])


def version(model: ModelRegistry, number: int | str) -> LoadConfigVersion:
    """Version ``number`` of the model (an int, or the text of a URL's path), or ConfigVersionNotFound."""
    found = None
    if isinstance(number, str) and re.fullmatch(r"[0-9]{1,10}", number):
        number = int(number)
    if isinstance(number, int) and 0 < number <= MAX_NUMBER:
        found = db.session.scalar(select(LoadConfigVersion).where(
            LoadConfigVersion.model_id == model.id, LoadConfigVersion.number == number))
    if found is None:
        raise ConfigVersionNotFound(model.model_name, number)
    return found


def version_view(model: ModelRegistry, number: int | str) -> VersionView:
    """Version ``number`` as :func:`history` shows it, or ConfigVersionNotFound."""
    number = version(model, number).number
    return next(view for view in history(model).versions if view.number == number)


def _loads_by_version(model: ModelRegistry) -> dict[int, dict[str, int]]:
    query = (select(LoadAttempt.config_version_id, LoadAttempt.outcome, func.count())
             .where(LoadAttempt.model_id == model.id, LoadAttempt.config_version_id.is_not(None))
             .group_by(LoadAttempt.config_version_id, LoadAttempt.outcome))
    loads = defaultdict(dict)
    for version_id, outcome, count in db.session.execute(query):
        loads[version_id][outcome] = count
    return loads


# ---- restoring -------------------------------------------------------------------------------------


def restore(model_name: str, number: int | str, *, if_match: frozenset[str] | None, via: str) -> VersionView:
    """Make version ``number``'s load_config the model's again, as a new version (``restore``). With
    ``if_match`` the write happens only if the model is still at one of those ETags (else 412, as for
    every write). Restoring the config already in force is refused (409): nothing would change."""
    model = registry.get_model(model_name)
    old = version(model, number)
    if if_match is not None and "*" not in if_match and model.etag not in if_match:
        raise PreconditionFailed(model)
    if old.load_config == model.load_config:
        raise NothingToRestore(model_name, old.number)
    _check_still_valid(model_name, old)
    with made_by("restore", via=via, restored_from=old.number):
        model = registry.update_model(model_name, {"load_config": old.load_config}, if_match=if_match)
    return history(model).versions[0]


def _check_still_valid(model_name: str, old: LoadConfigVersion) -> None:
    """An old config is saved again only if a PATCH would accept it today (its keys may belong to a
    plugin no longer installed)."""
    try:
        LoadConfig(allow_none=True).deserialize(old.load_config)
    except ValidationError as error:
        raise RestoreRefused(model_name, old.number, " ".join(flatten_messages(error.messages))) from None
