"""Ollama's store read as `ollama pull` leaves it: manifests naming blobs, names as Ollama shows them,
tags sharing a blob, Hugging Face pulls, and damage reported per manifest."""

import json

import pytest

from modelhub.discovery import ollama
from modelhub.discovery.scanner import scan
from modelhub.discovery.types import Location
from tests.discovery.trees import add_ollama, sha256_file, tiny_parameter_count, write_gguf


@pytest.fixture
def store(tmp_path):
    return tmp_path / "ollama" / "models"


def scan_store(store):
    return scan([Location("secondary", store, library="ollama")])


def by_name(report) -> dict:
    return {found.hf_path: found for found in report.found}


@pytest.mark.parametrize("registry, namespace, model, tag, expected", [
    ("registry.ollama.ai", "library", "llama3", "8b", ("llama3-8b", "llama3:8b")),
    ("registry.ollama.ai", "library", "llama3", "latest", ("llama3", "llama3:latest")),
    ("registry.ollama.ai", "me", "mine", "q4", ("me/mine-q4", "me/mine:q4")),
    ("hf.co", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M",
     ("bartowski/Llama-3.2-1B-Instruct-GGUF", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")),
    ("example.com:5000", "team", "tool", "v1", ("team/tool-v1", "example.com:5000/team/tool:v1")),
])
def test_names(registry, namespace, model, tag, expected):
    assert ollama.names(registry, namespace, model, tag) == expected


def test_a_pulled_model_is_its_blob(store, tmp_path):
    blob = add_ollama(store, "llama3:8b", write_gguf(tmp_path / "llama3.gguf", "Q4_0", name="Llama 3"))
    report = scan_store(store)
    assert report.problems == []
    (found,) = report.found
    assert (found.hf_path, found.label, found.path) == ("llama3-8b", "llama3:8b", str(blob))
    assert found.digest == f"sha256:{sha256_file(blob)}"  # its name, which is its sha256
    assert (found.library, found.location, found.library_root) == ("ollama", "secondary", str(store))
    assert (found.weight_format, found.quantization, found.architecture) == ("gguf", "GGUF Q4_0", "llama")
    assert (found.parameter_count, found.size_bytes) == (tiny_parameter_count(), blob.stat().st_size)


def test_tags_sharing_a_blob_are_one_copy_named_by_the_shortest_name(store, tmp_path):
    source = write_gguf(tmp_path / "llama3.gguf", "Q4_0", name="Llama 3")
    add_ollama(store, "llama3:8b", source)
    add_ollama(store, "llama3:latest", source)
    add_ollama(store, "me/llama3-copy:v2", source)
    add_ollama(store, "hf.co/org/Other-GGUF:Q8_0", write_gguf(tmp_path / "other.gguf", "Q8_0", name="Other"))
    found = by_name(scan_store(store))
    assert sorted(found) == ["llama3", "org/Other-GGUF"]
    assert found["llama3"].label == "llama3:8b, llama3:latest, me/llama3-copy:v2"
    assert found["org/Other-GGUF"].label == "hf.co/org/Other-GGUF:Q8_0"
    assert found["org/Other-GGUF"].quantization == "GGUF Q8_0"


def test_the_layers_that_are_not_the_model_are_not_copies(store, tmp_path):
    blob = add_ollama(store, "llama3:8b", write_gguf(tmp_path / "llama3.gguf", "Q4_0"))
    assert len(list((store / "blobs").iterdir())) == 4  # model, template, params, config
    assert [found.path for found in scan_store(store).found] == [str(blob)]


def test_damage_is_reported_per_manifest(store, tmp_path):
    add_ollama(store, "good:latest", write_gguf(tmp_path / "good.gguf", "Q8_0", name="good"))
    gone = add_ollama(store, "gone:latest", write_gguf(tmp_path / "gone.gguf", "Q4_0", name="gone"))
    gone.unlink()
    library = store / "manifests" / "registry.ollama.ai" / "library"
    (library / "broken").mkdir()
    (library / "broken" / "latest").write_text("{not json")
    (library / "evil").mkdir()
    manifest = json.loads((library / "good" / "latest").read_text())
    manifest["layers"][0]["digest"] = "sha256:../../../../etc/passwd"
    (library / "evil" / "latest").write_text(json.dumps(manifest))
    (library / "adapter-only").mkdir()
    (library / "adapter-only" / "latest").write_text(json.dumps({"schemaVersion": 2, "layers": [
        {"mediaType": "application/vnd.ollama.image.adapter", "digest": "sha256:" + "0" * 64, "size": 1}]}))
    report = scan_store(store)
    assert list(by_name(report)) == ["good"]
    reported = {problem.path: problem.message for problem in report.problems}
    assert reported[str(library / "gone" / "latest")].startswith(f"its model blob sha256:{gone.name[7:]} is not in")
    assert reported[str(library / "broken" / "latest")].startswith("not an Ollama manifest")
    assert reported[str(library / "evil" / "latest")] == "its model layer names no sha256 blob: 'sha256:../../../../etc/passwd'"
    assert len(reported) == 3  # a manifest without a model layer is nothing to show, not a problem


def test_blobs_named_as_before_ollama_0_1_33(store, tmp_path):
    blob = add_ollama(store, "old:latest", write_gguf(tmp_path / "old.gguf", "Q4_0"))
    renamed = blob.with_name(blob.name.replace("sha256-", "sha256:"))
    blob.rename(renamed)
    (found,) = scan_store(store).found
    assert found.path == str(renamed) and found.digest == f"sha256:{renamed.name[7:]}"


def test_a_store_with_nothing_pulled_yet(store):
    (store / "blobs").mkdir(parents=True)
    report = scan_store(store)
    assert report.found == [] and report.problems == []
