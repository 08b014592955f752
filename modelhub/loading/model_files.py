"""Where the worker finds the model's files: the copy the supervisor sent (``cache_path``: the copy asked
for, else the model's primary one), else the local hub cache's snapshot, else the hub id (from_pretrained
then decides). Runs in the worker; reads the folder's listing and config.json only."""

import json
from pathlib import Path

from modelhub.loading.types import ModelInfo


def resolve_model(request: dict) -> ModelInfo:
    """The model as the plugins see it (``ModelInfo``), from the worker's request."""
    location = request.get("cache_path") or _cached_snapshot(request["hf_path"]) or request["hf_path"]
    info = ModelInfo(name=request["model_name"], hf_path=request["hf_path"], location=location)
    directory = Path(location)
    if directory.is_dir():
        info.files = sorted(p.name for p in directory.iterdir())
        try:
            info.config = json.loads((directory / "config.json").read_text())
        except (OSError, ValueError):
            info.config = {}
    return info


def loaded_path(info: ModelInfo) -> str | None:
    """The copy a run loaded, as its record names it: a folder (or file) on this disk, or None when the
    files came from the hub by id."""
    return info.location if Path(info.location).exists() else None


def _cached_snapshot(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the local cache (or not a hub id): from_pretrained decides
        return None
