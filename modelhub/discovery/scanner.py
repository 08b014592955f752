"""Find the models on disk: the Hugging Face hub cache (primary), extra roots (secondary) and single
folders (custom).

Any root may hold hub-layout repos (``models--org--name/``, read through huggingface_hub's
``scan_cache_dir``) and plain model folders, ``root/org/name/config.json`` (hf_path ``org/name``) or
``root/name/config.json`` (``name``), never deeper. Hidden folders and other hub repo types are skipped.
Whatever cannot be read becomes a :class:`Problem` for its path and the scan goes on. Reported paths start
with the root as given (never resolved), so a copy can be matched to the root it was found under.

This runs in the web process: it imports neither torch nor transformers, and huggingface_hub (the ``ml``
extra) only when a root holds hub-cache repos. The reading itself is in :mod:`.cache_tree`.
"""

import errno
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from modelhub.discovery import cache_tree
from modelhub.discovery.cache_tree import CONFIG, Listing, UnusableFolder
from modelhub.discovery.types import FoundModel, Location, Problem, ProgressCallback, ScanReport

SECONDARY_ENV = "MODELHUB_SECONDARY_CACHE"
INSTALL_HUB = (
    "huggingface_hub is not installed (pip install 'modelhub[ml]'): models cannot be loaded, and hub-cache "
    "repos were read without its checks"
)


@dataclass
class _Plan:
    """A root's candidates, listed before any is read so that progress knows its total."""

    location: Location
    hub_dirs: list[str] = field(default_factory=list)  # models--* folder names
    folders: list[tuple[str, str]] = field(default_factory=list)  # (path, hf_path) of plain model folders


def primary_location() -> Location:
    """The hub cache as huggingface_hub resolves it: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``~/.cache/huggingface/hub``. Read from the environment now, like huggingface_hub.constants reads it
    once at import (its value would be stale for a process whose environment changed since)."""
    return Location("primary", Path(_hub_cache_from_environment()))


def _hub_cache_from_environment() -> str:
    """huggingface_hub.constants' rule."""
    env = os.environ
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return os.path.expandvars(os.path.expanduser(cache))


def secondary_locations() -> list[Location]:
    """The roots listed in ``MODELHUB_SECONDARY_CACHE``, separated by ``os.pathsep`` (``~`` expanded).
    Roots that do not exist are kept: the scan reports them as problems."""
    value = os.environ.get(SECONDARY_ENV, "")
    return [Location("secondary", Path(os.path.expanduser(p.strip()))) for p in value.split(os.pathsep) if p.strip()]


def scan(locations: list[Location], on_progress: ProgressCallback | None = None) -> ScanReport:
    """Every model copy under ``locations`` (a root listed twice is scanned once): one FoundModel per
    hub-cache repo (its refs/main revision, else its newest) and per plain model folder.
    ``on_progress(done, total)`` is called with done=0 first, then after each candidate folder."""
    report = ScanReport(roots=_unique(locations))
    plans = [_plan(location, report.problems) for location in report.roots]
    progress = _Progress(on_progress, sum(len(p.hub_dirs) + len(p.folders) for p in plans))
    hub_installed = not any(p.hub_dirs or p.location.kind == "primary" for p in plans) or _hub_installed()
    for plan in plans:
        kind = plan.location.kind
        if not hub_installed and (plan.hub_dirs or kind == "primary"):
            report.problems.append(Problem(str(plan.location.root), INSTALL_HUB))
        if plan.hub_dirs:
            for copy in cache_tree.read_repos(_root(plan.location), plan.hub_dirs):
                _add_cached(report, copy, kind)
                progress.step()
        for path, hf_path in plan.folders:
            _add(report, path, lambda: _inspect(path, hf_path, kind))
            progress.step()
    return report


def inspect_directory(path: str | os.PathLike, location: str = "custom") -> FoundModel:
    """Describe the single model folder ``path`` (a custom path). hf_path is the folder's name, or the
    repo id when ``path`` is a hub-cache snapshot. Raises ValueError when ``path`` is not a readable
    folder with a config.json holding a JSON object."""
    directory = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isdir(directory):
        raise ValueError(f"{directory} is not a folder")
    hf_path, revision = os.path.basename(directory), None
    snapshots = os.path.dirname(directory)
    repo_dir = os.path.basename(os.path.dirname(snapshots))
    if os.path.basename(snapshots) == "snapshots" and repo_dir.startswith(cache_tree.MODEL_PREFIX):
        hf_path, revision = cache_tree.repo_id(repo_dir), hf_path
    try:
        return _inspect(directory, hf_path, location, revision)[0]
    except OSError as error:
        raise ValueError(cache_tree.message(error)) from error


def _inspect(path: str, hf_path: str, kind: str, revision: str | None = None) -> tuple[FoundModel, Listing]:
    listing = cache_tree.walk(path)
    found = FoundModel(hf_path, kind, path, revision=revision, size_bytes=listing.size_bytes)
    cache_tree.describe(found, listing)
    return found, listing


def _add(report: ScanReport, path: str, inspect) -> Listing | None:
    """Run ``inspect`` (-> (FoundModel, Listing)): the model into the report, or a Problem for ``path``."""
    try:
        found, listing = inspect()
    except (UnusableFolder, OSError) as error:
        report.problems.append(Problem(path, cache_tree.message(error)))
        return None
    report.found.append(found)
    report.problems.extend(listing.unreadable)
    return listing


def _add_cached(report: ScanReport, copy: cache_tree.CachedCopy, kind: str) -> None:
    """A cached repo's copy into the report, and huggingface_hub's complaint about the repo as a Problem
    unless the copy already shows it (a missing blob in the reported revision marks it incomplete)."""
    listing = None
    if copy.snapshot is not None:
        listing = _add(report, str(copy.snapshot), lambda: _inspect_cached(copy, kind))
    if copy.warning and not (listing and listing.broken and copy.warning.startswith("Blob missing")):
        prefix = "huggingface_hub: " if copy.snapshot is not None else ""
        report.problems.append(Problem(str(copy.repo_dir), prefix + copy.warning))


def _inspect_cached(copy: cache_tree.CachedCopy, kind: str) -> tuple[FoundModel, Listing]:
    if copy.listing is None:  # not described by scan_cache_dir: walk the snapshot
        return _inspect(str(copy.snapshot), copy.repo_id, kind, copy.revision)
    found = FoundModel(copy.repo_id, kind, str(copy.snapshot), revision=copy.revision,
                       size_bytes=copy.listing.size_bytes)
    cache_tree.describe(found, copy.listing)
    return found, copy.listing


def _hub_installed() -> bool:
    return importlib.util.find_spec("huggingface_hub") is not None


# Listing candidates


def _root(location: Location) -> Path:
    return Path(os.path.expanduser(location.root))


def _unique(locations: list[Location]) -> list[Location]:
    seen, unique = set(), []
    for location in locations:
        key = os.path.realpath(_root(location))
        if key not in seen:
            seen.add(key)
            unique.append(location)
    return unique


def _sorted_entries(path: str | Path) -> list[os.DirEntry]:
    with os.scandir(path) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _plan(location: Location, problems: list[Problem]) -> _Plan:
    """List a root: its hub-cache repos, and its plain model folders one or two levels down."""
    plan = _Plan(location)
    try:
        entries = _sorted_entries(_root(location))
    except OSError as error:
        problems.append(Problem(str(location.root), _root_message(location, error)))
        return plan
    for entry in entries:
        if entry.name.startswith(cache_tree.MODEL_PREFIX):
            plan.hub_dirs.append(entry.name)
        elif not _skipped(entry):
            _plan_entry(entry, None, plan, problems)
    return plan


def _skipped(entry: os.DirEntry) -> bool:
    """Hidden folders, other hub repo types (datasets, spaces...) and a shared blob store."""
    return entry.name.startswith((".", *cache_tree.HUB_PREFIXES)) or cache_tree.is_shared_blob_store(entry.path)


def _plan_entry(entry: os.DirEntry, org: str | None, plan: _Plan, problems: list[Problem]) -> None:
    """``root/name`` (org None) or ``root/org/name``: a model folder, an org folder to look into, or neither."""
    if not _is_dir(entry):
        if entry.is_symlink() and (reason := _dangling(entry.path)):
            problems.append(Problem(entry.path, reason))
        return
    try:
        os.lstat(os.path.join(entry.path, CONFIG))  # lstat: a config.json that is a broken symlink counts
    except FileNotFoundError:
        if org is None:
            _plan_org(entry, plan, problems)
        return
    except OSError as error:  # e.g. a folder we may not enter
        problems.append(Problem(entry.path, f"cannot read folder: {error.strerror}"))
        return
    plan.folders.append((entry.path, f"{org}/{entry.name}" if org else entry.name))


def _plan_org(entry: os.DirEntry, plan: _Plan, problems: list[Problem]) -> None:
    try:
        children = _sorted_entries(entry.path)
    except OSError as error:
        problems.append(Problem(entry.path, cache_tree.message(error)))
        return
    for child in children:
        if not child.name.startswith("."):
            _plan_entry(child, entry.name, plan, problems)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop raises rather than answering False
        return False


def _dangling(path: str) -> str | None:
    """Why the symlink ``path`` leads nowhere, or None when it leads to a file."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno != errno.ENOENT:
            return f"cannot follow symlink: {error.strerror}"
        try:
            return f"broken symlink: {os.readlink(path)} does not exist"
        except OSError:
            return "broken symlink"
    return None


def _root_message(location: Location, error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        if location.kind == "primary":
            return "folder does not exist (nothing downloaded yet, or HF_HUB_CACHE / HF_HOME point elsewhere)"
        return f"folder does not exist (listed in {SECONDARY_ENV})"
    if isinstance(error, NotADirectoryError):
        return "not a folder"
    return f"cannot read folder: {error.strerror}"


class _Progress:
    def __init__(self, callback: ProgressCallback | None, total: int):
        self.callback, self.total, self.done = callback, total, 0
        if callback is not None:
            callback(0, total)

    def step(self) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total)
