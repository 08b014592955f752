"""What the search knows about the model and this host before any try, read in the web process (no
torch): the model's config.json and files, and this host's facts as its last worker described them."""

import json
from pathlib import Path

from sqlalchemy import select

from modelhub import environments
from modelhub.discovery.gguf_header import is_gguf
from modelhub.extensions import db
from modelhub.loading.model_files import gguf_facts
from modelhub.loading.types import LoadRefused, ModelInfo
from modelhub.models import Environment, LoadAttempt, ModelRegistry


def model_info(model: ModelRegistry) -> ModelInfo:
    """The model as plugins see it; its config.json and file names when its folder is on this host."""
    location = model.cache_path or model.hf_path
    info = ModelInfo(name=model.model_name, hf_path=model.hf_path, location=location)
    folder = Path(location) if model.cache_path else None
    if folder is not None and folder.is_file() and is_gguf(folder):  # a GGUF copy: its header, as the worker reads it
        try:
            info.gguf = gguf_facts(folder)
        except LoadRefused:
            return info  # damaged: the try says so
        info.location, info.files = str(folder.parent), [folder.name]
    elif folder is not None and folder.is_dir():
        info.files = sorted(path.name for path in folder.iterdir())
        try:
            config = json.loads((folder / "config.json").read_text())
            info.config = config if isinstance(config, dict) else {}
        except (OSError, ValueError):
            info.config = {}
    return info


def environment_facts(app) -> dict:
    """This host's environment: the facts of its current fingerprint, under what the newest worker on
    this host reported (its GPUs, bf16 support, installed packages), which is richer."""
    current = environments.current_id(app)
    facts = dict(db.session.scalar(select(Environment.facts).where(Environment.id == current)) or {})
    this_host = select(Environment.id).where(Environment.host == environments.host_name(app.config))
    reported = db.session.scalar(
        select(LoadAttempt.environment).where(LoadAttempt.environment_id.in_(this_host),
                                              LoadAttempt.environment.is_not(None))
        .order_by(LoadAttempt.id.desc()).limit(1))
    if isinstance(reported, dict):
        facts.update(reported)
    # This server's own limits, which its workers run under (the budgets a proposal sets must fit them).
    facts["modelhub"] = {"memory_limit_bytes": app.config.get("MODELHUB_WORKER_MEMORY_LIMIT")}
    return facts
