"""What a GGUF file says about its model, read from its header alone (never its tensors), in pure Python.

The header is a magic, a version, metadata key/value pairs, then one entry per tensor (name, dimensions, ggml
type, offset); the tensor data follows at the next alignment boundary. Most of its bytes are the vocabulary:
``tokenizer.ggml.tokens`` and ``tokenizer.ggml.merges`` hold 100k-300k length-prefixed strings each, nothing
discovery needs, and walking them costs tens of milliseconds (their length prefixes can only be read in turn).
So a big string array is first skipped by guessing where it ends (the next key's name, found by a search in C)
and the guess is kept only if everything after it parses and the tensors it describes end exactly where the
file does; otherwise the array is walked. A file with a corrupt header raises GgufError: every count and
length is checked against the bytes left before anything is read or allocated for it."""

import mmap
import os
import struct
from collections import Counter
from dataclasses import dataclass, field

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # version 1 (2023) counted in 32 bits; llama.cpp itself no longer reads it
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS

# ggml's tensor types (enum ggml_type): id -> (name, elements per block, bytes per block)
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}
# general.file_type (llama.cpp's enum llama_ftype) -> the name llama.cpp and every GGUF file name use
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}

# metadata value types: id -> (struct code, width); 8 (string) and 9 (array) are not fixed-size
_SCALARS = {0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4), 6: ("f", 4),
            7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8)}
_STRING, _ARRAY = 8, 9
_BIG_ARRAY = 4096  # string arrays this long are skipped by a guess first (see the module docstring)
# Where a guessed end may lie past the shortest possible array (8 bytes a string): up to 64 bytes a string.
_GUESS_WINDOW = 64


class GgufError(Exception):
    """The file is not a GGUF file, or its header is truncated, corrupt or unreadable."""


@dataclass
class GgufFacts:
    """What the header says. Shapes are in the file's (ggml) order: the fastest-moving dimension first."""

    architecture: str | None  # general.architecture: "llama", "qwen2", ...
    name: str | None  # general.name
    file_type: int | None  # general.file_type (llama_ftype)
    quant_label: str | None  # "Q4_K_M", "Q8_0", "F16", ...
    parameter_count: int  # elements of every tensor together
    context_length: int | None  # {architecture}.context_length
    tensor_types: set[str]  # the ggml types of its tensors
    general_type: str | None  # general.type: "model", "mmproj", "adapter", ...
    tensors: list[tuple[str, tuple[int, ...], str]]  # (name, shape, ggml type name)
    version: int = 3
    metadata: dict = field(default_factory=dict)  # every scalar key (arrays are left out)


def is_gguf(path) -> bool:
    """Whether the file at ``path`` starts with the GGUF magic (False if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == MAGIC
    except OSError:
        return False


def read_facts(path) -> GgufFacts:
    """Read the header of the GGUF file at ``path``; GgufError says why a file is not a readable GGUF."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 24:
                start = handle.read(4)
                raise GgufError(_not_gguf(path, start) if start != MAGIC
                                else f"{path} is truncated: {size} bytes, less than a GGUF header")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _Header(data, size, os.fspath(path)).read()
    except OSError as error:
        raise GgufError(f"{path} cannot be read: {error.strerror or error}") from error


def _not_gguf(path, start: bytes) -> str:
    return f"{path} is not a GGUF file (it starts with {start[:4]!r}, not {MAGIC!r})"


class _Mismatch(Exception):
    """A guessed end of a string array was wrong."""


class _Header:
    def __init__(self, data, size: int, path: str):
        self.data, self.size, self.path = data, size, path

    def read(self) -> GgufFacts:
        data = self.data
        if data[:4] != MAGIC:
            raise GgufError(_not_gguf(self.path, data[:4]))
        version = struct.unpack_from("<I", data, 4)[0]
        self.order = "<"
        if version not in VERSIONS and struct.unpack_from(">I", data, 4)[0] in VERSIONS:
            self.order, version = ">", struct.unpack_from(">I", data, 4)[0]  # written on a big-endian machine
        if version not in VERSIONS:
            raise GgufError(f"{self.path} is GGUF version {version}; versions 2 and 3 can be read")
        self.version = version
        self.u32, self.u64 = struct.Struct(self.order + "I"), struct.Struct(self.order + "Q")
        tensor_count, kv_count = struct.unpack_from(self.order + "QQ", data, 8)
        # each key/value takes at least 13 bytes, each tensor entry 33: a count the file cannot hold is corrupt
        self._check_count(kv_count, 13, 24, "metadata entries")
        self._check_count(tensor_count, 33, 24, "tensors")
        self.tensor_count, self.kv_count = tensor_count, kv_count
        try:
            return self._read_from(24, 0, {}, guessed=False)
        except (struct.error, OverflowError) as error:  # a read past the end of the file (or of any file)
            raise GgufError(f"{self.path} is truncated or corrupt: its header runs past the end ({error})") from None

    def _check_count(self, count: int, least_bytes: int, position: int, what: str) -> None:
        if count * least_bytes > self.size - position:
            raise GgufError(f"{self.path} is truncated or corrupt: its header claims {count} {what}, more than its "
                            f"{self.size} bytes can hold")

    def _read_from(self, position: int, index: int, metadata: dict, guessed: bool) -> GgufFacts:
        """Read metadata entries ``index``.. from ``position``, then the tensor entries. ``guessed``: an array's
        end was guessed on the way here, so any inconsistency means the guess was wrong (_Mismatch)."""
        while index < self.kv_count:
            key, position = self._string(position)
            value_type = self.u32.unpack_from(self.data, position)[0]
            position += 4
            if value_type == _ARRAY:
                element_type, count = struct.unpack_from(self.order + "IQ", self.data, position)
                position += 12
                if element_type == _STRING and count >= _BIG_ARRAY and index + 1 < self.kv_count:
                    self._check_count(count, 8, position, f"values in {key!r}")
                    for end in self._guessed_ends(position, count, key):
                        try:
                            return self._read_from(end, index + 1, dict(metadata), guessed=True)
                        except (_Mismatch, GgufError, struct.error, OverflowError, UnicodeDecodeError):
                            pass  # not there: walk it
                position = self._skip_array(position, element_type, count, key)
            else:
                metadata[key], position = self._value(position, value_type, key)
            index += 1
        return self._facts(position, metadata, guessed)

    def _guessed_ends(self, position: int, count: int, key: str):
        """Where the string array at ``position`` may end, most likely first: the next key's length (its high
        bytes zeros) followed by a namespace llama.cpp writes after a vocabulary, searched for (in C) from
        the shortest the array can be: 8 bytes a string, 11 for a merge ("a b")."""
        shortest = 11 if key.endswith(".merges") else 8
        start = position + shortest * count + 1
        end = min(self.size, start + _GUESS_WINDOW * count)
        tried = None
        for namespace in (b"tokenizer.", b"general."):  # the second only if the first was wrong
            hit = self.data.find(b"\0\0\0\0\0\0\0" + namespace, start, end)
            if hit >= 0 and hit != tried:
                tried = hit
                yield hit - 1

    def _string(self, position: int) -> tuple[str, int]:
        length = self.u64.unpack_from(self.data, position)[0]
        end = position + 8 + length
        if end > self.size:
            raise GgufError(f"{self.path} is truncated or corrupt: a string of {length} bytes at byte {position} "
                            f"runs past the end of the file ({self.size} bytes)")
        return self.data[position + 8:end].decode("utf-8", "replace"), end

    def _value(self, position: int, value_type: int, key: str):
        if value_type == _STRING:
            return self._string(position)
        if value_type not in _SCALARS:
            raise GgufError(f"{self.path} is corrupt: metadata key {key!r} has value type {value_type}")
        code, width = _SCALARS[value_type]
        return struct.unpack_from(self.order + code, self.data, position)[0], position + width

    def _skip_array(self, position: int, element_type: int, count: int, key: str, depth: int = 0) -> int:
        if element_type in _SCALARS:
            least = _SCALARS[element_type][1]
        elif element_type in (_STRING, _ARRAY) and depth < 4:
            least = 8 if element_type == _STRING else 12
        else:
            raise GgufError(f"{self.path} is corrupt: metadata key {key!r} is an array of type {element_type}")
        self._check_count(count, least, position, f"values in {key!r}")
        if element_type in _SCALARS:
            return position + count * least
        if element_type == _STRING:
            unpack, data = self.u64.unpack_from, self.data
            for _ in range(count):  # the hot loop of a vocabulary whose end was not guessed
                position += 8 + unpack(data, position)[0]
            if position > self.size:
                raise GgufError(f"{self.path} is truncated or corrupt: {key!r} runs past the end of the file")
            return position
        for _ in range(count):  # an array of arrays
            inner_type, inner_count = struct.unpack_from(self.order + "IQ", self.data, position)
            position = self._skip_array(position + 12, inner_type, inner_count, key, depth + 1)
        return position

    def _facts(self, position: int, metadata: dict, guessed: bool) -> GgufFacts:
        tensors, ends, position = self._tensor_entries(position, guessed)
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise GgufError(f"{self.path} is corrupt: general.alignment is {alignment!r}, not a power of two")
        data_start = -(-position // alignment) * alignment
        data_end = data_start + max(ends, default=0)
        if data_end > self.size:
            raise GgufError(f"{self.path} is truncated: its tensors need {data_end} bytes, the file has {self.size}")
        # A guess is kept only if the tensors end where the file does (each writer pads the last one too).
        if guessed and (len(ends) < len(tensors) or self.size - data_end >= alignment):
            raise _Mismatch()
        return _facts(tensors, metadata, self.version)

    def _tensor_entries(self, position: int, guessed: bool):
        data, unpack_u32, unpack_u64, size = self.data, self.u32.unpack_from, self.u64.unpack_from, self.size
        type_offset = struct.Struct(self.order + "IQ").unpack_from
        tensors, ends = [], []
        for _ in range(self.tensor_count):
            length = unpack_u64(data, position)[0]
            name_end = position + 8 + length
            if name_end > size:
                raise GgufError(f"{self.path} is truncated or corrupt: a tensor name of {length} bytes at byte "
                                f"{position} runs past the end of the file")
            name = data[position + 8:name_end].decode("utf-8", "replace")
            dim_count = unpack_u32(data, name_end)[0]
            if dim_count > MAX_DIMS:
                raise GgufError(f"{self.path} is corrupt: tensor {name!r} has {dim_count} dimensions")
            shape = struct.unpack_from(f"{self.order}{dim_count}Q", data, name_end + 4)
            position = name_end + 4 + 8 * dim_count
            type_id, offset = type_offset(data, position)
            position += 12
            known = GGML_TYPES.get(type_id)
            tensors.append((name, shape, known[0] if known else f"type {type_id}"))
            if known:
                elements = 1
                for dim in shape:
                    elements *= dim
                ends.append(offset + elements // known[1] * known[2])
        return tensors, ends, position


def _facts(tensors: list, metadata: dict, version: int) -> GgufFacts:
    architecture = metadata.get("general.architecture")
    file_type = metadata.get("general.file_type")
    context_length = metadata.get(f"{architecture}.context_length")
    parameter_count = 0
    weights = Counter()  # elements per ggml type, among the 2-D (and bigger) weights
    for _name, shape, type_name in tensors:
        elements = 1
        for dim in shape:
            elements *= dim
        parameter_count += elements
        if len(shape) >= 2:
            weights[type_name] += elements
    label = FILE_TYPES.get(file_type) if isinstance(file_type, int) else None
    if label is None and weights:
        label = weights.most_common(1)[0][0]
    return GgufFacts(
        architecture=_text(architecture), name=_text(metadata.get("general.name")),
        file_type=file_type if isinstance(file_type, int) else None, quant_label=label,
        parameter_count=parameter_count,
        context_length=context_length if isinstance(context_length, int) else None,
        tensor_types={type_name for _name, _shape, type_name in tensors},
        general_type=_text(metadata.get("general.type")), tensors=tensors, version=version, metadata=metadata,
    )


def _text(value) -> str | None:
    return value if isinstance(value, str) else None
