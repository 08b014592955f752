"""Where the worker finds the model's files: the copy the supervisor sent (``cache_path``: the copy asked
for, else the model's primary one), else the local hub cache's snapshot, else the hub id (from_pretrained
then decides). Runs in the worker; reads a folder's listing and config.json, or a GGUF file's header
(a GGUF copy's path is the file itself: LM Studio's ``model.Q4_K_M.gguf``, or an Ollama blob
``blobs/sha256-<hex>`` without any suffix)."""

import json
from pathlib import Path

from modelhub.discovery.gguf_header import GgufError, is_gguf, read_facts
from modelhub.gguf_support import model_type, unsupported_reason
from modelhub.loading.types import LoadRefused, ModelInfo


def resolve_model(request: dict) -> ModelInfo:
    """The model as the plugins see it (``ModelInfo``), from the worker's request."""
    location = request.get("cache_path") or _cached_snapshot(request["hf_path"]) or request["hf_path"]
    info = ModelInfo(name=request["model_name"], hf_path=request["hf_path"], location=location)
    path = Path(location)
    if path.is_dir() and not (path / "config.json").exists():
        path = _only_gguf(path)
    if path.is_file() and is_gguf(path):
        info.location, info.files, info.gguf = str(path.parent), [path.name], gguf_facts(path)
    elif path.is_dir():
        info.files = sorted(p.name for p in path.iterdir())
        try:
            info.config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError):
            info.config = {}
    return info


def _only_gguf(folder: Path) -> Path:
    """A folder of GGUF files without config.json (registered as such): its one GGUF file; with several, the
    load must say which (each is a copy of its own)."""
    files = sorted(entry for entry in folder.iterdir() if entry.suffix == ".gguf" and is_gguf(entry))
    if len(files) > 1:
        raise LoadRefused(f"{folder} holds {len(files)} GGUF files ({', '.join(entry.name for entry in files)}) and no "
                          "config.json: load one of them by its copy_id (GET /api/models/{name}/copies).",
                          kind="refused")
    return files[0] if files else folder


def gguf_facts(path: Path) -> dict:
    """A GGUF file's header as plain data for the plugins (``ModelInfo.gguf``): its architecture also as
    the transformers model_type that verdict.preflight checks, and why transformers cannot load it, if so
    (``unsupported``: the gguf plugin refuses the load with it)."""
    try:
        facts = read_facts(path)
    except GgufError as error:
        raise LoadRefused(f"{error}: the copy cannot be loaded (a damaged or partial download?).", kind="files") from None
    return {"file": str(path), "architecture": facts.architecture, "model_type": model_type(facts.architecture, facts.name),
            "quantization": facts.quant_label, "tensor_types": sorted(facts.tensor_types),
            "parameter_count": facts.parameter_count, "context_length": facts.context_length,
            "unsupported": unsupported_reason(facts)}


def loaded_path(info: ModelInfo) -> str | None:
    """The copy a run loaded, as its record names it: a folder or a GGUF file on this disk, or None when
    the files came from the hub by id."""
    if info.gguf:
        return info.gguf["file"]
    return info.location if Path(info.location).exists() else None


def _cached_snapshot(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the local cache (or not a hub id): from_pretrained decides
        return None
