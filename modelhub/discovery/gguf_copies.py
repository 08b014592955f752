"""GGUF files as copies of models: grouping a folder's files (split parts into one copy, projectors
left out), naming a loose file's model, and describing a copy from its header.

A GGUF copy's ``path`` is the file itself (a split model's: its first part). Its facts come from the
header alone (modelhub/discovery/gguf_header.py, never the tensors) and, while the file is unchanged
(the same file_key as the registry's copy), from the registry: the header is then not even opened.
"""

import os
import re
from dataclasses import dataclass, field

from modelhub.discovery import identity
from modelhub.discovery.gguf_header import GgufError, read_facts
from modelhub.discovery.identity import SPLIT_PART, KnownFiles
from modelhub.discovery.types import FoundModel
from modelhub.gguf_support import model_type

SUFFIX = ".gguf"
# A quantization at the end of a file's stem, as llama.cpp, TheBloke, bartowski and unsloth name them:
# "llama-2-7b.Q4_K_M", "Qwen2-7B-Instruct-IQ4_XS", "phi-3-mini-f16", "Llama-3.2-1B-UD-Q4_K_XL", "model-bf16".
QUANT_SUFFIX = re.compile(r"[.\-_](?:UD-)?(?:I?Q\d+(?:_[A-Z0-9]+)*|[BT]?F(?:16|32)|FP16|MXFP4(?:_MOE)?)$",
                          re.IGNORECASE)
PROJECTOR_MARKS = ("mmproj", "projector")  # vision projectors (llama.cpp's mmproj-*.gguf): not models


class UnreadableGguf(ValueError):
    """A GGUF file whose header cannot be read: a Problem for that file, and the scan goes on."""


@dataclass
class GgufCandidate:
    """A GGUF copy to describe: a file (or a split's parts), the model it belongs to, the tool's name for it."""

    path: str  # the file; a split model's first part that is there
    hf_path: str
    label: str | None = None
    parts: list[str] = field(default_factory=list)  # a split model's other parts that are there
    missing_parts: list[str] = field(default_factory=list)  # ... and the names of those that are not
    digest: str | None = None  # known without reading the file (an Ollama manifest names it)
    revision: str | None = None  # a hub-cache snapshot's


def is_gguf_name(name: str) -> bool:
    return name.lower().endswith(SUFFIX)


def is_projector_name(name: str) -> bool:
    lowered = os.path.basename(name).lower()
    return any(mark in lowered for mark in PROJECTOR_MARKS)


def model_name(file_name: str) -> str:
    """The model a loose GGUF file holds, from its name: the stem without a split's part number nor the
    quantization ("llama-2-7b.Q4_K_M.gguf" -> "llama-2-7b"), so that several quantizations of one model
    are one model."""
    stem = SPLIT_PART.sub(SUFFIX, os.path.basename(file_name))[: -len(SUFFIX)]
    stripped = QUANT_SUFFIX.sub("", stem)
    return stripped or stem


def group(names: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """A folder's GGUF file names (relative paths) as copies: ``(first, other parts, missing parts)``,
    one per file or per split model (``name-00001-of-00003.gguf`` ...), sorted; projectors left out."""
    singles, splits = [], {}
    for name in sorted(n for n in names if is_gguf_name(n) and not is_projector_name(n)):
        match = SPLIT_PART.search(name)
        if match is None:
            singles.append((name, [], []))
            continue
        stem, count = name[: match.start()], int(match.group(2))
        splits.setdefault((stem, count, match.group(0)[-len(SUFFIX):]), {})[int(match.group(1))] = name
    for (stem, count, suffix), parts in splits.items():
        expected = {n: f"{stem}-{n:05d}-of-{count:05d}{suffix}" for n in range(1, count + 1)}
        present = [parts[n] for n in sorted(parts) if n in expected]
        missing = [os.path.basename(expected[n]) for n in sorted(expected) if n not in parts]
        if present:
            singles.append((present[0], present[1:], missing))
    return sorted(singles)


def candidates(folder: str, names: list[str], hf_path: str | None, label_prefix: str | None = None,
               revision: str | None = None) -> list[GgufCandidate]:
    """The GGUF copies among ``names`` (relative to ``folder``), all of model ``hf_path`` (None: each
    file names its own, see model_name); each copy's label is its name under ``label_prefix`` (LM
    Studio's "publisher/repo/file.gguf")."""
    found = []
    for first, parts, missing in group(names):
        label = f"{label_prefix}/{first}" if label_prefix else first
        found.append(GgufCandidate(os.path.join(folder, first), hf_path or model_name(first), label,
                                   [os.path.join(folder, p) for p in parts], missing, revision=revision))
    return found


def describe(candidate: GgufCandidate, kind: str, library: str | None, root: str | None,
             known: KnownFiles) -> FoundModel | None:
    """The copy ``candidate`` is, or None when its header says it is no model (a vision projector).
    Raises UnreadableGguf (the header) or OSError (the file)."""
    infos = [os.stat(path) for path in [candidate.path, *candidate.parts]]
    size = sum(info.st_size for info in infos)
    key = identity.file_key(infos[0], size, max(info.st_mtime_ns for info in infos))
    found = FoundModel(candidate.hf_path, kind, candidate.path, revision=candidate.revision, size_bytes=size,
                       weight_format="gguf", library=library, library_root=root, label=candidate.label,
                       digest=candidate.digest or identity.digest_from_name(candidate.path), file_key=key)
    if candidate.missing_parts:
        found.incomplete, found.incomplete_reason = True, f"missing parts: {', '.join(candidate.missing_parts)}"
    stored = known.by_key.get(key)
    if stored is not None:  # unchanged since the registry read it: its facts, without opening it
        found.architecture, found.model_type, found.quantization = stored.architecture, stored.model_type, stored.quantization
        found.parameter_count, found.context_length = stored.parameter_count, stored.context_length
        return found
    facts = _read(candidate.path)
    if facts.general_type == "mmproj" or facts.architecture == "clip":
        return None
    found.architecture = facts.architecture
    found.model_type = model_type(facts.architecture, facts.name)  # the transformers model_type it loads as
    found.quantization = f"GGUF {facts.quant_label}" if facts.quant_label else "GGUF"
    found.context_length = facts.context_length
    found.parameter_count = facts.parameter_count
    for part in candidate.parts:  # each part holds its own tensors
        found.parameter_count = (found.parameter_count or 0) + (_read(part).parameter_count or 0)
    return found


def _read(path: str):
    try:
        return read_facts(path)
    except GgufError as error:
        raise UnreadableGguf(f"cannot read the GGUF header: {error}") from error
    except Exception as error:  # noqa: BLE001 - a reader bug on one odd file must not end the whole scan
        raise UnreadableGguf(f"cannot read the GGUF header ({type(error).__name__}: {error})") from error
