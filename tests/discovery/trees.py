"""Build model trees on disk for the discovery tests and benchmark: a Hugging Face hub cache laid out
exactly as huggingface_hub's downloads leave it, and plain model folders.

The hub layout, as ``hf_hub_download`` writes it::

    <cache>/models--org--name/
        blobs/<etag>                      the bytes; etag = sha256 for LFS files, git blob sha1 otherwise
        snapshots/<40-hex revision>/<file> -> ../../blobs/<etag>   (a RELATIVE symlink)
        refs/main                         the revision, no trailing newline
    <cache>/.locks/models--org--name/     lock files of downloads in progress
"""

import hashlib
import os
import shutil
from pathlib import Path

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def read_files(directory: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file under ``directory`` (e.g. a tiny model's folder)."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def etag(name: str, content: bytes) -> str:
    """The blob name the hub gives a file: sha256 of an LFS file, git's blob sha1 of any other."""
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def revision_hash(seed: str) -> str:
    """A 40-hex commit hash, stable for ``seed``."""
    return hashlib.sha1(seed.encode()).hexdigest()


def repo_folder(repo_id: str, repo_type: str = "model") -> str:
    """``org/name`` -> ``models--org--name`` (huggingface_hub's repo_folder_name)."""
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


def add_hub_repo(cache: Path, repo_id: str, files: dict[str, bytes], revision: str | None = None,
                 ref: str | None = "main", repo_type: str = "model") -> Path:
    """Add one revision of a repo to the hub cache at ``cache`` (blobs shared with the repo's other
    revisions by content); point ``refs/<ref>`` at it unless ``ref`` is None. Returns the snapshot folder."""
    revision = revision or revision_hash(f"{repo_type}:{repo_id}")
    repo = cache / repo_folder(repo_id, repo_type)
    snapshot = repo / "snapshots" / revision
    for name, content in files.items():
        blob = repo / "blobs" / etag(name, content)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(content)
        pointer = snapshot / name
        pointer.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    snapshot.mkdir(parents=True, exist_ok=True)
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(revision)
    (cache / ".locks" / repo.name).mkdir(parents=True, exist_ok=True)
    return snapshot


def blob_of(snapshot: Path, name: str) -> Path:
    """The blob a snapshot file points to."""
    pointer = snapshot / name
    return (pointer.parent / os.readlink(pointer)).resolve()


def add_plain(root: Path, relative: str, files: dict[str, bytes]) -> Path:
    """Write ``files`` into ``root/relative`` (a model folder as save_pretrained or a copy leaves it)."""
    folder = root / relative
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def copy_plain(root: Path, relative: str, source: Path) -> Path:
    """Copy the model folder ``source`` to ``root/relative``."""
    return Path(shutil.copytree(source, root / relative))


def folder_size(directory: Path) -> int:
    """Bytes of the files under ``directory``."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
