"""The libraries as a scan finds them, on the API and the pages: LM Studio, Ollama and text-generation-webui
trees laid out exactly as those tools write them (real GGUF headers, manifests naming blobs by digest, a
hard link between two libraries, an unreadable file), scanned through POST /api/scan."""

import html
import re

import pytest

from tests.discovery.test_scan_api import scan
from tests.discovery.trees import add_lmstudio, add_ollama, place, textgen_install, write_gguf


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """Llama GGUFs in every tool's default place under a home folder of their own: LM Studio holds its
    Q4_K_M (hard-linked into text-generation-webui) and Q8_0, Ollama pulled the Q4_K_M as ``tinyllama``
    (the same bytes: the same model), text-generation-webui also has a file that is no GGUF."""
    home = tmp_path / "home-dir"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf-hub"))
    (home / "hf-hub").mkdir(parents=True)
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    monkeypatch.setenv("MODELHUB_LIBRARIES", "lmstudio,ollama,text-generation-webui")  # the default (tests say none)
    sources = tmp_path / "sources"
    q4, q8 = write_gguf(sources / "tinyllama.Q4_K_M.gguf", "Q4_K_M"), write_gguf(sources / "tinyllama.Q8_0.gguf", "Q8_0")
    lmstudio = home / ".lmstudio" / "models"
    lm_q4 = add_lmstudio(lmstudio, "TheBloke/TinyLlama-GGUF", q4.name, q4)
    add_lmstudio(lmstudio, "TheBloke/TinyLlama-GGUF", q8.name, q8)
    blob = add_ollama(home / ".ollama" / "models", "tinyllama", q4)
    textgen = textgen_install(home / "text-generation-webui")
    place(lm_q4, textgen / q4.name, "hardlink")
    (textgen / "notes.Q4_K_M.gguf").write_bytes(b"not a GGUF file at all")
    return {"home": home, "lmstudio": lmstudio, "blob": blob, "textgen": textgen}


def test_a_scan_shows_each_library_with_what_it_holds(client, machine):
    status = scan(client)
    assert status["state"] == "finished", status
    roots = {root["library"]: root for root in status["roots"]}
    assert set(roots) == {"huggingface", "lmstudio", "ollama", "text-generation-webui"}
    assert (roots["lmstudio"]["root"], roots["lmstudio"]["copies"]) == (str(machine["lmstudio"]), 2)
    assert (roots["ollama"]["copies"], roots["ollama"]["size_bytes"]) == (1, machine["blob"].stat().st_size)
    textgen = roots["text-generation-webui"]
    assert (textgen["copies"], textgen["linked"]) == (0, 1)  # its only model file is LM Studio's, hard-linked
    assert [p["path"] for p in textgen["problems"]] == [str(machine["textgen"] / "notes.Q4_K_M.gguf")]

    (name,) = status["summary"]["added"]
    copies = client.get(f"/api/models/{name}/copies").json
    by_library = sorted((c["library"], c["quantization"], c["weight_format"]) for c in copies)
    assert by_library == [("lmstudio", "GGUF Q4_K_M", "gguf"), ("lmstudio", "GGUF Q8_0", "gguf"),
                          ("ollama", "GGUF Q4_K_M", "gguf")]
    ollama = next(c for c in copies if c["library"] == "ollama")
    assert ollama["path"] == str(machine["blob"]) and ollama["label"].startswith("tinyllama")
    assert ollama["digest"] == "sha256:" + machine["blob"].name.removeprefix("sha256-")
    assert all(c["parameter_count"] and c["context_length"] == 256 for c in copies)

    card = html.unescape(client.get(f"/models/{name}/card").text)
    texts = [" ".join(re.sub(r"<[^>]+>", " ", badge).split())
             for badge in re.findall(r'<li class="badge copy-badge.*?</li>', card, re.S)]
    assert texts == ["LM Studio GGUF Q4_K_M, Q8_0", "Ollama GGUF Q4_K_M"]
    page = client.get("/models").text  # the roots follow the first render: the page asks for them once shown
    assert 'hx-get="/scan/roots" hx-trigger="load"' in page and '<details class="library-roots">' not in page
    section = html.unescape(client.get("/scan/roots").text)
    assert section.lstrip().startswith('<details class="library-roots">')
    assert "~/.lmstudio/models" in section and "~/.ollama/models" in section
    assert "notes.Q4_K_M.gguf" in section  # the problem, on its library's row
