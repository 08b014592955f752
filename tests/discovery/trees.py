"""Build model trees on disk for the discovery tests and benchmark: a Hugging Face hub cache laid out
exactly as huggingface_hub's downloads leave it, and plain model folders.

The hub layout, as ``hf_hub_download`` writes it::

    <cache>/models--org--name/
        blobs/<etag>                      the bytes; etag = sha256 for LFS files, git blob sha1 otherwise
        snapshots/<40-hex revision>/<file> -> ../../blobs/<etag>   (a RELATIVE symlink)
        refs/main                         the revision, no trailing newline
    <cache>/.locks/models--org--name/     lock files of downloads in progress
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def read_files(directory: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file under ``directory`` (e.g. a tiny model's folder)."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def etag(name: str, content: bytes) -> str:
    """The blob name the hub gives a file: sha256 of an LFS file, git's blob sha1 of any other."""
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def revision_hash(seed: str) -> str:
    """A 40-hex commit hash, stable for ``seed``."""
    return hashlib.sha1(seed.encode()).hexdigest()


def repo_folder(repo_id: str, repo_type: str = "model") -> str:
    """``org/name`` -> ``models--org--name`` (huggingface_hub's repo_folder_name)."""
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


def add_hub_repo(cache: Path, repo_id: str, files: dict[str, bytes], revision: str | None = None,
                 ref: str | None = "main", repo_type: str = "model") -> Path:
    """Add one revision of a repo to the hub cache at ``cache`` (blobs shared with the repo's other
    revisions by content); point ``refs/<ref>`` at it unless ``ref`` is None. Returns the snapshot folder."""
    revision = revision or revision_hash(f"{repo_type}:{repo_id}")
    repo = cache / repo_folder(repo_id, repo_type)
    snapshot = repo / "snapshots" / revision
    for name, content in files.items():
        blob = repo / "blobs" / etag(name, content)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(content)
        pointer = snapshot / name
        pointer.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    snapshot.mkdir(parents=True, exist_ok=True)
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(revision)
    (cache / ".locks" / repo.name).mkdir(parents=True, exist_ok=True)
    return snapshot


def blob_of(snapshot: Path, name: str) -> Path:
    """The blob a snapshot file points to."""
    pointer = snapshot / name
    return (pointer.parent / os.readlink(pointer)).resolve()


def add_plain(root: Path, relative: str, files: dict[str, bytes]) -> Path:
    """Write ``files`` into ``root/relative`` (a model folder as save_pretrained or a copy leaves it)."""
    folder = root / relative
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def copy_plain(root: Path, relative: str, source: Path) -> Path:
    """Copy the model folder ``source`` to ``root/relative``."""
    return Path(shutil.copytree(source, root / relative))


def folder_size(directory: Path) -> int:
    """Bytes of the files under ``directory``."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


# Other tools' libraries, laid out as each tool writes them.
#
# LM Studio (0.3+: ~/.lmstudio/models; before: ~/.cache/lm-studio/models), as its downloader leaves a
# Hugging Face GGUF repo: <models>/<publisher>/<repo>/<file>.gguf, one file per quantization chosen, a
# vision model's projector beside it (mmproj-*.gguf).
#
# Ollama (~/.ollama/models, or OLLAMA_MODELS), as `ollama pull` leaves a model:
#     <models>/blobs/sha256-<hex>      every layer and the config, named by the sha256 of its bytes
#     <models>/manifests/<registry>/<namespace>/<model>/<tag>
#         {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
#          "config":{...},"layers":[{"mediaType":"application/vnd.ollama.image.model",...}, template, params]}
#
# text-generation-webui: <install>/user_data/models (models/ before v3.0): model folders (config.json,
# weights) named <org>_<name> by its downloader, GGUF files loose or in a folder of their own.

OLLAMA_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
OLLAMA_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
OLLAMA_MODEL = "application/vnd.ollama.image.model"
OLLAMA_TEMPLATE = "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
OLLAMA_PARAMS = b'{"stop":["<|start_header_id|>","<|end_header_id|>","<|eot_id|>"]}'


def add_lmstudio(models: Path, repo: str, name: str, source: Path, how: str = "copy") -> Path:
    """Put the GGUF file ``source`` at ``models/<publisher>/<repo>/<name>`` (``repo`` is "publisher/repo"),
    by ``how``: "copy" (the bytes), "hardlink" or "symlink" (to ``source``)."""
    return place(source, models / repo / name, how)


def place(source: Path, target: Path, how: str = "copy") -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if how == "copy":
        shutil.copyfile(source, target)
    elif how == "hardlink":
        os.link(source, target)
    elif how == "symlink":
        os.symlink(source, target)
    else:
        raise ValueError(how)
    return target


def ollama_name(name: str) -> tuple[str, str, str, str]:
    """Ollama's parse of a model name: ``llama3:8b`` -> (registry.ollama.ai, library, llama3, 8b);
    ``me/mine`` -> (registry.ollama.ai, me, mine, latest); ``hf.co/org/repo:Q4_K_M`` -> (hf.co, org, repo, Q4_K_M)."""
    rest, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    parts = rest.split("/")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2], tag
    if len(parts) == 2:
        return "registry.ollama.ai", parts[0], parts[1], tag
    return "registry.ollama.ai", "library", parts[0], tag


def ollama_blob(models: Path, content: bytes) -> tuple[str, Path]:
    """Store ``content`` as a blob (once); returns its digest "sha256:<hex>" and its path."""
    digest = hashlib.sha256(content).hexdigest()
    path = models / "blobs" / f"sha256-{digest}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(content)
    return f"sha256:{digest}", path


def add_ollama(models: Path, name: str, gguf: Path, how: str = "copy") -> Path:
    """``ollama pull name`` of the model whose weights are the GGUF file ``gguf``: its blob (copied, or
    a hard link to ``gguf`` with ``how="hardlink"``: ``ollama create`` from a local file may leave one),
    template, params, config and manifest. Returns the model blob's path."""
    digest = f"sha256:{sha256_file(gguf)}"
    blob = models / "blobs" / digest.replace(":", "-")
    if not blob.exists():
        place(gguf, blob, how)
    layers = [{"mediaType": OLLAMA_MODEL, "digest": digest, "size": blob.stat().st_size}]
    for media_type, content in (("template", OLLAMA_TEMPLATE.encode()), ("params", OLLAMA_PARAMS)):
        layer_digest, layer_blob = ollama_blob(models, content)
        layers.append({"mediaType": f"application/vnd.ollama.image.{media_type}", "digest": layer_digest,
                       "size": layer_blob.stat().st_size})
    config = json.dumps({"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
                         "model_type": "8.0B", "file_type": "Q4_K_M", "architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}},
                        separators=(",", ":")).encode()
    config_digest, config_blob = ollama_blob(models, config)
    manifest = {"schemaVersion": 2, "mediaType": OLLAMA_MANIFEST_TYPE,
                "config": {"mediaType": OLLAMA_CONFIG_TYPE, "digest": config_digest, "size": len(config)},
                "layers": layers}
    path = models / "manifests" / Path(*ollama_name(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, separators=(",", ":")))
    return blob


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def textgen_install(install: Path, layout: str = "user_data") -> Path:
    """An install of text-generation-webui: its models folder (``user_data/models``, or ``models`` for an
    install before 3.0) with the files it ships there. Returns the models folder."""
    models = install / ("user_data/models" if layout == "user_data" else "models")
    models.mkdir(parents=True, exist_ok=True)
    (models / "place-your-models-here.txt").write_text("")
    (models / "config.yaml").write_text(".*llama:\n  model_type: llama\n")
    (install / "server.py").write_text("# text-generation-webui\n")
    return models


def snapshot_state(root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (mtime_ns, size)} of everything under ``root`` (folders too), links not followed:
    equal before and after a scan when the scan wrote, moved and deleted nothing."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        state[path.relative_to(root).as_posix()] = (info.st_mtime_ns, info.st_size)
    info = root.lstat()
    state["."] = (info.st_mtime_ns, info.st_size)
    return state


# GGUF files: a real header (tests/gguf_files.py), the tensor data a hole.

QUANT_WEIGHTS = {"Q4_K_M": "Q4_K", "Q5_K_M": "Q5_K", "Q8_0": "Q8_0", "Q4_0": "Q4_0", "F16": "F16"}
# Rows of 256: every type above can hold them (k-quants pack 256 weights a block).
GGUF_DIMS = {"hidden": 256, "intermediate": 512, "layers": 1, "heads": 4, "kv_heads": 4, "vocab": 256, "context": 256}


def write_gguf(path: Path, quant: str = "Q4_K_M", name: str = "Tiny Llama", architecture: str = "llama",
               context_length: int = 256, general_type: str = "model", metadata: dict | None = None) -> Path:
    """A small GGUF at ``path`` as llama.cpp's quantizer leaves one: general.file_type ``quant``, its 2-D
    weights of that type. Files of one quant and the same ``name`` are byte-identical (the same model)."""
    from tests.gguf_files import llama_tensors, write_header_only

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_header_only(path, architecture=architecture, name=name, file_type=f"MOSTLY_{quant}",
                             context_length=context_length, general_type=general_type, metadata=metadata,
                             tensors=llama_tensors(GGUF_DIMS, QUANT_WEIGHTS[quant]))


def tiny_parameter_count() -> int:
    from tests.gguf_files import llama_tensors

    total = 0
    for _, shape, _ in llama_tensors(GGUF_DIMS):
        count = 1
        for dim in shape:
            count *= dim
        total += count
    return total
