"""The environments of an export: which ones its runs ran in, and writing them into the registry that
imports it, so that "where it loads" survives a move (a SQLite registry into a shared PostgreSQL one).

An environment is named by its fingerprint everywhere in the document (database ids are this
registry's own): each run says ``environment_fingerprint``, and the document's ``environments`` hold
each one's host and facts once.
"""

from sqlalchemy import select

from modelhub.exchange.schemas import EnvironmentEntry
from modelhub.extensions import db
from modelhub.models import Environment

_FIELDS = tuple(EnvironmentEntry().fields)


def fingerprints(environment_ids) -> dict[int, str]:
    """Environment id -> fingerprint, for the environments these runs ran in."""
    ids = sorted({environment_id for environment_id in environment_ids if environment_id is not None})
    found = {}
    for start in range(0, len(ids), 500):
        query = select(Environment.id, Environment.fingerprint).where(Environment.id.in_(ids[start:start + 500]))
        found.update(dict(db.session.execute(query).all()))
    return found


def to_document(by_id: dict[int, str]) -> list[dict]:
    """The environments as the document holds them, by fingerprint (the same registry, the same bytes)."""
    rows = db.session.scalars(select(Environment).where(Environment.id.in_(list(by_id)))) if by_id else []
    entries = [{name: getattr(row, name) for name in _FIELDS} for row in rows]
    return EnvironmentEntry(many=True).dump(sorted(entries, key=lambda entry: entry["fingerprint"]))


def write(entries: list[dict]) -> dict[str, int]:
    """Add the environments this registry lacks (in the import's transaction); fingerprint -> local id.
    One it has already keeps its own record."""
    wanted = [entry["fingerprint"] for entry in entries]
    local = {}
    for start in range(0, len(wanted), 500):
        query = select(Environment.fingerprint, Environment.id).where(Environment.fingerprint.in_(wanted[start:start + 500]))
        local.update(dict(db.session.execute(query).all()))
    added = [Environment(**entry) for entry in entries if entry["fingerprint"] not in local]
    if added:
        db.session.add_all(added)
        db.session.flush()
        local.update({row.fingerprint: row.id for row in added})
    return local
