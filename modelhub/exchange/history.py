"""An import's part in the load_config history (docs/exchange.md, "Load config history").

- A model the registry lacks gets its history exactly as the file holds it: numbers, sources, hosts,
  moments.
- For a model the registry has, a version of the file is the registry's own when it was made at the
  same moment with the same text (numbers are each registry's own: they may differ). The versions the
  registry lacks are appended after its own, in the file's order, renumbered from its newest number
  on, keeping their source, host and moment; a restore among them names the version it copied by its
  number here (or nothing, when that version is not here).
- Then, if the newest version is not the load_config in force after the import (the import changed
  it, or kept this registry's against the file's), that config is recorded as a version made by the
  import: the newest version is always the config in force.

So importing the same file twice adds nothing the second time.
"""

from dataclasses import dataclass, field

from sqlalchemy import select

from modelhub import config_history
from modelhub.extensions import db
from modelhub.models import LoadConfigVersion

_NONE = object()  # no version at all (``None`` is a version's text: the system defaults)
_COPIED = ("load_config", "source", "via", "host", "created_at")


@dataclass
class VersionPlan:
    new: list = field(default_factory=list)  # the file's versions to write, with their number here
    numbers: dict = field(default_factory=dict)  # the file's number -> the number here
    records_import: bool = False  # whether the import's own change becomes a version

    @property
    def added(self) -> int:
        return len(self.new) + self.records_import


def plan(entry: dict, local: list[LoadConfigVersion] | None, final_text: str | None, as_utc) -> VersionPlan:
    """What importing ``entry`` adds to a model's history. ``local``: its versions here, oldest first
    (None: the model is new); ``final_text``: its load_config once the import is applied."""
    theirs = sorted(entry.get("config_history") or [], key=lambda version: version["number"])
    if local is None:
        result = VersionPlan(new=[dict(version) for version in theirs],
                             numbers={version["number"]: version["number"] for version in theirs})
        newest = theirs[-1]["load_config"] if theirs else _NONE
    else:
        result = _appended(theirs, local, as_utc)
        newest = result.new[-1]["load_config"] if result.new else (local[-1].load_config if local else _NONE)
    result.records_import = newest is _NONE or newest != final_text
    return result


def _appended(theirs: list[dict], local: list[LoadConfigVersion], as_utc) -> VersionPlan:
    known = {(as_utc(version.created_at), version.load_config): version.number for version in local}
    result, next_number = VersionPlan(), (local[-1].number if local else 0) + 1
    for version in theirs:
        number = known.get((version["created_at"], version["load_config"]))
        if number is None:
            number, next_number = next_number, next_number + 1
            result.new.append({**version, "number": number})
        result.numbers[version["number"]] = number
    for version in result.new:
        if version.get("restored_from") is not None:
            version["restored_from"] = result.numbers.get(version["restored_from"])
    return result


def write(model_id: int, load_config: str | None, versions: VersionPlan) -> dict[int, int]:
    """Write the planned versions of one model (its row flushed, the listener suspended); returns the
    file's version numbers -> their ids here, for the runs that name them."""
    for version in versions.new:
        config_history.append(model_id, number=version["number"], restored_from=version.get("restored_from"),
                               **{name: version.get(name) for name in _COPIED})
    if versions.records_import:
        config_history.record(model_id, load_config, source="import", via="import")
    ids = dict(db.session.execute(select(LoadConfigVersion.number, LoadConfigVersion.id)
                                  .where(LoadConfigVersion.model_id == model_id)).all())
    return {theirs: ids[here] for theirs, here in versions.numbers.items()}
