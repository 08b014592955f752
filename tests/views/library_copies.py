"""A model whose copies are spread over the HF cache, LM Studio, Ollama and text-generation-webui, recorded
as discovery records them (model_copy rows with their library, root, the tool's label, GGUF facts and
aliases), for the pages' tests. The trees are real directories holding the files the rows name; the
GGUF files' contents do not matter to the pages (discovery's own tests read real ones)."""

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from modelhub.extensions import db
from modelhub import registry
from modelhub.models import ModelCopy

NAME = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
GGUF_ONLY = "HuggingFaceTB/SmolLM-135M-Instruct"
OLLAMA_DIGEST = "sha256:" + "5f" * 32
MIB = 2**20


@dataclass
class Libraries:
    """The roots, as a user's machine has them."""

    hub: Path
    lmstudio: Path
    ollama: Path
    textgen: Path
    folder: Path
    copies: dict[str, list[dict]] = field(default_factory=dict)  # model name -> its copies' columns


def build(base: Path, llama: Path | None = None) -> Libraries:
    """The four libraries and a secondary folder under ``base``; ``llama``: a real model folder to put in
    the HF cache snapshot and the secondary folder (so that those copies load), else stand-in files."""
    libraries = Libraries(base / "hf" / "hub", base / ".lmstudio" / "models", base / ".ollama" / "models",
                          base / "text-generation-webui" / "user_data" / "models", base / "disk2")
    snapshot = libraries.hub / "models--TinyLlama--TinyLlama-1.1B-Chat-v1.0" / "snapshots" / ("a1" * 20)
    folder = libraries.folder / "TinyLlama-1.1B-Chat-v1.0"
    for directory in (snapshot, folder):
        if llama is not None:
            shutil.copytree(llama, directory)
        else:
            directory.mkdir(parents=True)
            (directory / "config.json").write_text('{"model_type": "llama"}')
    repo = libraries.lmstudio / "TheBloke" / "TinyLlama-1.1B-Chat-v1.0-GGUF"
    q4, q8 = repo / "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf", repo / "tinyllama-1.1b-chat-v1.0.Q8_0.gguf"
    blob = libraries.ollama / "blobs" / f"sha256-{OLLAMA_DIGEST.removeprefix('sha256:')}"
    smol = libraries.lmstudio / "HuggingFaceTB" / "SmolLM-135M-Instruct-GGUF" / "smollm-135m-instruct.Q8_0.gguf"
    linked = libraries.textgen / q4.name  # a hard link to LM Studio's file: the same copy, seen twice
    for path in (q4, q8, blob, smol):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"GGUF\x03\x00\x00\x00")
    linked.parent.mkdir(parents=True)
    linked.hardlink_to(q4)
    gone = libraries.textgen / "tinyllama-1.1b-chat-v1.0.Q5_K_M.gguf"  # recorded, then deleted by the user

    gguf = {"weight_format": "gguf", "architecture": "llama", "model_type": "llama",
            "parameter_count": 1_100_048_384, "context_length": 2048}
    lmstudio = {"location": "secondary", "library": "lmstudio", "library_root": str(libraries.lmstudio)}
    libraries.copies[NAME] = [
        {"location": "primary", "library": "huggingface", "library_root": str(libraries.hub), "path": str(snapshot),
         "revision": "a1" * 20, "size_bytes": 2200 * MIB, "weight_format": "safetensors", "architecture":
         "LlamaForCausalLM", "model_type": "llama"},
        {**lmstudio, **gguf, "path": str(q4), "label": f"TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/{q4.name}",
         "size_bytes": 638 * MIB, "quantization": "GGUF Q4_K_M",
         "aliases": [{"path": str(linked), "library": "text-generation-webui"}]},
        {**lmstudio, **gguf, "path": str(q8), "label": f"TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/{q8.name}",
         "size_bytes": 1117 * MIB, "quantization": "GGUF Q8_0"},
        {**gguf, "location": "secondary", "library": "ollama", "library_root": str(libraries.ollama),
         "path": str(blob), "label": "tinyllama:latest, tinyllama:1.1b", "digest": OLLAMA_DIGEST,
         "size_bytes": 608 * MIB, "quantization": "GGUF Q4_0"},
        {**gguf, "location": "secondary", "library": "text-generation-webui", "library_root": str(libraries.textgen),
         "path": str(gone), "label": gone.name, "size_bytes": 745 * MIB, "quantization": "GGUF Q5_K_M",
         "missing": True, "last_seen_at": datetime(2026, 11, 20, tzinfo=timezone.utc)},
        {"location": "secondary", "library": "folder", "library_root": str(libraries.folder), "path": str(folder),
         "size_bytes": 2200 * MIB, "weight_format": "safetensors", "architecture": "LlamaForCausalLM",
         "model_type": "llama"},
    ]
    libraries.copies[GGUF_ONLY] = [
        {**lmstudio, "path": str(smol), "label": f"HuggingFaceTB/SmolLM-135M-Instruct-GGUF/{smol.name}",
         "size_bytes": 138 * MIB, "weight_format": "gguf", "quantization": "GGUF Q8_0", "architecture": "llama",
         "model_type": "llama", "parameter_count": 134_515_008, "context_length": 2048},
    ]
    return libraries


def record(libraries: Libraries) -> dict[str, list[int]]:
    """Register the models and their copies (needs an app context; the model's cache_path is its first
    copy, as a scan sets it). Returns each model's copy ids, in the order of ``libraries.copies``."""
    ids = {}
    for name, copies in libraries.copies.items():
        first = copies[0]
        model = registry.create_model({"model_name": name, "cache_location": first["location"],
                                       "cache_path": first["path"], "quantization": first.get("quantization")})
        seen = datetime.now(timezone.utc) - timedelta(hours=1)
        rows = [ModelCopy(model_id=model.id, **{"first_seen_at": seen, "last_seen_at": seen, **copy}) for copy in copies]
        db.session.add_all(rows)
        db.session.flush()
        ids[name] = [row.id for row in rows]
    db.session.commit()
    return ids
