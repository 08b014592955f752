"""Reading a checkpoint's metadata without its weights: safetensors headers, the shard index, config.json.

A safetensors file starts with an 8-byte little-endian header length, then a JSON header naming every
tensor's dtype, shape and byte offsets; the weights follow and are never read here. Parsed files are
cached in this process by their identity (path, size, mtime_ns): a file replaced by a new download has
a new identity and is read again, and a page of 1,000 cards costs one ``stat`` per file.
"""

import json
import os
import struct
import threading
from dataclasses import dataclass

from modelhub.preflight.plan import SAFETENSORS_DTYPES

MAX_HEADER_BYTES = 100 * 2**20  # the format's own limit; a larger length means a damaged file
INDEX = "model.safetensors.index.json"
_cache: dict[tuple, object] = {}
_lock = threading.Lock()


class DamagedHeader(ValueError):
    """A safetensors file whose header cannot be read (truncated, not JSON, impossible length)."""


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # torch's name: float32, bfloat16, int32, ...
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


def identity(path: str) -> tuple:
    """What tells a file from its replacement: path, size, modification time."""
    status = os.stat(path)
    return (path, status.st_size, status.st_mtime_ns)


def cached(path: str, read):
    """``read(path)``, remembered until the file changes."""
    key = (read.__name__, *identity(path))
    found = _cache.get(key)
    if found is None:
        found = read(path)
        with _lock:
            if len(_cache) > 50_000:  # a long-running server that saw many files: start over
                _cache.clear()
            _cache[key] = found
    return found


def _parse_header(path: str) -> tuple[Tensor, ...]:
    with open(path, "rb") as handle:
        start = handle.read(8)
        if len(start) != 8:
            raise DamagedHeader(f"{os.path.basename(path)} is shorter than a safetensors header")
        (length,) = struct.unpack("<Q", start)
        if length > MAX_HEADER_BYTES:
            raise DamagedHeader(f"{os.path.basename(path)} declares a {length}-byte header (damaged file)")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except ValueError:
        raise DamagedHeader(f"{os.path.basename(path)} has a header that is not JSON (damaged file)") from None
    tensors = []
    for name, entry in header.items():
        if name == "__metadata__" or not isinstance(entry, dict):
            continue
        dtype = SAFETENSORS_DTYPES.get(entry.get("dtype"), str(entry.get("dtype")).lower())
        tensors.append(Tensor(name, dtype, tuple(int(size) for size in entry.get("shape", ()))))
    return tuple(tensors)


def tensors(path: str) -> tuple[Tensor, ...]:
    """Every tensor a safetensors file holds (name, dtype, shape), from its header alone."""
    return cached(str(path), _parse_header)


def _read_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_json(path: str):
    """A JSON file (config.json, the shard index), cached like the headers. Raises OSError/ValueError."""
    return cached(str(path), _read_json)


def weight_files(directory: str, names: list[str] | None = None) -> list[str]:
    """The safetensors files of a checkpoint: the shards its index names, else every ``*.safetensors``."""
    if names is None:
        names = os.listdir(directory)
    if INDEX in names:
        index = read_json(os.path.join(directory, INDEX))
        shards = sorted(set((index.get("weight_map") or {}).values())) if isinstance(index, dict) else []
        if shards:
            return [os.path.join(directory, shard) for shard in shards]
    return [os.path.join(directory, name) for name in sorted(names) if name.endswith(".safetensors")]


def clear_cache() -> None:
    with _lock:
        _cache.clear()
