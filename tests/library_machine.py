"""A machine whose disk holds one model in three tools' libraries, for the tests of which copy a result
was read from (tests/api/test_preflight_copies.py, tests/test_preflight_cli.py,
tests/test_compatibility_copies.py): a tiny Qwen2 in the HF cache (safetensors, float32), its Q4_0 GGUF in
LM Studio (hard-linked into text-generation-webui's models folder: one copy, with an alias), its Q8_0
pulled by Ollama from the hub (``hf.co/tiny-org/qwen2:Q8_0``). Real files, laid out as the tools write
them; a real scan makes them one model with three copies."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.discovery.test_scan_api import scan
from tests.discovery.trees import add_hub_repo, add_lmstudio, add_ollama, place, read_files, textgen_install

NAME = "tiny-org/qwen2"


@dataclass(frozen=True)
class LibraryMachine:
    hub: Path  # the HF cache's root
    lmstudio: Path  # LM Studio's Q4_0 file
    linked: Path  # the same file, hard-linked into text-generation-webui's models
    blob: Path  # Ollama's blob of the Q8_0


@pytest.fixture
def library_machine(tmp_path, monkeypatch, gguf_model_files) -> LibraryMachine:
    files = gguf_model_files.files
    hub = tmp_path / "hf" / "hub"
    add_hub_repo(hub, NAME, read_files(gguf_model_files.source))
    lmstudio = add_lmstudio(tmp_path / "lmstudio", NAME, "tiny-qwen2.Q4_0.gguf", files["Q4_0"])
    blob = add_ollama(tmp_path / "ollama", f"hf.co/{NAME}:Q8_0", files["Q8_0"])
    textgen = tmp_path / "text-generation-webui"
    linked = place(lmstudio, textgen_install(textgen) / lmstudio.name, "hardlink")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("MODELHUB_LMSTUDIO_MODELS", str(tmp_path / "lmstudio"))
    monkeypatch.setenv("MODELHUB_OLLAMA_MODELS", str(tmp_path / "ollama"))
    monkeypatch.setenv("MODELHUB_TEXTGEN_WEBUI", str(textgen))
    monkeypatch.setenv("MODELHUB_LIBRARIES", "lmstudio,ollama,text-generation-webui")
    return LibraryMachine(hub=hub, lmstudio=lmstudio, linked=linked, blob=blob)


def scanned_copies(client) -> dict[str, dict]:
    """Scan (POST /api/scan) and return the model's copies by library: huggingface, lmstudio, ollama."""
    status = scan(client)
    assert status["state"] == "finished", status
    copies = {copy["library"]: copy for copy in client.get(f"/api/models/{NAME}/copies").json}
    assert sorted(copies) == ["huggingface", "lmstudio", "ollama"], copies
    return copies
