"""Which copy a load or a measurement reads: ``copy_id`` in the request (an id of GET .../copies), default
the model's cache_path. A model found by a scan in two places — a float32 copy in the hub cache and a
float16 copy on a second disk — is loaded for real from each; the dtype transformers reports shows which
files the worker read, and every run records the copy it loaded."""

import json
import shutil
import time

import pytest
from click.testing import CliRunner

from modelhub.cli import main
from tests.discovery.test_scan_api import scan
from tests.discovery.trees import add_hub_repo, read_files
from tests.loading.conftest import Loader

pytestmark = pytest.mark.slow
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NAME = "tiny-org/llama"
QUICK = {"time_to_first_token": {"prompt_lengths": [8], "repeats": 1, "warmup": 0},
         "throughput": {"new_tokens": 4, "batch_sizes": [1], "repeats": 1, "warmup": 0},
         "perplexity": {"max_length": 32, "stride": 32}}


@pytest.fixture
def two_copies(tmp_path, tiny_models, monkeypatch):
    """The tiny Llama in the hub cache (float32, the primary copy) and on a second disk in float16."""
    import torch
    from transformers import AutoModelForCausalLM

    hub, disk2 = tmp_path / "hf" / "hub", tmp_path / "disk2"
    add_hub_repo(hub, NAME, read_files(tiny_models["llama"]))
    half = disk2 / NAME
    AutoModelForCausalLM.from_pretrained(tiny_models["llama"], dtype=torch.float16).save_pretrained(half)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_models["llama"] / name, half / name)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("MODELHUB_SECONDARY_CACHE", str(disk2))
    return half


@pytest.fixture
def scanned(database_url, tmp_path, two_copies):
    """An app (real workers) after a scan found both copies; yields (loader, {location: copy})."""
    from modelhub.app import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_LOAD_TIMEOUT": 120})
    loader = Loader(app)
    scan(loader.client)
    copies = {copy["location"]: copy for copy in loader.client.get(f"/api/models/{NAME}/copies").json}
    assert sorted(copies) == ["primary", "secondary"], copies
    yield loader, copies
    app.extensions["modelhub.supervisor"].shutdown()
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()



def test_a_load_reads_the_copy_asked_for_and_records_it(scanned):
    loader, copies = scanned
    model = loader.client.get(f"/api/models/{NAME}").json
    assert model["cache_path"] == copies["primary"]["path"]

    default = loader.load_and_wait(NAME)
    assert default["outcome"] == "success", default
    assert default["copy_path"] == copies["primary"]["path"]
    assert default["load_report"]["dtype"] == "float32"  # the hub cache's files

    response = loader.load(NAME, copy_id=copies["secondary"]["id"])
    assert response.status_code == 202, response.json
    assert response.json["copy_path"] == copies["secondary"]["path"]  # recorded when the run opens
    chosen = loader.wait(NAME)
    assert chosen["outcome"] == "success", chosen
    assert chosen["copy_path"] == copies["secondary"]["path"]
    assert chosen["load_report"]["dtype"] == "float16"  # the second disk's files, not the primary's
    listed = {attempt["id"]: attempt["copy_path"] for attempt in loader.attempts(NAME)["items"]}
    assert listed == {default["id"]: copies["primary"]["path"], chosen["id"]: copies["secondary"]["path"]}


@SQLITE_ONLY
def test_an_unknown_copy_is_a_409_naming_the_models_copies_and_nothing_starts(scanned):
    loader, copies = scanned
    other = loader.register("other", copies["secondary"]["path"])["model_name"]
    others_copy = loader.client.get(f"/api/models/{other}/copies").json[0]["id"]
    ids = sorted(copy["id"] for copy in copies.values())
    for path in (f"/api/models/{NAME}/load", f"/api/models/{NAME}/benchmark"):
        for wrong in (others_copy, 999_999, 9_223_372_036_854_775_808):
            response = loader.client.post(path, json={"copy_id": wrong})
            assert response.status_code == 409, response.json
            (message,) = response.json["errors"]["json"]["copy_id"]
            assert f"{NAME!r} has no copy {wrong}" in message
            assert f"its copies (GET /api/models/{NAME}/copies): {ids[0]}, {ids[1]}." in message
        for bad in ("1", True, 1.5, 0, None):
            response = loader.client.post(path, json={"copy_id": bad})
            assert response.status_code == 422 and "copy_id" in response.json["errors"]["json"], (bad, response.json)
    assert loader.attempts(NAME)["items"] == []
    assert loader.client.get(f"/api/models/{NAME}/measurements").json == []
    assert loader.status(NAME) == "unknown"


@SQLITE_ONLY
def test_a_missing_copy_is_a_409_saying_so(scanned, two_copies):
    loader, copies = scanned
    shutil.rmtree(two_copies)
    scan(loader.client)
    secondary = next(copy for copy in loader.client.get(f"/api/models/{NAME}/copies").json
                     if copy["id"] == copies["secondary"]["id"])
    assert secondary["missing"] is True
    for path in (f"/api/models/{NAME}/load", f"/api/models/{NAME}/benchmark"):
        response = loader.client.post(path, json={"copy_id": secondary["id"]})
        assert response.status_code == 409, response.json
        assert f"Copy {secondary['id']} of {NAME!r} ({secondary['path']}) is missing" in response.json["message"]
    assert loader.attempts(NAME)["items"] == [] and loader.status(NAME) == "unknown"


@SQLITE_ONLY
def test_a_load_asked_of_another_host_takes_no_copy_id(scanned):
    loader, copies = scanned
    response = loader.client.post(f"/api/models/{NAME}/load", json={"host": "elsewhere",
                                                                     "copy_id": copies["secondary"]["id"]})
    assert response.status_code == 422
    assert "copy_id chooses a copy for loads on this host" in response.json["errors"]["json"]["copy_id"][0]


@SQLITE_ONLY
def test_a_measurement_reads_the_copy_asked_for_and_records_it(scanned):
    loader, copies = scanned
    response = loader.client.post(f"/api/models/{NAME}/benchmark",
                                  json={"settings": QUICK, "copy_id": copies["secondary"]["id"]})
    assert response.status_code == 202, response.json
    assert response.json["copy_path"] == copies["secondary"]["path"]
    measurement = _measured(loader)
    assert measurement["outcome"] == "success", measurement
    assert measurement["copy_path"] == copies["secondary"]["path"]
    assert measurement["final_kwargs"] is not None


@SQLITE_ONLY
def test_modelhub_bench_takes_a_copy(scanned, monkeypatch, tmp_path):
    loader, copies = scanned
    monkeypatch.setenv("MODELHUB_DATABASE_URL", loader.app.config["SQLALCHEMY_DATABASE_URI"])
    bench = ["--data-dir", str(tmp_path / "cli"), "bench", NAME, "--json", "--copy"]
    refused = CliRunner().invoke(main, [*bench, "999999"])
    assert refused.exit_code == 1 and f"{NAME!r} has no copy 999999" in refused.output
    assert loader.client.get(f"/api/models/{NAME}/measurements").json == []

    measured = CliRunner().invoke(main, [*bench, str(copies["secondary"]["id"])], catch_exceptions=False)
    assert measured.exit_code == 0, measured.output
    record = json.loads(measured.stdout)
    assert record["outcome"] == "success" and record["copy_path"] == copies["secondary"]["path"]


def _measured(loader) -> dict:
    deadline = time.monotonic() + 120
    while (latest := loader.client.get(f"/api/models/{NAME}/measurements").json[0])["outcome"] == "running":
        assert time.monotonic() < deadline, "the measurement did not finish"
        time.sleep(0.1)
    return latest
