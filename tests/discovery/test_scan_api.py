"""Discovery end to end: POST /api/scan and ``modelhub scan`` on real cache trees, then a model found
by the scan loads; the registry follows the files as they go and come back."""

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
    assert client.post("/api/scan").status_code == 202
    deadline = time.monotonic() + 30
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
