"""Reading what a tree on disk holds: hub-cache repos and model folders.

Hub-cache repos (``models--org--name/`` with ``refs/main``, ``blobs/<hash>`` and ``snapshots/<revision>/``
whose files are relative symlinks to the blobs) are read with huggingface_hub's own ``scan_cache_dir``,
so revisions and sizes are what ``hf cache ls`` shows. ``scan_cache_dir`` drops a repo it finds corrupted
(a blob missing, a ref to a missing revision...) and stops altogether at an unreadable folder; such repos
are read directly here, so a model with one missing blob shows up as an incomplete copy instead of
vanishing. A model folder is described from its file names, config.json and shard index alone: weights
are never opened or hashed.
"""

import fnmatch
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from modelhub.discovery.types import FoundModel, Problem

HUB_PREFIXES = ("models--", "datasets--", "spaces--", "kernels--")  # huggingface_hub's REPO_TYPES_MAPPING
MODEL_PREFIX = "models--"
SHARED_BLOBS = ("blobs", ".huggingface-shared-blobs")  # a shared blob store at the cache root, and its marker
CONFIG = "config.json"
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
NO_SNAPSHOT = "no snapshot in the cache (the download did not finish)"


class UnusableFolder(ValueError):
    """A model folder whose config.json is missing, unreadable or not a JSON object."""


@dataclass
class Listing:
    """What a model folder holds: its top-level file names, its bytes on disk, its dangling symlinks."""

    names: frozenset[str]
    size_bytes: int
    broken: list[str] = field(default_factory=list)  # relative paths of symlinks that lead nowhere
    unreadable: list[Problem] = field(default_factory=list)  # subfolders that could not be listed
    gguf: tuple[str, ...] = ()  # relative paths of the GGUF files, at any depth (each may be a copy)


@dataclass
class CachedCopy:
    """The revision of one cached model repo that a scan reports: ``refs/main``'s, else the newest."""

    repo_id: str
    repo_dir: Path  # the models--org--name folder, under the root as it was given
    snapshot: Path | None = None  # snapshots/<revision>; None when no revision could be read
    revision: str | None = None
    listing: Listing | None = None  # from scan_cache_dir; None when the snapshot must be walked
    warning: str | None = None  # why scan_cache_dir rejected the repo, or why it could not be read


# Hub-cache repos


def repo_id(dir_name: str) -> str:
    """``models--org--name`` -> ``org/name`` (as huggingface_hub maps it)."""
    return dir_name.split("--", 1)[1].replace("--", "/")


def is_shared_blob_store(path: str) -> bool:
    """Whether ``path`` is huggingface_hub's shared blob store (not a folder of models)."""
    return os.path.basename(path) == SHARED_BLOBS[0] and os.path.isfile(os.path.join(path, SHARED_BLOBS[1]))


def read_repos(root: Path, dir_names: list[str]) -> list[CachedCopy]:
    """One :class:`CachedCopy` per ``models--*`` folder of ``root``, in the order given. Without
    huggingface_hub (a broken install; the scanner reports it) every repo is read directly."""
    try:  # here, not at the top: huggingface_hub costs a tenth of a second, which only a scan pays
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:
        return [_read_directly(root, name, None) for name in dir_names]
    try:
        info = scan_cache_dir(root)
    except (OSError, ValueError, CacheNotFound) as error:
        # It stops at the first unreadable repo: read each one here, so the others are still found.
        return [_read_directly(root, name, _raised_inside(error, root, name)) for name in dir_names]
    repos = {repo.repo_path.name: repo for repo in info.repos if repo.repo_type == "model"}
    return [
        _from_scan(root, name, repos[name]) if name in repos else _read_directly(root, name, _warning_for(info, name))
        for name in dir_names
    ]


def _from_scan(root: Path, name: str, repo) -> CachedCopy:
    """The copy ``scan_cache_dir`` described: the revision refs/main points to, else the newest."""
    copy = CachedCopy(repo_id(name), root / name)
    if not repo.revisions:
        copy.warning = NO_SNAPSHOT
        return copy
    revision = next((r for r in repo.revisions if "main" in r.refs), None)
    revision = revision or max(repo.revisions, key=lambda r: (r.last_modified, r.commit_hash))
    copy.revision = revision.commit_hash
    copy.snapshot = copy.repo_dir / "snapshots" / revision.commit_hash
    names = frozenset(f.file_name for f in revision.files if f.file_path.parent == revision.snapshot_path)
    gguf = tuple(sorted(f.file_path.relative_to(revision.snapshot_path).as_posix() for f in revision.files
                        if _is_gguf(f.file_name)))
    size = revision.size_on_disk
    if gguf:  # GGUF files are copies of their own: the folder's size is that of the rest (each blob once)
        size = sum({f.blob_path: f.size_on_disk for f in revision.files if not _is_gguf(f.file_name)}.values())
    copy.listing = Listing(names, size, gguf=gguf)
    return copy


def _warning_for(info, name: str) -> str:
    """The message of the CorruptedCacheException ``scan_cache_dir`` gave for repo folder ``name``."""
    # Its warnings carry no path attribute, but each message names a path inside the repo folder.
    inside = re.compile(re.escape(str(Path(info.cache_dir) / name)) + r"(?=[/)]|$)")
    return next((str(w) for w in info.warnings if inside.search(str(w))), "scan_cache_dir rejected this repo")


def _raised_inside(error: Exception, root: Path, name: str) -> str | None:
    """``error``'s message if it concerns a path inside repo folder ``name``, else None."""
    filename = str(getattr(error, "filename", None) or "")
    folders = (str(root / name), os.path.realpath(root / name))
    return message(error) if any(filename == f or filename.startswith(f + os.sep) for f in folders) else None


def _read_directly(root: Path, name: str, warning: str | None) -> CachedCopy:
    """Find the revision to report without huggingface_hub (the snapshot is then walked)."""
    copy = CachedCopy(repo_id(name), root / name, warning=warning)
    try:
        with os.scandir(copy.repo_dir / "snapshots") as entries:
            snapshots = {e.name: e.stat().st_mtime for e in entries if e.is_dir() and not e.name.startswith(".")}
        main = _read_ref(copy.repo_dir / "refs" / "main")
    except OSError as error:
        copy.warning = warning or message(error)
        return copy
    if not snapshots:
        copy.warning = warning or NO_SNAPSHOT
        return copy
    copy.revision = main if main in snapshots else max(snapshots, key=lambda r: (snapshots[r], r))
    copy.snapshot = copy.repo_dir / "snapshots" / copy.revision
    return copy


def _read_ref(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


# Model folders


def walk(directory: str) -> Listing:
    """List ``directory`` and its subfolders (hidden ones such as .git are not entered, symlinks to
    folders are not followed); each file counted once, through symlinks. Raises OSError when
    ``directory`` itself cannot be listed."""
    names, broken, unreadable, seen, size, gguf = set(), [], [], set(), 0, []
    pending = [(directory, "")]
    while pending:
        path, prefix = pending.pop()
        try:
            with os.scandir(path) as entries:
                entries = list(entries)
        except OSError as error:
            if not prefix:
                raise
            unreadable.append(Problem(path, message(error)))
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    pending.append((entry.path, f"{prefix}{entry.name}/"))
                continue
            try:
                info = entry.stat()
            except OSError:
                broken.append(prefix + entry.name)
                continue
            if stat.S_ISDIR(info.st_mode):
                continue
            if not prefix:
                names.add(entry.name)
            if _is_gguf(entry.name):  # a copy of its own, not counted in the folder's size
                gguf.append(prefix + entry.name)
            elif (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                size += info.st_size
    return Listing(frozenset(names), size, sorted(broken), unreadable, tuple(sorted(gguf)))


def _is_gguf(name: str) -> bool:
    return name.lower().endswith(".gguf")


def describe(found: FoundModel, listing: Listing) -> None:
    """Fill ``found`` from its folder's config.json and file names. Raises UnusableFolder."""
    config = _read_config(found.path, listing)
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        found.architecture = architectures[0]
    if isinstance(config.get("model_type"), str):
        found.model_type = config["model_type"]
    found.quantization = quantization(config.get("quantization_config"), listing.names)
    found.weight_format = weight_format(listing.names)
    indexes = [index for index in SHARD_INDEXES if index in listing.names]
    reasons = [reason for index in indexes if (reason := _shard_problem(found.path, index, listing.names))]
    if found.weight_format is None:
        reasons.append("no weight files")
    if listing.broken:
        reasons.append(f"broken symlinks: {', '.join(listing.broken)}")
    found.incomplete, found.incomplete_reason = bool(reasons), "; ".join(reasons) or None


def _read_config(directory: str, listing: Listing) -> dict:
    if CONFIG in listing.broken:
        raise UnusableFolder("config.json is a broken symlink (its blob is missing)")
    if CONFIG not in listing.names:
        raise UnusableFolder(f"no config.json in {directory}")
    try:
        with open(os.path.join(directory, CONFIG), "rb") as file:
            config = json.load(file)
    except OSError as error:
        raise UnusableFolder(f"cannot read config.json: {error.strerror}") from error
    except ValueError as error:
        raise UnusableFolder(f"config.json is not valid JSON ({error})") from error
    if not isinstance(config, dict):
        raise UnusableFolder("config.json is not a JSON object")
    return config


def quantization(config: object, names: frozenset[str] = frozenset()) -> str | None:
    """A label for config.json's ``quantization_config``: "GPTQ", "AWQ", "bitsandbytes 4-bit", any other
    quant_method upper-cased. Older GPTQ checkpoints only have a quantize_config.json file."""
    if not isinstance(config, dict):
        return "GPTQ" if "quantize_config.json" in names else None
    # transformers writes both load_in_4bit and _load_in_4bit; older configs have no quant_method
    four, eight = (bool(config.get(key) or config.get(f"_{key}")) for key in ("load_in_4bit", "load_in_8bit"))
    method = config.get("quant_method") or ("bitsandbytes" if four or eight else None)
    if not isinstance(method, str):
        return None
    if method.lower() == "bitsandbytes":
        return "bitsandbytes 4-bit" if four else "bitsandbytes 8-bit" if eight else "bitsandbytes"
    return method.upper()


def weight_format(names: frozenset[str]) -> str | None:
    """"safetensors", "pickle" (pytorch_model*.bin), "both", or None when there are no weight files."""
    safetensors = any(name.endswith(".safetensors") for name in names)
    pickle = any(fnmatch.fnmatchcase(name, "pytorch_model*.bin") for name in names)
    return {(True, True): "both", (True, False): "safetensors", (False, True): "pickle"}.get((safetensors, pickle))


def _shard_problem(directory: str, index: str, names: frozenset[str]) -> str | None:
    """What is wrong with the shards that the index file ``index`` lists, or None."""
    try:
        with open(os.path.join(directory, index), "rb") as file:
            shards = {s for s in json.load(file)["weight_map"].values() if isinstance(s, str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return f"{index} cannot be read ({type(error).__name__}: {error})"
    missing = sorted(s for s in shards if s not in names and not os.path.isfile(os.path.join(directory, s)))
    return f"missing shards: {', '.join(missing)}" if missing else None


def message(error: Exception) -> str:
    """A Problem's message for ``error``."""
    if isinstance(error, OSError):
        return f"cannot read {error.filename}: {error.strerror}" if error.filename else f"cannot read: {error}"
    return str(error)
