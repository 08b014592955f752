"""What a scan finds: plain data shared by the scanner and the registry sync."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Location:
    """A root to scan: the Hugging Face hub cache (primary) or an extra folder (secondary), which may be
    another tool's library (``library``: see modelhub/discovery/libraries.py)."""

    kind: str  # "primary" | "secondary"
    root: Path
    library: str = "folder"  # "huggingface" | "folder" | "lmstudio" | "ollama" | "text-generation-webui"
    configured: bool = True  # False for a tool's default place: absent, it is no problem (no such tool here)


@dataclass
class FoundModel:
    """One copy of a model on disk."""

    hf_path: str  # "org/name" (or "name")
    location: str  # "primary" | "secondary" | "custom"
    path: str  # the directory holding config.json (for the hub layout: the snapshot directory)
    revision: str | None = None  # the commit hash of a hub-cache snapshot
    size_bytes: int = 0  # bytes on disk of this copy (hub layout: the blobs its files point to)
    weight_format: str | None = None  # "safetensors" | "pickle" | "both" | None (no weights)
    architecture: str | None = None  # config.json "architectures"[0]
    model_type: str | None = None  # config.json "model_type"
    quantization: str | None = None  # "GPTQ" | "AWQ" | "bitsandbytes 4-bit" | ... from quantization_config
    incomplete: bool = False
    incomplete_reason: str | None = None  # e.g. "no weight files", "missing shards: model-00002-of-00003.safetensors"
    library: str | None = None  # the Location's library (or "custom")
    library_root: str | None = None  # the Location's root, as given
    label: str | None = None  # the tool's own name for this copy ("llama3:8b"; LM Studio: "publisher/repo/file.gguf")
    digest: str | None = None  # "sha256:<hex>" of a GGUF file, when known (see modelhub/discovery/identity.py)
    file_key: str | None = None  # "dev:ino:size:mtime_ns" of a GGUF file: the version its facts were read from
    parameter_count: int | None = None
    context_length: int | None = None
    aliases: list[dict] | None = None  # other paths of the same file: [{"path": ..., "library": ...}]


@dataclass
class Problem:
    """Something the scan could not read; reported for that folder, and the scan went on."""

    path: str
    message: str


@dataclass
class ScanReport:
    found: list[FoundModel] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    roots: list[Location] = field(default_factory=list)


ProgressCallback = Callable[[int, int], None]  # (folders done, folders in total)
