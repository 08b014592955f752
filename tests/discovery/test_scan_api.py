"""Discovery end to end: POST /api/scan and ``modelhub scan`` on real cache trees, then a model found
by the scan loads; the registry follows the files as they go and come back."""

import json
import shutil
import socket
import subprocess
import time

import pytest
import requests

from modelhub.extensions import db
from modelhub.models import ScanState
from tests.discovery.trees import copy_plain
from tests.support import MODELHUB, LiveServer


def scan(client) -> dict:
    """Start a scan through the API and wait for its end (60 s: a loaded CI machine); its final status."""
    assert client.post("/api/scan").status_code == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get("/api/scan").json
        if status["state"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError("the scan did not finish")


def test_scan_through_the_api(client, caches):
    hub, disk2 = caches
    status = scan(client)
    assert status["state"] == "finished", status
    assert sorted(status["summary"]["added"]) == ["gpt2-tiny", "tiny-org/llama"]
    problems = status["summary"]["problems"]
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem["path"].endswith("broken") and "config.json" in problem["message"]

    copies = client.get("/api/models/tiny-org/llama/copies").json
    assert sorted(c["location"] for c in copies) == ["primary", "secondary"]
    assert all(c["weight_format"] == "safetensors" and c["model_type"] == "llama" for c in copies)
    assert client.get("/api/models/tiny-org/llama").json["cache_location"] == "primary"
    (version,) = client.get("/api/models/tiny-org/llama/configs").json["items"]
    assert (version["number"], version["source"], version["via"]) == (1, "created", "scan")

    client.patch("/api/models/gpt2-tiny/config", json={"compatibility_notes": "found on disk 2"})
    shutil.rmtree(disk2 / "gpt2-tiny")
    status = scan(client)
    assert status["summary"]["went_missing"] == ["gpt2-tiny"]
    gpt2 = client.get("/api/models/gpt2-tiny").json
    assert gpt2["missing"] is True and gpt2["compatibility_notes"] == "found on disk 2"


def test_a_second_scan_while_one_runs_is_409(client, caches, app):
    """Another live process of this host is scanning: refused, and its progress is what is shown."""
    other = subprocess.Popen(["sleep", "60"])
    try:
        with app.app_context():
            db.session.add(ScanState(host=socket.gethostname(), state="running", done=3, total=10,
                                     owner_pid=other.pid, started_at=1.0))
            db.session.commit()
        response = client.post("/api/scan")
        assert response.status_code == 409
        assert "already running" in response.json["message"]
        assert client.get("/api/scan").json == {"state": "running", "done": 3, "total": 10, "started_at": 1.0}
    finally:
        other.kill()
        other.wait()
    # Its process is gone (a server killed mid-scan): the scan reads as failed, and a new one may start.
    status = client.get("/api/scan").json
    assert status["state"] == "failed" and "Interrupted" in status["error"]
    assert scan(client)["state"] == "finished"


@pytest.mark.slow
def test_every_process_shows_the_same_scan(database_url, tmp_path, caches):
    """Two servers on one registry (as ``serve --workers 4`` gives): a scan started through one is
    followed and summarised through the other."""
    first = LiveServer(tmp_path / "home", database_url)
    second = LiveServer(tmp_path / "home", database_url)
    first.start(timeout=90)
    second.start(timeout=90)
    try:
        assert requests.post(f"{first.url}/api/scan", timeout=30).status_code == 202
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = requests.get(f"{second.url}/api/scan", timeout=30).json()
            seen.append(status["state"])
            if status["state"] != "running":
                break
        assert status["state"] == "finished", status
        assert sorted(status["summary"]["added"]) == ["gpt2-tiny", "tiny-org/llama"]
        assert requests.get(f"{first.url}/api/scan", timeout=30).json() == status
    finally:
        second.stop()
        first.stop()


@pytest.mark.slow
def test_modelhub_scan_command(tmp_path, caches):
    result = subprocess.run([MODELHUB, "--data-dir", str(tmp_path / "home"), "scan"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Scan done: 2 new model(s), 3 new cop(ies), 0 back, 0 missing." in result.stdout
    assert "could not read" in result.stderr and "broken" in result.stderr
    listed = subprocess.run([MODELHUB, "--data-dir", str(tmp_path / "home"), "list"], capture_output=True, text=True)
    assert "tiny-org/llama" in listed.stdout and "gpt2-tiny" in listed.stdout


def test_a_custom_directory_becomes_a_copy_that_scans_watch(client, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    directory = copy_plain(tmp_path / "mine", "llama", tiny_models["llama"])
    client.post("/api/models", json={"model_name": "me/llama", "cache_location": "custom", "cache_path": str(directory)})
    (copy,) = client.get("/api/models/me/llama/copies").json
    assert (copy["location"], copy["model_type"], copy["weight_format"]) == ("custom", "llama", "safetensors")

    shutil.rmtree(directory)
    assert scan(client)["summary"]["went_missing"] == ["me/llama"]
    assert client.get("/api/models/me/llama").json["missing"] is True


@pytest.mark.slow
def test_serve_can_scan_at_start(tmp_path, caches):
    from tests.support import LiveServer

    server = LiveServer(tmp_path / "home", env={"MODELHUB_SCAN_ON_START": "1"})
    server.start()
    try:
        import requests

        names = [m["model_name"] for m in requests.get(f"{server.url}/api/models", timeout=5).json()["items"]]
        assert names == ["gpt2-tiny", "tiny-org/llama"]
        assert "Scan done: 2 new model(s)" in server.log
    finally:
        server.stop()


def test_scores_of_new_models_come_from_their_cards_and_bad_cards_do_not_stop_the_scan(client, caches):
    hub, disk2 = caches
    (disk2 / "gpt2-tiny" / "README.md").write_text(
        "---\nmodel-index:\n- name: gpt2-tiny\n  results:\n  - task: {type: text-generation}\n"
        "    dataset: {name: MMLU, type: cais/mmlu}\n    metrics:\n    - {type: acc, value: 0.72}\n---\n# gpt2-tiny\n"
    )
    (disk2 / "tiny-org" / "llama" / "README.md").write_text("---\nmodel-index: [unclosed\n---\n")
    status = scan(client)
    assert status["state"] == "finished"
    gpt2 = client.get("/api/models/gpt2-tiny").json
    assert gpt2["mmlu_score"] == 72.0
    assert gpt2["metric_sources"]["mmlu_score"]["source"] == "card"
    problems = [p for p in status["summary"]["problems"] if p["path"] == "tiny-org/llama"]
    assert problems and problems[0]["message"].startswith("model card:")
    assert client.get("/api/models/tiny-org/llama").status_code == 200


# The tools' libraries and GGUF files, through the API


@pytest.fixture
def tool_libraries(tmp_path, monkeypatch):
    """LM Studio holding two quantizations of one repo; Ollama holding the same Q4_K_M bytes (pulled
    separately) and a model of its own; text-generation-webui with a loose GGUF file; an empty hub cache."""
    from tests.discovery.trees import add_lmstudio, add_ollama, textgen_install, write_gguf

    home = tmp_path / "home-dir"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    monkeypatch.delenv("MODELHUB_LIBRARIES", raising=False)  # every tool, as by default
    (tmp_path / "hub").mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    lmstudio, ollama = home / ".lmstudio" / "models", tmp_path / "ollama-store"
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama))
    q4 = write_gguf(tmp_path / "src" / "q4.gguf", "Q4_K_M", name="Tiny")
    add_lmstudio(lmstudio, "me/Tiny-GGUF", "tiny-Q4_K_M.gguf", q4)
    add_lmstudio(lmstudio, "me/Tiny-GGUF", "tiny-Q8_0.gguf", write_gguf(tmp_path / "src" / "q8.gguf", "Q8_0", name="Tiny"))
    add_ollama(ollama, "tiny:latest", q4)
    add_ollama(ollama, "phi3:mini", write_gguf(tmp_path / "src" / "phi3.gguf", "Q4_0", name="Phi 3"))
    models = textgen_install(home / "text-generation-webui")
    write_gguf(models / "mistral-7b.Q5_K_M.gguf", "Q5_K_M", name="Mistral")
    return home, lmstudio, ollama, models


def test_the_tools_libraries_through_the_api(client, tool_libraries):
    home, lmstudio, ollama, models = tool_libraries
    status = scan(client)
    assert status["state"] == "finished", status
    assert sorted(status["summary"]["added"]) == ["me/Tiny-GGUF", "mistral-7b", "phi3-mini"]
    assert status["summary"]["problems"] == []

    copies = {c["label"]: c for c in client.get("/api/models/me/Tiny-GGUF/copies").json}
    assert sorted(copies) == ["me/Tiny-GGUF/tiny-Q4_K_M.gguf", "me/Tiny-GGUF/tiny-Q8_0.gguf", "tiny:latest"]
    blob = copies["tiny:latest"]
    assert (blob["library"], blob["location"], blob["library_root"]) == ("ollama", "secondary", str(ollama))
    assert blob["digest"] == copies["me/Tiny-GGUF/tiny-Q4_K_M.gguf"]["digest"]  # the same bytes: one model
    q8 = copies["me/Tiny-GGUF/tiny-Q8_0.gguf"]
    assert (q8["library"], q8["weight_format"], q8["quantization"], q8["architecture"]) == ("lmstudio", "gguf", "GGUF Q8_0", "llama")
    assert q8["context_length"] == 256 and q8["parameter_count"] > 0 and q8["digest"] is None
    (mistral,) = client.get("/api/models/mistral-7b/copies").json
    assert (mistral["library"], mistral["label"]) == ("text-generation-webui", "mistral-7b.Q5_K_M.gguf")
    tiny = client.get("/api/models/me/Tiny-GGUF").json
    assert tiny["cache_path"] == str(lmstudio / "me" / "Tiny-GGUF" / "tiny-Q4_K_M.gguf")

    client.patch("/api/models/phi3-mini/config", json={"compatibility_notes": "from Ollama"})
    shutil.rmtree(ollama / "manifests" / "registry.ollama.ai" / "library" / "phi3")  # ollama rm phi3:mini
    status = scan(client)
    assert status["summary"]["went_missing"] == ["phi3-mini"]
    phi = client.get("/api/models/phi3-mini").json
    assert phi["missing"] is True and phi["compatibility_notes"] == "from Ollama"


def test_a_custom_path_may_be_a_gguf_file_or_a_folder_of_them(client, tmp_path, monkeypatch):
    from tests.discovery.trees import write_gguf

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    file = write_gguf(tmp_path / "mine" / "tiny.Q4_K_M.gguf", "Q4_K_M")
    write_gguf(tmp_path / "mine" / "tiny.Q8_0.gguf", "Q8_0")
    response = client.post("/api/models", json={"model_name": "me/tiny", "cache_location": "custom", "cache_path": str(file)})
    assert response.status_code == 201, response.json
    (copy,) = client.get("/api/models/me/tiny/copies").json
    assert (copy["path"], copy["library"], copy["quantization"]) == (str(file), "custom", "GGUF Q4_K_M")
    assert client.get("/api/models/me/tiny").json["quantization"] == "GGUF Q4_K_M"

    response = client.post("/api/models", json={"model_name": "me/tiny-all", "cache_location": "custom",
                                                "cache_path": str(tmp_path / "mine")})
    assert response.status_code == 201, response.json
    labels = [c["label"] for c in client.get("/api/models/me/tiny-all/copies").json]
    assert labels == ["tiny.Q4_K_M.gguf", "tiny.Q8_0.gguf"]

    (tmp_path / "notes.gguf").write_text("not a model")
    response = client.post("/api/models", json={"model_name": "me/notes", "cache_location": "custom",
                                                "cache_path": str(tmp_path / "notes.gguf")})
    assert response.status_code == 422
    assert response.json["errors"]["json"]["cache_path"] == [
        f"Not a directory: {tmp_path / 'notes.gguf'} (give the folder that holds config.json)."]

    file.unlink()
    assert scan(client)["summary"]["went_missing"] == ["me/tiny"]


@pytest.mark.slow
def test_modelhub_scan_says_where_it_looked_and_what_each_place_holds(tmp_path, tool_libraries):
    home, lmstudio, ollama, models = tool_libraries
    command = [MODELHUB, "--data-dir", str(tmp_path / "data"), "scan"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Scan done: 3 new model(s)" in result.stdout
    where = result.stdout.split("Where:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in where] == ["HF", "LM", "Ollama", "text-generation-webui"]
    assert f"LM Studio              {lmstudio}: 2 copies" in where[1]
    assert where[2].startswith(f"  Ollama                 {ollama}: 2 copies")
    assert f"{models}: 1 copy" in where[3]
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=120)
    roots = {root["library"]: root for root in json.loads(as_json.stdout)["roots"]}
    assert (roots["lmstudio"]["root"], roots["lmstudio"]["copies"]) == (str(lmstudio), 2)
