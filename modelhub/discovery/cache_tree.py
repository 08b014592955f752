"""The Hugging Face hub cache layout: ``models--org--name/`` with ``refs/main``, ``blobs/<hash>`` and
``snapshots/<revision>/`` whose files are relative symlinks to the blobs.

Repos are read with huggingface_hub's own ``scan_cache_dir``, so revisions and sizes are exactly what
``hf cache ls`` shows. ``scan_cache_dir`` drops a repo it finds corrupted (a blob missing, a ref to a
missing revision...) and stops altogether at an unreadable folder; those repos are then read directly
here, so that a model with one missing blob is reported as an incomplete copy instead of vanishing.
huggingface_hub is imported only when a root holds hub-layout repos (it is not a web dependency).
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

HUB_PREFIXES = ("models--", "datasets--", "spaces--", "kernels--")  # huggingface_hub's REPO_TYPES_MAPPING
MODEL_PREFIX = "models--"
SHARED_BLOBS = ("blobs", ".huggingface-shared-blobs")  # a shared blob store at the cache root, and its marker


@dataclass
class CachedCopy:
    """The revision of one cached model repo that a scan reports: ``refs/main``'s, else the newest."""

    repo_id: str
    repo_dir: Path  # the models--org--name folder, under the root as it was given
    snapshot: Path | None = None  # snapshots/<revision>; None when no revision could be read
    revision: str | None = None
    size_bytes: int | None = None  # from scan_cache_dir; None when the snapshot must be walked
    file_names: frozenset[str] | None = None  # the snapshot's top-level files (None: walk it)
    warning: str | None = None  # why scan_cache_dir rejected the repo, or why it could not be read


def repo_id(dir_name: str) -> str:
    """``models--org--name`` -> ``org/name`` (as huggingface_hub maps it)."""
    return dir_name.split("--", 1)[1].replace("--", "/")


def is_shared_blob_store(path: str) -> bool:
    """Whether ``path`` is huggingface_hub's shared blob store (not a folder of models)."""
    return os.path.basename(path) == SHARED_BLOBS[0] and os.path.isfile(os.path.join(path, SHARED_BLOBS[1]))


def read_repos(root: Path, dir_names: list[str]) -> list[CachedCopy]:
    """One :class:`CachedCopy` per ``models--*`` folder of ``root``, in the order given."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(root)
    except (OSError, ValueError, CacheNotFound) as error:
        # It stops at the first unreadable repo: read each one here, so the others are still found.
        return [_read_directly(root, name, _stopped_by(error, root, name)) for name in dir_names]
    repos = {repo.repo_path.name: repo for repo in info.repos if repo.repo_type == "model"}
    copies = []
    for name in dir_names:
        if name in repos:
            copies.append(_from_scan(root, name, repos[name]))
        else:
            copies.append(_read_directly(root, name, _warning_for(info, name)))
    return copies


def _from_scan(root: Path, name: str, repo) -> CachedCopy:
    """The copy ``scan_cache_dir`` described."""
    copy = CachedCopy(repo_id(name), root / name)
    if not repo.revisions:
        copy.warning = "no snapshot in the cache (the download did not finish)"
        return copy
    revision = _chosen_revision(repo.revisions)
    copy.revision = revision.commit_hash
    copy.snapshot = copy.repo_dir / "snapshots" / revision.commit_hash
    copy.size_bytes = revision.size_on_disk
    copy.file_names = frozenset(f.file_name for f in revision.files if f.file_path.parent == revision.snapshot_path)
    return copy


def _chosen_revision(revisions):
    """The revision ``refs/main`` points to, else the most recently modified one."""
    for revision in revisions:
        if "main" in revision.refs:
            return revision
    return max(revisions, key=lambda r: (r.last_modified, r.commit_hash))


def _warning_for(info, name: str) -> str:
    """The message of the CorruptedCacheException ``scan_cache_dir`` gave for repo folder ``name``."""
    # Its warnings carry no path attribute; each message names a path inside the repo folder.
    inside = re.compile(re.escape(str(Path(info.cache_dir) / name)) + r"(?=[/)]|$)")
    for warning in info.warnings:
        if inside.search(str(warning)):
            return str(warning)
    return "huggingface_hub's scan_cache_dir rejected this repo folder"


def _stopped_by(error: Exception, root: Path, name: str) -> str | None:
    """``error``'s message if it was raised inside repo folder ``name``, else None."""
    filename = getattr(error, "filename", None)
    if filename is None:
        return None
    inside = (str(root / name), os.path.realpath(root / name))
    return str(error) if any(str(filename) == d or str(filename).startswith(d + os.sep) for d in inside) else None


def _read_directly(root: Path, name: str, warning: str | None) -> CachedCopy:
    """Find the revision to report without huggingface_hub; the snapshot is walked by the scanner."""
    copy = CachedCopy(repo_id(name), root / name, warning=warning)
    try:
        with os.scandir(copy.repo_dir / "snapshots") as entries:
            snapshots = {e.name: e.stat().st_mtime for e in entries if e.is_dir() and not e.name.startswith(".")}
        main = _read_ref(copy.repo_dir / "refs" / "main")
    except OSError as error:
        copy.warning = warning or f"cannot read {error.filename}: {error.strerror}"
        return copy
    if not snapshots:
        copy.warning = warning or "no snapshot in the cache (the download did not finish)"
        return copy
    copy.revision = main if main in snapshots else max(snapshots, key=lambda r: (snapshots[r], r))
    copy.snapshot = copy.repo_dir / "snapshots" / copy.revision
    return copy


def _read_ref(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None
