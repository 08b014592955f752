"""Listing a root's candidates before any is read (so that progress knows its total), by its layout:

- the hub cache, a secondary root, LM Studio's models folder: hub-cache repos (``models--org--name/``),
  and model folders ``root/org/name`` (``org/name``) or ``root/name`` (``name``), never deeper; a model
  folder holds a config.json or GGUF files (LM Studio's ``<publisher>/<repo>/*.gguf``). A GGUF file loose
  at the root is a model of its own, named from the file;
- text-generation-webui's models folder: model folders ``models/<name>/config.json`` (named by the
  folder), and GGUF files loose in it or in a subfolder (named from the file, without its quantization);
- Ollama's store: the blobs its manifests name (modelhub/discovery/ollama.py).

Hidden folders and other hub repo types are skipped. Whatever cannot be listed is a Problem for its
path, and the listing goes on.
"""

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from modelhub.discovery import cache_tree, gguf_copies, ollama
from modelhub.discovery.cache_tree import CONFIG
from modelhub.discovery.libraries import OLLAMA, TEXTGEN, missing_root_message
from modelhub.discovery.types import Location, Problem


@dataclass
class ModelFolder:
    path: str
    hf_path: str
    gguf_named_by_file: bool = False  # text-generation-webui: its GGUF files name their own models


@dataclass
class Plan:
    """A root's candidates: hub-cache repos, model folders, single GGUF files (and Ollama blobs)."""

    location: Location
    hub_dirs: list[str] = field(default_factory=list)  # models--* folder names
    folders: list[ModelFolder] = field(default_factory=list)
    files: list[gguf_copies.GgufCandidate] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.hub_dirs) + len(self.folders) + len(self.files)


def root(location: Location) -> Path:
    return Path(os.path.expanduser(location.root))


def plan(location: Location, problems: list[Problem]) -> Plan:
    """List a root as its layout says. A root that does not exist is a problem only when configured."""
    result = Plan(location)
    try:
        entries = sorted_entries(root(location))
    except OSError as error:
        if location.configured or not isinstance(error, FileNotFoundError):
            problems.append(Problem(str(location.root), _root_message(location, error)))
        return result
    if location.library == OLLAMA:
        result.files = ollama.plan(str(location.root), problems)
    elif location.library == TEXTGEN:
        _plan_textgen(entries, result, problems)
    else:
        for entry in entries:
            if entry.name.startswith(cache_tree.MODEL_PREFIX):
                result.hub_dirs.append(entry.name)
            elif not _skipped(entry):
                _plan_entry(entry, None, result, problems)
        _add_loose(str(location.root), entries, "", result)
    return result


def sorted_entries(path: str | Path) -> list[os.DirEntry]:
    with os.scandir(path) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _skipped(entry: os.DirEntry) -> bool:
    """Hidden folders, other hub repo types (datasets, spaces...) and a shared blob store."""
    return entry.name.startswith((".", *cache_tree.HUB_PREFIXES)) or cache_tree.is_shared_blob_store(entry.path)


def _plan_entry(entry: os.DirEntry, org: str | None, result: Plan, problems: list[Problem]) -> None:
    """``root/name`` (org None) or ``root/org/name``: a model folder, an org folder to look into, a loose
    GGUF file, or nothing."""
    if not _is_dir(entry):
        if entry.is_symlink() and (reason := _dangling(entry.path)):
            problems.append(Problem(entry.path, reason))
        return  # a GGUF file loose at the root: see _add_loose
    try:
        os.lstat(os.path.join(entry.path, CONFIG))  # lstat: a config.json that is a broken symlink counts
    except FileNotFoundError:
        _plan_without_config(entry, org, result, problems)
        return
    except OSError as error:  # e.g. a folder we may not enter
        problems.append(Problem(entry.path, f"cannot read folder: {error.strerror}"))
        return
    result.folders.append(ModelFolder(entry.path, f"{org}/{entry.name}" if org else entry.name))


def _plan_without_config(entry: os.DirEntry, org: str | None, result: Plan, problems: list[Problem]) -> None:
    """A folder without config.json: a model folder if it holds GGUF files, else (at the first level)
    an org folder whose folders are looked into."""
    try:
        children = sorted_entries(entry.path)
    except OSError as error:
        problems.append(Problem(entry.path, cache_tree.message(error)))
        return
    if any(_is_model_file(child.name) for child in children):
        result.folders.append(ModelFolder(entry.path, f"{org}/{entry.name}" if org else entry.name))
    elif org is None:
        for child in children:
            if not child.name.startswith("."):
                _plan_entry(child, entry.name, result, problems)


def _plan_textgen(entries: list[os.DirEntry], result: Plan, problems: list[Problem]) -> None:
    _add_loose(str(result.location.root), entries, "", result)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if not _is_dir(entry):
            if entry.is_symlink() and (reason := _dangling(entry.path)):
                problems.append(Problem(entry.path, reason))
            continue
        try:
            children = sorted_entries(entry.path)
        except OSError as error:
            problems.append(Problem(entry.path, cache_tree.message(error)))
            continue
        if any(child.name == CONFIG for child in children):
            result.folders.append(ModelFolder(entry.path, entry.name, gguf_named_by_file=True))
            continue
        _add_loose(entry.path, children, entry.name, result)


def _add_loose(folder: str, entries: list[os.DirEntry], label_prefix: str, result: Plan) -> None:
    """GGUF files on their own in ``folder``: each model named from its file (split parts: one copy)."""
    names = [entry.name for entry in entries if _is_model_file(entry.name) and not _is_dir(entry)]
    result.files += gguf_copies.candidates(folder, names, None, label_prefix or None)


def _is_model_file(name: str) -> bool:
    return gguf_copies.is_gguf_name(name) and not gguf_copies.is_projector_name(name)


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
        return missing_root_message(location)
    if isinstance(error, NotADirectoryError):
        return "not a folder"
    return f"cannot read folder: {error.strerror}"

