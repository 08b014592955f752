"""The same GGUF file reached twice is one copy; the same bytes under two names is one model; digests are
computed only where they can tell something, and never twice for one version of a file."""

import os

import pytest

from modelhub import registry
from modelhub.discovery import identity
from modelhub.discovery.identity import KnownFile, KnownFiles
from modelhub.discovery.scanner import scan
from modelhub.discovery.sync import apply_scan, known_files
from modelhub.discovery.types import Location
from modelhub.models import ModelCopy
from tests.discovery.trees import add_hub_repo, add_lmstudio, add_ollama, place, sha256_file, write_gguf


@pytest.fixture
def roots(tmp_path):
    lmstudio, ollama = tmp_path / "lmstudio", tmp_path / "ollama"
    lmstudio.mkdir()
    ollama.mkdir()
    return [Location("secondary", lmstudio, "lmstudio"), Location("secondary", ollama, "ollama")]


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def record(locations):
    report = scan(locations, known=known_files())
    return report, apply_scan(report)


def copies_of(name) -> list[ModelCopy]:
    return registry.copies(registry.get_model(name))


def model_names() -> list[str]:
    return sorted(model.model_name for model in registry.list_models().items)


@pytest.mark.parametrize("how", ["hardlink", "symlink"])
def test_the_same_file_in_lmstudio_and_ollama_is_one_copy_with_an_alias(ctx, roots, tmp_path, how):
    lmstudio, ollama = (location.root for location in roots)
    blob = add_ollama(ollama, "tiny:latest", write_gguf(tmp_path / "tiny.gguf", "Q4_K_M"))
    file = place(blob, lmstudio / "me" / "Tiny-GGUF" / "tiny-Q4_K_M.gguf", how)
    report, summary = record(roots)
    (found,) = report.found
    assert (found.path, found.library, found.hf_path) == (str(file), "lmstudio", "me/Tiny-GGUF")
    assert found.aliases == [{"path": str(blob), "library": "ollama", "label": "tiny:latest"}]
    assert found.digest == f"sha256:{sha256_file(blob)}"  # the blob's name: never hashed
    assert summary.added == ["me/Tiny-GGUF"] and model_names() == ["me/Tiny-GGUF"]
    (copy,) = copies_of("me/Tiny-GGUF")
    assert (copy.path, copy.aliases, copy.digest) == (str(file), found.aliases, found.digest)


def test_an_independent_byte_identical_copy_is_a_second_copy_of_the_same_model(ctx, roots, tmp_path):
    lmstudio, ollama = (location.root for location in roots)
    source = write_gguf(tmp_path / "tiny.gguf", "Q4_K_M")
    blob = add_ollama(ollama, "tiny:latest", source)
    file = add_lmstudio(lmstudio, "me/Tiny-GGUF", "tiny-Q4_K_M.gguf", source)
    report, summary = record(roots)
    assert [found.digest for found in report.found] == [f"sha256:{sha256_file(source)}"] * 2  # LM Studio's hashed
    assert summary.added == ["me/Tiny-GGUF"] and model_names() == ["me/Tiny-GGUF"]
    assert {(c.path, c.library, c.label) for c in copies_of("me/Tiny-GGUF")} == {
        (str(file), "lmstudio", "me/Tiny-GGUF/tiny-Q4_K_M.gguf"), (str(blob), "ollama", "tiny:latest")}


def test_a_copy_added_later_joins_the_model_its_bytes_belong_to(ctx, roots, tmp_path):
    """Ollama first (model "tiny"); then the same file appears in LM Studio, under another name: the
    registry's digest of the blob says whose it is."""
    lmstudio, ollama = (location.root for location in roots)
    source = write_gguf(tmp_path / "tiny.gguf", "Q4_K_M")
    add_ollama(ollama, "tiny:latest", source)
    record(roots)
    add_lmstudio(lmstudio, "me/Tiny-GGUF", "tiny-Q4_K_M.gguf", source)
    _, summary = record(roots)
    assert summary.added == [] and summary.copies_added == 1
    assert model_names() == ["tiny"] and len(copies_of("tiny")) == 2


def test_the_hub_cache_blob_name_is_a_free_digest(ctx, tmp_path, roots):
    source = write_gguf(tmp_path / "tiny.gguf", "Q8_0")
    hub = tmp_path / "hub"
    add_hub_repo(hub, "org/Tiny-GGUF", {"tiny.Q8_0.gguf": source.read_bytes()})
    add_ollama(roots[1].root, "tiny:q8", source)
    report, summary = record([Location("primary", hub, "huggingface"), *roots])
    assert [found.hf_path for found in report.found] == ["org/Tiny-GGUF", "tiny-q8"]
    assert report.found[0].digest == report.found[1].digest == f"sha256:{sha256_file(source)}"
    assert model_names() == ["org/Tiny-GGUF"]  # the hub's name: the cache is scanned first
    assert {c.library for c in copies_of("org/Tiny-GGUF")} == {"huggingface", "ollama"}


def test_files_are_hashed_only_when_their_size_is_shared(tmp_path):
    root = tmp_path / "lms"
    q4 = write_gguf(root / "me" / "A-GGUF" / "a-Q4_K_M.gguf", "Q4_K_M", name="Model A")
    q4_other = write_gguf(root / "me" / "B-GGUF" / "b-Q4_K_M.gguf", "Q4_K_M", name="Model B")  # same size, other bytes
    q8 = write_gguf(root / "me" / "A-GGUF" / "a-Q8_0.gguf", "Q8_0", name="Model A")
    assert q4.stat().st_size == q4_other.stat().st_size != q8.stat().st_size
    found = {f.path: f for f in scan([Location("secondary", root, "lmstudio")]).found}
    assert found[str(q4)].digest == f"sha256:{sha256_file(q4)}" != found[str(q4_other)].digest
    assert found[str(q8)].digest is None

    # a size the registry holds (another file's) is shared too
    known = KnownFiles()
    known.add("1:2:3:4", q8.stat().st_size, KnownFile(digest="sha256:" + "e" * 64))
    found = {f.path: f for f in scan([Location("secondary", root, "lmstudio")], known=known).found}
    assert found[str(q8)].digest == f"sha256:{sha256_file(q8)}"


def test_a_stored_digest_is_reused_for_the_same_file_version(tmp_path):
    root = tmp_path / "lms"
    for name in ("a", "b"):
        write_gguf(root / "me" / f"{name.upper()}-GGUF" / f"{name}-Q4_K_M.gguf", "Q4_K_M", name=f"Model {name}")
    (first, second) = scan([Location("secondary", root, "lmstudio")]).found
    known = KnownFiles()
    known.add(first.file_key, first.size_bytes, KnownFile(digest="sha256:" + "a" * 64))
    again = scan([Location("secondary", root, "lmstudio")], known=known).found
    assert again[0].digest == "sha256:" + "a" * 64  # stored for this version of the file: not recomputed
    assert again[1].digest == second.digest


def test_file_keys():
    info = os.stat(__file__)
    key = identity.file_key(info)
    assert key == f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"
    assert identity.same_file(key) == identity.same_file(identity.file_key(info, size=1, mtime_ns=2))
