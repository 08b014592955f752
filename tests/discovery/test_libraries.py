"""The tools' libraries: where they are (environment, defaults), LM Studio's and text-generation-webui's
layouts read into models and copies, problems per folder, and nothing written in another tool's files."""

import os
from pathlib import Path

import pytest

from modelhub.discovery.libraries import library_locations, primary_location, scan_locations
from modelhub.discovery.scanner import scan
from modelhub.discovery.types import Location
from tests.discovery.trees import (add_lmstudio, add_ollama, copy_plain, snapshot_state, textgen_install,
                                   tiny_parameter_count, write_gguf)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder of its own: the tools' default places are under it, and none exists yet."""
    home = tmp_path / "home-dir"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    monkeypatch.delenv("MODELHUB_LIBRARIES", raising=False)  # every tool, as by default
    (tmp_path / "hf-hub").mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    return home


def copies(report) -> dict:
    return {(found.hf_path, found.label): found for found in report.found}


def problems(report) -> dict:
    return {problem.path: problem.message for problem in report.problems}


# Where the libraries are


def test_default_places(home):
    assert library_locations() == [
        Location("secondary", home / ".lmstudio/models", "lmstudio", configured=False),
        Location("secondary", home / ".cache/lm-studio/models", "lmstudio", configured=False),
        Location("secondary", home / ".ollama/models", "ollama", configured=False),
        Location("secondary", home / "text-generation-webui/models", "text-generation-webui", configured=False),
    ]
    assert primary_location().library == "huggingface"


def test_places_from_the_environment(home, tmp_path, monkeypatch):
    install = tmp_path / "tgw"
    models = textgen_install(install)
    monkeypatch.setenv("MODELHUB_LMSTUDIO_MODELS", os.pathsep.join([str(tmp_path / "lms1"), str(tmp_path / "lms2")]))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama-own"))
    monkeypatch.setenv("MODELHUB_TEXTGEN_WEBUI", str(install))
    assert [(str(loc.root), loc.library, loc.configured) for loc in library_locations()] == [
        (str(tmp_path / "lms1"), "lmstudio", True), (str(tmp_path / "lms2"), "lmstudio", True),
        (str(tmp_path / "ollama-own"), "ollama", True),
        (str(models), "text-generation-webui", True),  # user_data/models of a 3.x install
    ]
    monkeypatch.setenv("MODELHUB_OLLAMA_MODELS", str(tmp_path / "ollama-mine"))  # modelhub's own wins
    assert [loc.root for loc in library_locations() if loc.library == "ollama"] == [tmp_path / "ollama-mine"]


def test_an_older_textgen_install_keeps_its_models_in_models(home, tmp_path, monkeypatch):
    models = textgen_install(tmp_path / "tgw-old", layout="models")
    monkeypatch.setenv("MODELHUB_TEXTGEN_WEBUI", str(tmp_path / "tgw-old"))
    assert [loc.root for loc in library_locations()] [-1] == models


@pytest.mark.parametrize("value, tools", [
    ("none", []), ("ollama", ["ollama"]), ("ollama, LMStudio", ["ollama", "lmstudio", "lmstudio"]), ("", None),
])
def test_modelhub_libraries_chooses_the_tools(home, monkeypatch, value, tools):
    monkeypatch.setenv("MODELHUB_LIBRARIES", value)
    expected = tools if tools is not None else ["lmstudio", "lmstudio", "ollama", "text-generation-webui"]
    assert [loc.library for loc in library_locations()] == expected
    assert [loc.library for loc in scan_locations()][:1] == ["huggingface"]


def test_a_configured_place_that_does_not_exist_is_a_problem_a_default_one_is_not(home, tmp_path, monkeypatch):
    report = scan(scan_locations())
    assert report.found == []
    assert all(not problem.path.startswith(str(home)) for problem in report.problems), report.problems

    monkeypatch.setenv("MODELHUB_LMSTUDIO_MODELS", str(tmp_path / "unplugged"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    reported = problems(scan(scan_locations()))
    assert reported[str(tmp_path / "unplugged")] == "folder does not exist (listed in MODELHUB_LMSTUDIO_MODELS)"
    assert reported[str(tmp_path / "no-ollama")] == (
        "folder does not exist (listed in MODELHUB_OLLAMA_MODELS or OLLAMA_MODELS)")


# LM Studio


def test_lmstudio_repos_are_models_and_each_quantization_a_copy(home, tmp_path):
    models = home / ".lmstudio" / "models"
    for quant in ("Q4_K_M", "Q8_0", "F16"):
        add_lmstudio(models, "bartowski/Tiny-Llama-GGUF", f"Tiny-Llama-{quant}.gguf", write_gguf(tmp_path / f"{quant}.gguf", quant))
    add_lmstudio(models, "bartowski/Tiny-Llama-GGUF", "mmproj-Tiny-Llama-f16.gguf", tmp_path / "F16.gguf")
    # a projector not named as one: its header says what it is
    add_lmstudio(models, "lmstudio-community/vision", "vision-encoder.gguf",
                 write_gguf(tmp_path / "clip.gguf", "F16", architecture="clip", general_type="mmproj"))
    report = scan(scan_locations())
    assert report.problems == []
    found = copies(report)
    assert sorted(found) == [("bartowski/Tiny-Llama-GGUF", f"bartowski/Tiny-Llama-GGUF/Tiny-Llama-{quant}.gguf")
                             for quant in ("F16", "Q4_K_M", "Q8_0")]
    q4 = found["bartowski/Tiny-Llama-GGUF", "bartowski/Tiny-Llama-GGUF/Tiny-Llama-Q4_K_M.gguf"]
    assert (q4.location, q4.library, q4.library_root) == ("secondary", "lmstudio", str(models))
    assert q4.path == str(models / "bartowski" / "Tiny-Llama-GGUF" / "Tiny-Llama-Q4_K_M.gguf")
    assert (q4.weight_format, q4.quantization, q4.architecture, q4.model_type) == ("gguf", "GGUF Q4_K_M", "llama", "llama")
    assert (q4.parameter_count, q4.context_length) == (tiny_parameter_count(), 256)
    assert q4.size_bytes == Path(q4.path).stat().st_size and not q4.incomplete
    assert q4.digest is None  # no other GGUF file of its size: not hashed


def test_lmstudio_mlx_folders_are_folder_copies(home, tiny_models):
    models = home / ".cache" / "lm-studio" / "models"  # LM Studio before 0.3
    copy_plain(models, "mlx-community/tiny-llama", tiny_models["llama"])
    (llama,) = scan(scan_locations()).found
    assert (llama.hf_path, llama.library, llama.weight_format) == ("mlx-community/tiny-llama", "lmstudio", "safetensors")


def test_a_split_gguf_is_one_copy_and_incomplete_when_a_part_is_missing(home, tmp_path):
    repo = home / ".lmstudio" / "models" / "unsloth" / "Big-GGUF"
    parts = [write_gguf(repo / f"Big-Q8_0-0000{n}-of-00003.gguf", "Q8_0", name=f"Big part {n}") for n in (1, 2, 3)]
    (whole,) = scan(scan_locations()).found
    assert whole.path == str(parts[0]) and whole.label == "unsloth/Big-GGUF/Big-Q8_0-00001-of-00003.gguf"
    assert whole.size_bytes == sum(part.stat().st_size for part in parts)
    assert whole.parameter_count == 3 * tiny_parameter_count() and not whole.incomplete
    parts[1].unlink()
    (partial,) = scan(scan_locations()).found
    assert partial.incomplete and partial.incomplete_reason == "missing parts: Big-Q8_0-00002-of-00003.gguf"
    assert partial.size_bytes == parts[0].stat().st_size + parts[2].stat().st_size


def test_an_unreadable_header_is_a_problem_for_that_file_and_the_scan_goes_on(home, tmp_path):
    repo = home / ".lmstudio" / "models" / "someone" / "Tiny-GGUF"
    write_gguf(repo / "tiny-Q4_K_M.gguf")
    (repo / "tiny-Q8_0.gguf").write_bytes(b"GGUF\x03\x00\x00\x00truncated")
    (repo / "tiny-F16.gguf").write_bytes(b"<html>a failed download</html>")
    report = scan(scan_locations())
    assert [found.label for found in report.found] == ["someone/Tiny-GGUF/tiny-Q4_K_M.gguf"]
    reported = problems(report)
    assert set(reported) == {str(repo / "tiny-Q8_0.gguf"), str(repo / "tiny-F16.gguf")}
    assert all(message.startswith("cannot read the GGUF header") for message in reported.values())


# text-generation-webui


def test_textgen_models_folder(home, tmp_path, tiny_models):
    models = textgen_install(home / "text-generation-webui")
    copy_plain(models, "TheBloke_tiny-llama", tiny_models["llama"])
    write_gguf(models / "llama-2-7b.Q4_K_M.gguf", "Q4_K_M", name="Llama 2 7B")
    write_gguf(models / "llama-2-7b.Q8_0.gguf", "Q8_0", name="Llama 2 7B")
    write_gguf(models / "mistral-7b-gguf" / "mistral-7b-instruct-v0.2.Q5_K_M.gguf", "Q5_K_M", name="Mistral")
    report = scan(scan_locations())
    assert report.problems == []
    assert sorted(copies(report)) == [
        ("TheBloke_tiny-llama", None),
        ("llama-2-7b", "llama-2-7b.Q4_K_M.gguf"), ("llama-2-7b", "llama-2-7b.Q8_0.gguf"),
        ("mistral-7b-instruct-v0.2", "mistral-7b-gguf/mistral-7b-instruct-v0.2.Q5_K_M.gguf"),
    ]
    assert {found.library for found in report.found} == {"text-generation-webui"}
    assert {found.library_root for found in report.found} == {str(models)}


# Read-only


def test_a_scan_writes_nothing_in_the_tools_folders(home, tmp_path, tiny_models):
    lmstudio, ollama = home / ".lmstudio" / "models", home / ".ollama" / "models"
    source = write_gguf(tmp_path / "src" / "tiny.Q4_K_M.gguf")
    add_lmstudio(lmstudio, "me/tiny-GGUF", "tiny.Q4_K_M.gguf", source)  # same size as the blob: hashed
    add_ollama(ollama, "tiny:latest", source)
    (ollama / "manifests" / "registry.ollama.ai" / "library" / "broken").mkdir(parents=True)
    (ollama / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest").write_text("{not json")
    models = textgen_install(home / "text-generation-webui")
    write_gguf(models / "other.Q8_0.gguf", "Q8_0", name="other")
    copy_plain(models, "tiny", tiny_models["gpt2"])
    before = {root: snapshot_state(root) for root in (lmstudio, ollama, home / "text-generation-webui")}
    report = scan(scan_locations())
    assert len(report.found) == 4 and len(report.problems) == 1
    assert {root: snapshot_state(root) for root in before} == before
