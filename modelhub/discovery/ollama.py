"""Ollama's model store, read as Ollama writes it::

    <models>/manifests/<registry>/<namespace>/<model>/<tag>    a JSON manifest (Docker's v2 schema)
    <models>/blobs/sha256-<hex>                                 content-addressed blobs

A manifest's layers name blobs by digest; the layer of mediaType ``application/vnd.ollama.image.model``
is the GGUF file (the others: template, params, license, system prompt, a vision projector). Several
tags pointing at one blob are one copy of one model, named by the shortest name:

- ``registry.ollama.ai/library/llama3/8b`` -> "llama3-8b" (tag ``latest`` -> "llama3"), label "llama3:8b";
- another namespace: ``registry.ollama.ai/me/mine/q4`` -> "me/mine-q4", label "me/mine:q4";
- a Hugging Face pull, ``hf.co/<org>/<repo>/<quant>`` -> "org/repo" (the hub repo it came from),
  label "hf.co/org/repo:quant".
"""

import json
import os
import re
from dataclasses import dataclass, field

from modelhub.discovery.gguf_copies import GgufCandidate
from modelhub.discovery.types import Problem

MODEL_LAYER = "application/vnd.ollama.image.model"
DEFAULT_REGISTRY, DEFAULT_NAMESPACE, DEFAULT_TAG = "registry.ollama.ai", "library", "latest"
HUGGING_FACE = ("hf.co", "huggingface.co")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")  # checked before it becomes part of a path


@dataclass
class _Blob:
    digest: str
    names: list[tuple[str, str]] = field(default_factory=list)  # (model name, Ollama's name) per tag


def plan(root: str, problems: list[Problem]) -> list[GgufCandidate]:
    """One candidate per model blob that some manifest under ``root`` names, in blob order. A manifest
    that cannot be read, or names a blob that is not there, is a problem; the others are still read."""
    blobs: dict[str, _Blob] = {}
    for manifest, (registry, namespace, model, tag) in _manifests(os.path.join(root, "manifests"), problems):
        digest = _model_digest(manifest, problems)
        if digest is None:
            continue
        blob = blob_path(root, digest)
        if blob is None:
            problems.append(Problem(manifest, f"its model blob {digest} is not in {os.path.join(root, 'blobs')}"))
            continue
        blobs.setdefault(blob, _Blob(digest)).names.append(names(registry, namespace, model, tag))
    candidates = []
    for path in sorted(blobs):
        blob = blobs[path]
        ordered = sorted(set(blob.names), key=lambda pair: (len(pair[0]), pair))
        label = ", ".join(sorted({ollama for _, ollama in ordered}))
        candidates.append(GgufCandidate(path, ordered[0][0], label, digest=blob.digest))
    return candidates


def names(registry: str, namespace: str, model: str, tag: str) -> tuple[str, str]:
    """(modelhub's name, Ollama's own name) of a manifest at ``registry/namespace/model/tag``."""
    if registry.lower() in HUGGING_FACE:
        return f"{namespace}/{model}", f"{registry}/{namespace}/{model}:{tag}"
    short = model if tag == DEFAULT_TAG else f"{model}-{tag}"
    if registry == DEFAULT_REGISTRY and namespace == DEFAULT_NAMESPACE:
        return short, f"{model}:{tag}"
    prefix = namespace if registry == DEFAULT_REGISTRY else f"{registry}/{namespace}"
    return f"{namespace}/{short}", f"{prefix}/{model}:{tag}"


def blob_path(root: str, digest: str) -> str | None:
    """The blob file of ``digest`` ("sha256:<hex>"): ``sha256-<hex>``, or ``sha256:<hex>`` as Ollama
    named them before 0.1.33; None when neither is there."""
    algorithm, _, value = digest.partition(":")
    for name in (f"{algorithm}-{value}", digest):
        path = os.path.join(root, "blobs", name)
        if os.path.isfile(path):
            return path
    return None


def _manifests(folder: str, problems: list[Problem], parts: tuple = ()):
    """(path, (registry, namespace, model, tag)) of every manifest file four levels under ``folder``."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except FileNotFoundError:
        if parts:
            problems.append(Problem(folder, "vanished while being read"))
        return  # no manifests folder: nothing pulled yet
    except OSError as error:
        problems.append(Problem(folder, f"cannot read folder: {error.strerror}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if len(parts) == 3:
            if entry.is_file():
                yield entry.path, (*parts, entry.name)
        elif entry.is_dir():
            yield from _manifests(entry.path, problems, (*parts, entry.name))


def _model_digest(manifest: str, problems: list[Problem]) -> str | None:
    """The digest of the manifest's model layer; a Problem (and None) when the manifest is unreadable."""
    try:
        with open(manifest, "rb") as file:
            document = json.load(file)
        layers = document["layers"]
        digest = next((layer["digest"] for layer in layers if layer.get("mediaType") == MODEL_LAYER), None)
    except OSError as error:
        problems.append(Problem(manifest, f"cannot read the manifest: {error.strerror}"))
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        problems.append(Problem(manifest, f"not an Ollama manifest ({type(error).__name__}: {error})"))
        return None
    if digest is None:
        return None  # no model layer (an adapter or a safetensors import): nothing GGUF to show
    if not isinstance(digest, str) or not DIGEST.match(digest):
        problems.append(Problem(manifest, f"its model layer names no sha256 blob: {digest!r}"))
        return None
    return digest
