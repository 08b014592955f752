"""The registry follows the tools' libraries as it follows the hub cache: copies that go missing and
come back, what the user edited kept, problems per folder, and a rescan of unchanged files that reads
no header."""

import shutil

import pytest

from modelhub import registry
from modelhub.discovery import gguf_copies
from modelhub.discovery.scanner import scan
from modelhub.discovery.sync import apply_scan, known_files
from modelhub.discovery.types import Location
from tests.discovery.trees import add_lmstudio, add_ollama, place, write_gguf


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def libraries(tmp_path):
    """LM Studio with two quantizations of one repo, Ollama with a model of its own."""
    lmstudio, ollama = tmp_path / "lmstudio", tmp_path / "ollama"
    for quant in ("Q4_K_M", "Q8_0"):
        add_lmstudio(lmstudio, "me/Tiny-GGUF", f"tiny-{quant}.gguf", write_gguf(tmp_path / f"{quant}.gguf", quant))
    add_ollama(ollama, "phi3:mini", write_gguf(tmp_path / "phi3.gguf", "Q4_0", name="Phi 3"))
    return [Location("secondary", lmstudio, "lmstudio"), Location("secondary", ollama, "ollama")]


def record(locations):
    return apply_scan(scan(locations, known=known_files()))


def copies_of(name) -> dict:
    return {copy.label: copy for copy in registry.copies(registry.get_model(name))}


def test_models_and_copies_are_recorded(ctx, libraries):
    summary = record(libraries)
    assert sorted(summary.added) == ["me/Tiny-GGUF", "phi3-mini"] and summary.copies_added == 3
    tiny = registry.get_model("me/Tiny-GGUF")
    assert (tiny.cache_location, tiny.quantization) == ("secondary", "GGUF Q4_K_M")
    assert tiny.cache_path.endswith("tiny-Q4_K_M.gguf")  # a GGUF model's cache_path is its file
    copy = copies_of("me/Tiny-GGUF")["me/Tiny-GGUF/tiny-Q8_0.gguf"]
    assert (copy.library, copy.library_root, copy.location) == ("lmstudio", str(libraries[0].root), "secondary")
    assert (copy.weight_format, copy.quantization, copy.architecture, copy.context_length) == ("gguf", "GGUF Q8_0", "llama", 256)
    assert copy.parameter_count > 0 and copy.file_key and copy.aliases is None


def test_missing_and_returning_copies_and_user_edits(ctx, libraries, tmp_path):
    record(libraries)
    registry.update_model("phi3-mini", {"compatibility_notes": "mine", "quantization": "my label"})
    lmstudio, ollama = (location.root for location in libraries)
    (lmstudio / "me" / "Tiny-GGUF" / "tiny-Q4_K_M.gguf").rename(tmp_path / "aside.gguf")
    shutil.move(ollama, tmp_path / "ollama-aside")
    summary = record(libraries)
    assert summary.went_missing == ["phi3-mini"]
    assert copies_of("me/Tiny-GGUF")["me/Tiny-GGUF/tiny-Q4_K_M.gguf"].missing
    tiny = registry.get_model("me/Tiny-GGUF")
    assert not tiny.missing and tiny.cache_path.endswith("tiny-Q8_0.gguf")  # loads from the copy that is there
    # the Ollama root is gone: configured, it is a problem for its root
    assert [p.path for p in summary.problems] == [str(ollama)]

    shutil.move(tmp_path / "ollama-aside", ollama)
    (tmp_path / "aside.gguf").rename(lmstudio / "me" / "Tiny-GGUF" / "tiny-Q4_K_M.gguf")
    back = record(libraries)
    assert back.came_back == ["phi3-mini"] and back.copies_added == 0
    assert not any(copy.missing for copy in copies_of("me/Tiny-GGUF").values())
    phi = registry.get_model("phi3-mini")
    assert (phi.compatibility_notes, phi.quantization, phi.missing) == ("mine", "my label", False)


def test_a_library_not_scanned_this_time_leaves_its_copies_alone(ctx, libraries):
    record(libraries)
    record(libraries[:1])  # MODELHUB_LIBRARIES=lmstudio
    assert not registry.get_model("phi3-mini").missing


def test_when_a_copys_path_goes_its_alias_keeps_the_row(ctx, tmp_path):
    """A file hard-linked in LM Studio and Ollama: one row. Deleted from LM Studio, the same row now
    names the blob (not a missing row and a new one)."""
    lmstudio, ollama = tmp_path / "lmstudio", tmp_path / "ollama"
    blob = add_ollama(ollama, "tiny:latest", write_gguf(tmp_path / "tiny.gguf", "Q4_K_M"))
    linked = place(blob, lmstudio / "me" / "Tiny-GGUF" / "tiny-Q4_K_M.gguf", "hardlink")
    locations = [Location("secondary", lmstudio, "lmstudio"), Location("secondary", ollama, "ollama")]
    record(locations)
    (before,) = registry.copies(registry.get_model("me/Tiny-GGUF"))
    linked.unlink()
    summary = record(locations)
    assert summary.copies_added == 0 and summary.added == []
    (after,) = registry.copies(registry.get_model("me/Tiny-GGUF"))
    assert (after.id, after.path, after.library, after.missing) == (before.id, str(blob), "ollama", False)
    assert registry.get_model("me/Tiny-GGUF").cache_path == str(blob)


def test_a_rescan_reads_no_header_of_an_unchanged_file(ctx, libraries, monkeypatch):
    record(libraries)
    opened = []
    read = gguf_copies._read
    monkeypatch.setattr(gguf_copies, "_read", lambda path: opened.append(path) or read(path))
    summary = record(libraries)
    assert opened == [] and summary.copies_added == 0
    write_gguf(libraries[0].root / "me" / "Tiny-GGUF" / "tiny-F16.gguf", "F16")
    record(libraries)
    assert [path.rsplit("/", 1)[1] for path in opened] == ["tiny-F16.gguf"]


def test_a_custom_gguf_file_is_a_copy_that_scans_watch(ctx, tmp_path):
    file = write_gguf(tmp_path / "mine" / "tiny.Q4_K_M.gguf", "Q4_K_M")
    registry.create_model({"model_name": "me/tiny", "cache_location": "custom", "cache_path": str(file)})
    (copy,) = registry.copies(registry.get_model("me/tiny"))
    assert (copy.path, copy.library, copy.weight_format, copy.quantization) == (str(file), "custom", "gguf", "GGUF Q4_K_M")
    assert registry.get_model("me/tiny").quantization == "GGUF Q4_K_M"
    assert record([]).went_missing == []
    file.unlink()
    assert record([]).went_missing == ["me/tiny"]
