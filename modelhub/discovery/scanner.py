"""Find the models on disk: the Hugging Face hub cache (primary), extra roots (secondary), the tools'
libraries (LM Studio, Ollama, text-generation-webui: secondary roots naming their tool) and single paths
(custom).

Each root is listed as its layout says (modelhub/discovery/plans.py), then each candidate is read:
hub-cache repos through huggingface_hub's ``scan_cache_dir``, model folders from their config.json and
file names, GGUF files from their header (modelhub/discovery/gguf_copies.py). Whatever cannot be read
becomes a :class:`Problem` for its path and the scan goes on. Reported paths start with the root as given
(never resolved), so a copy can be matched to the root it was found under. Then the same file reached
twice becomes one copy, and GGUF copies get the digests that tell the same bytes under two names
(modelhub/discovery/identity.py).

This runs in the web process: it imports neither torch nor transformers, and huggingface_hub (the ``ml``
extra) only when a root holds hub-cache repos.
"""

import importlib.util
import os
from dataclasses import replace

from modelhub.discovery import cache_tree, gguf_copies, identity, plans
from modelhub.discovery.cache_tree import CONFIG, Listing, UnusableFolder
from modelhub.discovery.gguf_copies import GgufCandidate, UnreadableGguf
from modelhub.discovery.identity import KnownFiles
from modelhub.discovery.libraries import (  # noqa: F401 (where callers have always found them)
    SECONDARY_ENV, library_locations, primary_location, secondary_locations)
from modelhub.discovery.plans import ModelFolder
from modelhub.discovery.types import FoundModel, Location, Problem, ProgressCallback, ScanReport

INSTALL_HUB = (
    "huggingface_hub is not installed (pip install 'modelhub[ml]'): models cannot be loaded, and hub-cache "
    "repos were read without its checks"
)


def scan(locations: list[Location], on_progress: ProgressCallback | None = None,
         known: KnownFiles | None = None) -> ScanReport:
    """Every model copy under ``locations`` (a root listed twice is scanned once): per hub-cache repo
    (its refs/main revision, else its newest) and per model folder a folder copy when it has config.json
    and weights, and one copy per GGUF file (a split model's parts: one). ``known``: the registry's GGUF
    copies, whose facts are reused while their file is unchanged. ``on_progress(done, total)`` is called
    with done=0 first, then after each candidate (a repo, a folder, a loose GGUF file)."""
    known = known or KnownFiles()
    report = ScanReport(roots=_unique(locations))
    planned = [plans.plan(location, report.problems) for location in report.roots]
    progress = _Progress(on_progress, sum(plan.size for plan in planned))
    hub_installed = not any(p.hub_dirs or p.location.kind == "primary" for p in planned) or _hub_installed()
    for plan in planned:
        scan_root = _Root(report, plan.location, known)
        if not hub_installed and (plan.hub_dirs or plan.location.kind == "primary"):
            report.problems.append(Problem(str(plan.location.root), INSTALL_HUB))
        if plan.hub_dirs:
            for copy in cache_tree.read_repos(plans.root(plan.location), plan.hub_dirs):
                scan_root.add_cached(copy)
                progress.step()
        for folder in plan.folders:
            scan_root.add_folder(folder)
            progress.step()
        for candidate in plan.files:
            scan_root.add_gguf(candidate)
            progress.step()
    report.found = identity.merge_same_files(report.found)
    identity.assign_digests(report.found, known)
    return report


def inspect_directory(path: str | os.PathLike, location: str = "custom") -> FoundModel:
    """Describe the single model folder ``path`` (a custom path). hf_path is the folder's name, or the
    repo id when ``path`` is a hub-cache snapshot. Raises ValueError when ``path`` is not a readable
    folder with a config.json holding a JSON object."""
    directory = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isdir(directory):
        raise ValueError(f"{directory} is not a folder")
    hf_path, revision = _custom_name(directory)
    try:
        found = FoundModel(hf_path, location, directory, revision=revision)
        listing = cache_tree.walk(directory)
        found.size_bytes = listing.size_bytes
        cache_tree.describe(found, listing)
    except OSError as error:
        raise ValueError(cache_tree.message(error)) from error
    found.library = "custom" if location == "custom" else None
    return found


def inspect_custom(path: str | os.PathLike) -> list[FoundModel]:
    """The copies a custom path holds: a model folder (config.json and weights), its GGUF files, or a
    single GGUF file. Raises ValueError when it holds none (the reason)."""
    target = os.path.abspath(os.path.expanduser(os.fspath(path)))
    report = ScanReport()
    custom = _Root(report, Location("secondary", os.path.dirname(target), library="custom"), KnownFiles(),
                   kind="custom")
    if os.path.isfile(target):
        custom.add_gguf(GgufCandidate(target, gguf_copies.model_name(target), os.path.basename(target)))
    elif os.path.isdir(target):
        custom.add_folder(ModelFolder(target, _custom_name(target)[0]), revision=_custom_name(target)[1])
    else:
        raise ValueError(f"{target} is neither a folder nor a file")
    if not report.found:
        raise ValueError("; ".join(problem.message for problem in report.problems) or f"no model in {target}")
    return identity.merge_same_files(report.found)


def _custom_name(directory: str) -> tuple[str, str | None]:
    """A custom folder's model name and revision: the repo id of a hub-cache snapshot, else its name."""
    snapshots = os.path.dirname(directory)
    repo_dir = os.path.basename(os.path.dirname(snapshots))
    if os.path.basename(snapshots) == "snapshots" and repo_dir.startswith(cache_tree.MODEL_PREFIX):
        return cache_tree.repo_id(repo_dir), os.path.basename(directory)
    return os.path.basename(directory), None


class _Root:
    """Reads one root's candidates into the report, each copy marked with the root's kind and library."""

    def __init__(self, report: ScanReport, location: Location, known: KnownFiles, kind: str | None = None):
        self.report, self.location, self.known = report, location, known
        self.kind = kind or location.kind
        self.root = None if self.kind == "custom" else str(location.root)

    def add_cached(self, copy: cache_tree.CachedCopy) -> None:
        """A cached repo's copies, and huggingface_hub's complaint about the repo as a Problem unless the
        copy already shows it (a missing blob in the reported revision marks it incomplete)."""
        listing = None
        if copy.snapshot is not None:
            folder = ModelFolder(str(copy.snapshot), copy.repo_id)
            listing = self.add_folder(folder, copy.revision, copy.listing, label_prefix=None)
        if copy.warning and not (listing and listing.broken and copy.warning.startswith("Blob missing")):
            prefix = "huggingface_hub: " if copy.snapshot is not None else ""
            self.report.problems.append(Problem(str(copy.repo_dir), prefix + copy.warning))

    def add_folder(self, folder: ModelFolder, revision: str | None = None, listing: Listing | None = None,
                   label_prefix: str | None = "") -> Listing | None:
        """A model folder: its folder copy (config.json and weights, or config.json and no GGUF file) and
        one copy per GGUF file. Returns its listing, None when it could not be listed."""
        try:
            listing = listing or cache_tree.walk(folder.path)
        except OSError as error:
            self.report.problems.append(Problem(folder.path, cache_tree.message(error)))
            return None
        self.report.problems.extend(listing.unreadable)
        broken_gguf = [name for name in listing.broken if gguf_copies.is_gguf_name(name)]
        for name in broken_gguf:
            self.report.problems.append(Problem(os.path.join(folder.path, name), "broken symlink (its file is gone)"))
        if not (listing.gguf or broken_gguf) or (CONFIG in listing.names and cache_tree.weight_format(listing.names)):
            found = FoundModel(folder.hf_path, self.kind, folder.path, revision=revision,
                               size_bytes=listing.size_bytes, library=self.location.library, library_root=self.root)
            try:  # a GGUF file's broken link does not make the folder copy incomplete: it is not part of it
                cache_tree.describe(found, replace(listing, broken=[b for b in listing.broken if b not in broken_gguf]))
                self.report.found.append(found)
            except UnusableFolder as error:
                self.report.problems.append(Problem(folder.path, str(error)))
        if label_prefix == "" and self.root is not None:
            label_prefix = os.path.relpath(folder.path, self.root)
        hf_path = None if folder.gguf_named_by_file else folder.hf_path
        for candidate in gguf_copies.candidates(folder.path, list(listing.gguf), hf_path, label_prefix, revision):
            self.add_gguf(candidate)
        return listing

    def add_gguf(self, candidate: GgufCandidate) -> None:
        try:
            found = gguf_copies.describe(candidate, self.kind, self.location.library, self.root, self.known)
        except (UnreadableGguf, OSError) as error:
            self.report.problems.append(Problem(candidate.path, cache_tree.message(error)))
            return
        if found is not None:
            self.report.found.append(found)


def _hub_installed() -> bool:
    return importlib.util.find_spec("huggingface_hub") is not None


def _unique(locations: list[Location]) -> list[Location]:
    seen, unique = set(), []
    for location in locations:
        key = os.path.realpath(plans.root(location))
        if key not in seen:
            seen.add(key)
            unique.append(location)
    return unique


class _Progress:
    def __init__(self, callback: ProgressCallback | None, total: int):
        self.callback, self.total, self.done = callback, total, 0
        if callback is not None:
            callback(0, total)

    def step(self) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total)
