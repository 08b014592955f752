"""What the registry's copies say about each place they live: every root a scan looks in (the HF
cache, secondary folders, the tools' libraries) with the copies and bytes it holds now, and each
model's copies for its card.

Counted from model_copy rows, so it answers the same in every web process and after a restart; the
scan's summary only adds which of its problems lie under each root.
"""

import os
from collections import defaultdict

from sqlalchemy import case, func, select

from modelhub.discovery import libraries
from modelhub.extensions import db
from modelhub.library_catalogue import LIBRARY_IDS, library_id
from modelhub.models import ModelCopy


def with_roots(status: dict) -> dict:
    """A scan status (modelhub.discovery.progress.read) with ``roots`` added, unless a scan runs (its
    counts are changing: the roots come back with its summary)."""
    if status["state"] == "running":
        return status
    return {**status, "roots": roots(status.get("summary", {}).get("problems", []))}


def roots(problems: list[dict] = ()) -> list[dict]:
    """One entry per root: the roots configured now (in the order a scan visits them), then any other
    root the registry has copies from (its tool's default place, or one no longer configured), in the
    catalogue's order, then custom paths.
    ``problems``: the last scan's, each attributed to the root its path lies under."""
    entries: dict[str, dict] = {}
    for location in libraries.scan_locations():
        if location.configured or os.path.isdir(location.root):  # a tool's default place: only if present
            library = "huggingface" if location.kind == "primary" else location.library
            _entry(entries, library, location.kind, _normal(location.root))
    configured_count = len(entries)
    for library, root, location, copies, size, missing in _counts():
        entry = _entry(entries, library, location, root)
        entry["copies"] += copies
        entry["size_bytes"] += size
        entry["missing"] += missing
    for problem in problems:
        if (entry := _holding(entries.values(), problem["path"])) is not None:
            entry["problems"].append({"path": problem["path"], "message": problem["message"]})
    for path in _alias_paths():
        if (entry := _holding(entries.values(), path)) is not None:
            entry["linked"] += 1
    configured = list(entries.values())[:configured_count]
    others = sorted(list(entries.values())[configured_count:],
                    key=lambda entry: (entry["location"] == "custom", LIBRARY_IDS.index(entry["library"]), entry["root"]))
    return configured + others


def copies_by_model(model_ids: list[int]) -> dict[int, list[ModelCopy]]:
    """Each model's copies (oldest first), read in one query for a page of cards."""
    by_model = defaultdict(list)
    if model_ids:
        query = select(ModelCopy).where(ModelCopy.model_id.in_(model_ids)).order_by(ModelCopy.id)
        for copy in db.session.scalars(query):
            by_model[copy.model_id].append(copy)
    return by_model


def _counts():
    """(library, root, location, present copies, their bytes, missing copies) per root, from the rows.
    Rows from before libraries were recorded (migration 0011) carry no root: the primary ones are the
    hub cache's; a secondary one is given the configured root its path lies under."""
    present = case((ModelCopy.missing.is_(False), 1), else_=0)
    query = (select(ModelCopy.library, ModelCopy.library_root, ModelCopy.location, func.sum(present),
                    func.sum(present * ModelCopy.size_bytes), func.sum(1 - present))
             .group_by(ModelCopy.library, ModelCopy.library_root, ModelCopy.location))
    rows = db.session.execute(query).all()
    unrooted_secondary = any(root is None and location == "secondary" for _, root, location, *_ in rows)
    secondary_roots = [_normal(location.root) for location in libraries.secondary_locations()] if unrooted_secondary else []
    for stored_library, root, location, copies, size, missing in rows:
        counts = int(copies or 0), int(size or 0), int(missing or 0)
        library = library_id(stored_library, location)
        if location == "custom":
            yield library, None, location, *counts  # each custom path is its own root: one entry for them all
        elif root is not None:
            yield library, _normal(root), location, *counts
        elif location == "primary":
            yield library, _normal(libraries.primary_location().root), location, *counts
        else:
            yield from _by_secondary_root(stored_library, library, secondary_roots)


def _by_secondary_root(stored_library: str | None, library: str, secondary_roots: list[str]):
    """Rows of secondary copies recorded without their root, counted under the root each path is in."""
    present = case((ModelCopy.missing.is_(False), 1), else_=0)
    same_library = ModelCopy.library.is_(None) if stored_library is None else ModelCopy.library == stored_library
    query = select(ModelCopy.path, present, ModelCopy.size_bytes).where(
        ModelCopy.location == "secondary", ModelCopy.library_root.is_(None), same_library)
    for path, is_present, size in db.session.execute(query):
        root = next((r for r in secondary_roots if _under(path, r)), None)
        yield library, root, "secondary", is_present, size * is_present, 1 - is_present


def _alias_paths():
    """The other paths of present copies' files (symlinks, hard links), each counted where it lies: a
    library holding only links to another's files is not empty."""
    query = select(ModelCopy.aliases).where(ModelCopy.aliases.is_not(None), ModelCopy.missing.is_(False))
    for aliases in db.session.scalars(query):
        for alias in aliases or []:
            if isinstance(alias, dict) and alias.get("path"):
                yield alias["path"]


def _entry(entries: dict, library: str, location: str, root: str | None) -> dict:
    """The entry of ``root`` (one for all custom paths), made on first sight: a root is counted once,
    under the library it was configured as (its copies may say otherwise: a hub cache given as a folder)."""
    key = root if root is not None else location
    if key not in entries:
        entries[key] = {"library": library, "location": location, "root": root,
                        "exists": root is not None and os.path.isdir(root),
                        "copies": 0, "size_bytes": 0, "missing": 0, "linked": 0, "problems": []}
    return entries[key]


def _holding(entries, path: str) -> dict | None:
    """The entry whose root holds ``path`` (the deepest, when roots nest)."""
    holding = [entry for entry in entries if entry["root"] is not None and _under(path, entry["root"])]
    return max(holding, key=lambda entry: len(entry["root"]), default=None)


def _under(path: str, root: str) -> bool:
    path = _normal(path)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _normal(path) -> str:
    return os.path.normpath(os.path.expanduser(str(path)))
