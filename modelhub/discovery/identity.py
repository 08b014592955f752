"""Which GGUF copies are the same file, or the same bytes.

- The same file reached through several paths (a symlink, a hard link: the same device and inode) is
  ONE copy; the other paths become its ``aliases``.
- A file's identity across scans is its ``file_key``, "dev:ino:size:mtime_ns": while it is unchanged,
  what was read from it before (its header's facts, its digest) is reused and the file is not opened.
- A copy's digest ("sha256:<hex>") is free for an Ollama blob and a hub-cache blob (their names are the
  sha256 of their bytes). Any other GGUF file is hashed only when another GGUF copy of exactly the same
  size exists (in this scan or in the registry): only then could it be the same model under another
  name. A digest stored for the same file_key is reused, never computed again.
"""

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field

from modelhub.discovery.types import FoundModel

SHA256_NAME = re.compile(r"^(?:sha256[-:])?([0-9a-f]{64})$")
SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)  # llama.cpp's gguf-split names
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class KnownFile:
    """What the registry recorded about one version of a GGUF file (its copy row)."""

    architecture: str | None = None
    model_type: str | None = None
    quantization: str | None = None
    parameter_count: int | None = None
    context_length: int | None = None
    digest: str | None = None


@dataclass
class KnownFiles:
    """The registry's GGUF copies, as a scan needs them: facts by file_key, and which sizes are taken."""

    by_key: dict[str, KnownFile] = field(default_factory=dict)
    sizes: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))  # size -> file_keys

    def add(self, file_key: str, size: int, known: KnownFile) -> None:
        self.by_key.setdefault(file_key, known)
        self.sizes[size].add(file_key)


def file_key(info: os.stat_result, size: int | None = None, mtime_ns: int | None = None) -> str:
    """"dev:ino:size:mtime_ns" of a file's stat (a split GGUF: its first part's, with the parts' total
    size and newest mtime, so that a change to any part is a new version)."""
    size = info.st_size if size is None else size
    mtime_ns = info.st_mtime_ns if mtime_ns is None else mtime_ns
    return f"{info.st_dev}:{info.st_ino}:{size}:{mtime_ns}"


def same_file(key: str) -> str:
    """The "dev:ino" part of a file_key: equal for every path to one file."""
    return ":".join(key.split(":", 2)[:2])


def digest_from_name(path: str) -> str | None:
    """"sha256:<hex>" when the file ``path`` leads to is named by its sha256: an Ollama blob
    (``blobs/sha256-<hex>``) or a hub-cache blob (``models--*/blobs/<hex>`` of an LFS file)."""
    real = os.path.realpath(path)
    parent = os.path.dirname(real)
    if os.path.basename(parent) != "blobs":
        return None
    match = SHA256_NAME.match(os.path.basename(real))
    return f"sha256:{match.group(1)}" if match else None


def merge_same_files(found: list[FoundModel]) -> list[FoundModel]:
    """One copy per file: a GGUF copy whose file was already reported through another path is folded
    into the first (in scan order) as an alias. The digest travels with the file (an Ollama blob's
    name gives it to an LM Studio hard link of it)."""
    first_of: dict[str, FoundModel] = {}
    kept = []
    for copy in found:
        if copy.file_key is None:
            kept.append(copy)
            continue
        first = first_of.get(same_file(copy.file_key))
        if first is None:
            first_of[same_file(copy.file_key)] = copy
            kept.append(copy)
            continue
        alias = {"path": copy.path, "library": copy.library}
        if copy.label:
            alias["label"] = copy.label
        first.aliases = [*(first.aliases or []), alias]
        first.digest = first.digest or copy.digest
    return kept


def assign_digests(found: list[FoundModel], known: KnownFiles) -> None:
    """Give each GGUF copy the digest it already has a right to (a stored one for its file_key), and
    hash the ones whose size another GGUF copy shares. Split files are named, never hashed."""
    sizes: dict[int, set[str]] = defaultdict(set)
    for copy in _gguf(found):
        sizes[copy.size_bytes].add(copy.file_key)
        if copy.digest is None and (stored := known.by_key.get(copy.file_key)) is not None:
            copy.digest = stored.digest
    for copy in _gguf(found):
        if copy.digest is not None or SPLIT_PART.search(copy.path):
            continue
        others = (sizes[copy.size_bytes] | known.sizes.get(copy.size_bytes, set())) - {copy.file_key}
        if others:
            copy.digest = sha256_of(copy.path)


def sha256_of(path: str) -> str:
    """"sha256:<hex>" of the file's bytes, read in 1 MiB chunks (never written to)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _gguf(found: list[FoundModel]):
    return (copy for copy in found if copy.file_key is not None and copy.weight_format == "gguf")
