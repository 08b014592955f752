"""A registered model's checkpoint as preflight knows it: where its files are (as the load worker will
find them), its config.json and the tensors its safetensors headers declare. Metadata only."""

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property

from modelhub.discovery.gguf_header import GgufError
from modelhub.preflight import gguf_checkpoint, headers
from modelhub.preflight.plan import DTYPE_BYTES

# Where the weights of a Linear layer end up with bitsandbytes: every 2-D ``.weight`` except embeddings
# and the output head (transformers keeps those unquantized: ``get_keys_to_not_convert``).
EMBEDDING_MARKERS = ("embed", "wte", "wpe", "word_embeddings", "position_embeddings", "shared")
HEAD_MARKERS = ("lm_head", "embed_out", "output.weight")
# Checkpoints already summarised, by the identity of their config and weight files.
_checkpoints: dict[tuple, "Checkpoint"] = {}
_lock = threading.Lock()


class NoCheckpoint(Exception):
    """Why preflight cannot read the model (no local files, no config, damaged header): verdict unknown."""


@dataclass
class Checkpoint:
    directory: str
    source: str  # "cache_path" or "hub cache"
    config: dict
    files: list[str]
    shards: int = 0
    tensors: list = field(default_factory=list)  # headers.Tensor
    # A GGUF file (gguf_checkpoint.py): file, architecture, quantization ("Q4_K_M"), stored_bytes (its tensor
    # data), default_dtype (what transformers dequantizes it to). None for safetensors folders.
    gguf: dict | None = None

    @property
    def text_config(self) -> dict:
        """The language model's own config (multimodal configs nest it under ``text_config``)."""
        nested = self.config.get("text_config")
        return {**self.config, **nested} if isinstance(nested, dict) else self.config

    @cached_property
    def parameters(self) -> int:
        return sum(tensor.numel for tensor in self.tensors)

    @cached_property
    def stored_bytes(self) -> int:
        if self.gguf:
            return self.gguf["stored_bytes"]
        return sum(tensor.numel * DTYPE_BYTES.get(tensor.dtype, 4) for tensor in self.tensors)

    @cached_property
    def dtype(self) -> str | None:
        """The floating dtype holding most of the weights (what "no dtype" loads them as)."""
        if self.gguf:
            return self.gguf["default_dtype"]
        totals: dict[str, int] = {}
        for tensor in self.tensors:
            if tensor.dtype.startswith(("float", "bfloat")):
                totals[tensor.dtype] = totals.get(tensor.dtype, 0) + tensor.numel
        return max(totals, key=totals.get) if totals else self.config.get("torch_dtype") or self.config.get("dtype")

    @property
    def quantization(self) -> str | None:
        """A pre-quantized checkpoint's method (``quantization_config.quant_method``: gptq, awq, ...), or a
        GGUF file's type ("GGUF Q4_K_M")."""
        if self.gguf:
            return f"GGUF {self.gguf['quantization']}"
        method = (self.config.get("quantization_config") or {}).get("quant_method")
        return str(method) if method else None


def is_quantizable(tensor) -> bool:
    """A Linear layer's weight that bitsandbytes replaces (embeddings, norms, biases and the head stay)."""
    name = tensor.name
    return (len(tensor.shape) == 2 and name.endswith(".weight") and not any(m in name for m in EMBEDDING_MARKERS)
            and not any(m in name for m in HEAD_MARKERS))


def locate(cache_path: str | None, hf_path: str) -> tuple[str, str] | None:
    """Where the load worker will read the files (modelhub/loading/model_files.py ``resolve_model``): the
    registered cache_path (a folder, or a GGUF file), else the hub cache's snapshot (refs/main's, else the
    newest). No network."""
    if cache_path and os.path.isdir(cache_path):
        return cache_path, "cache_path"
    if cache_path and os.path.isfile(cache_path):
        return cache_path, "GGUF file"
    snapshot = _hub_snapshot(hf_path)
    return (snapshot, "hub cache") if snapshot else None


def _hub_snapshot(hf_path: str) -> str | None:
    from modelhub.discovery.scanner import primary_location

    if not hf_path or hf_path.count("/") > 1:
        return None
    repo = os.path.join(str(primary_location().root), "models--" + hf_path.replace("/", "--"))
    snapshots = os.path.join(repo, "snapshots")
    try:
        with open(os.path.join(repo, "refs", "main"), encoding="ascii") as ref:
            revision = ref.read().strip()
        if os.path.isdir(os.path.join(snapshots, revision)):
            return os.path.join(snapshots, revision)
    except OSError:
        pass
    try:
        revisions = [entry for entry in os.scandir(snapshots) if entry.is_dir()]
    except OSError:
        return None
    return max(revisions, key=lambda entry: entry.stat().st_mtime).path if revisions else None


def read(cache_path: str | None, hf_path: str) -> Checkpoint:
    """The checkpoint's metadata; raises :class:`NoCheckpoint` saying why it cannot be read."""
    found = locate(cache_path, hf_path)
    if found is None:
        where = f"at {cache_path}" if cache_path else "registered (no cache_path)"
        raise NoCheckpoint(f"No local files: nothing {where}, and {hf_path} is not in the hub cache. Download it "
                           "or register its folder; preflight reads the files' metadata, never the network.")
    directory, source = found
    if source == "GGUF file":
        return _read_gguf(directory)
    try:
        names = os.listdir(directory)
        config_path = os.path.join(directory, "config.json")
        files = headers.weight_files(directory, names)
        key = (directory, tuple(headers.identity(path) for path in (config_path, *files)))
    except FileNotFoundError as error:
        missing = os.path.basename(error.filename or "")
        if missing == "config.json":
            raise NoCheckpoint(f"{directory} has no config.json.") from None
        raise NoCheckpoint(f"A weights shard is missing: {missing} (incomplete download).") from None
    except (OSError, ValueError) as error:
        raise NoCheckpoint(f"{directory} cannot be read: {error}") from None
    if not files:
        raise NoCheckpoint(f"{directory} holds no safetensors weights: preflight reads sizes from safetensors "
                           "headers only.")
    checkpoint = _checkpoints.get(key)
    if checkpoint is None:
        checkpoint = _read_checkpoint(directory, source, config_path, files, names)
        with _lock:
            if len(_checkpoints) > 20_000:
                _checkpoints.clear()
            _checkpoints[key] = checkpoint
    return checkpoint


def _read_gguf(path: str) -> Checkpoint:
    try:
        return headers.cached(path, _gguf_checkpoint)
    except GgufError as error:
        raise NoCheckpoint(f"{error}.") from None
    except OSError as error:
        raise NoCheckpoint(f"{path} cannot be read: {error}") from None


def _gguf_checkpoint(path: str) -> Checkpoint:
    return Checkpoint(directory=os.path.dirname(path), source="GGUF file", files=[os.path.basename(path)], shards=1,
                      **gguf_checkpoint.describe(path))


def _read_checkpoint(directory, source, config_path, files, names) -> Checkpoint:
    try:
        config = headers.read_json(config_path)
    except (OSError, ValueError) as error:
        raise NoCheckpoint(f"{directory} has no readable config.json ({type(error).__name__}).") from None
    if not isinstance(config, dict):
        raise NoCheckpoint(f"{directory}/config.json is not a JSON object.")
    checkpoint = Checkpoint(directory=directory, source=source, config=config, files=sorted(names), shards=len(files))
    try:
        for path in files:
            checkpoint.tensors.extend(headers.tensors(path))
    except (OSError, ValueError) as error:
        raise NoCheckpoint(f"A weights file cannot be read: {error}") from None
    return checkpoint
