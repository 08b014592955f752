"""``GET /api/models/{name}/preflight?copy_id=``: the preflight of one copy of a model's files, the one a
load with the same copy_id would read (default the model's cache_path), and the answer says which it
checked. A scan of real libraries (tests/library_machine.py) finds one tiny Qwen2 three times: safetensors
in the HF cache, a Q4_0 GGUF in LM Studio, a Q8_0 GGUF in Ollama; each is checked for what it is."""

import os

import pytest

from modelhub.discovery.gguf_header import read_facts
from modelhub.preflight import host as host_facts
from tests.library_machine import NAME, library_machine, scanned_copies  # noqa: F401  (a fixture)

API = f"/api/models/{NAME}/preflight"
GIB = 2**30


@pytest.fixture
def copies(app, client, library_machine):  # noqa: F811
    """The model's copies after a scan, by library; checked against a 4 GiB worker memory limit."""
    app.config["MODELHUB_WORKER_MEMORY_LIMIT"] = 4 * GIB
    host_facts.forget(app)
    return scanned_copies(client)


def weights(body: dict) -> dict:
    return next(term for term in body["devices"][0]["terms"] if term["name"] == "weights")


def test_the_default_is_the_primary_copy_and_the_answer_says_so(client, copies):
    primary = copies["huggingface"]
    assert client.get(f"/api/models/{NAME}").json["cache_path"] == primary["path"]
    body = client.get(API).json
    assert body["verdict"] == "fits", body
    assert body["copy"] == {
        "id": primary["id"], "path": primary["path"], "library": "huggingface", "library_name": "HF cache",
        "label": primary["label"], "location": "primary", "weight_format": "safetensors", "quantization": None,
        "missing": False, "text": "safetensors, HF cache", "where": body["copy"]["where"]}
    assert body["copy"]["where"].startswith("HF cache: ")
    assert body["metadata"]["source"] == f"cache_path: {primary['path']}"
    assert body["metadata"]["quantization"] is None and body["metadata"]["dtype"] == "float32"
    assert "dequantized" not in weights(body)["detail"]


@pytest.mark.parametrize("library, quantization, name", [("lmstudio", "Q4_0", "LM Studio"),
                                                         ("ollama", "Q8_0", "Ollama")])
def test_a_gguf_copy_is_checked_dequantized(client, copies, library, quantization, name):
    chosen = copies[library]
    body = client.get(API, query_string={"copy_id": chosen["id"]}).json
    assert body["verdict"] == "fits", body
    copy = body["copy"]
    assert (copy["id"], copy["path"], copy["library"], copy["library_name"]) == (chosen["id"], chosen["path"], library, name)
    assert (copy["quantization"], copy["weight_format"], copy["label"]) == (f"GGUF {quantization}", "gguf", chosen["label"])
    assert copy["text"] == f"GGUF {quantization}, {name}"
    # What was read is that file's header: its tensors, dequantized to float32 as transformers loads them.
    parameters = read_facts(chosen["path"]).parameter_count
    assert body["metadata"]["source"] == f"GGUF file: {chosen['path']}"
    assert body["metadata"]["quantization"] == f"GGUF {quantization}" and body["metadata"]["parameters"] == parameters
    assert body["metadata"]["weights_bytes"] < os.path.getsize(chosen["path"])
    assert f"dequantized from GGUF {quantization} to float32" in weights(body)["detail"]


def test_each_copy_is_counted_from_its_own_files(client, copies):
    stored = {library: client.get(API, query_string={"copy_id": copy["id"]}).json["metadata"]["weights_bytes"]
              for library, copy in copies.items()}
    # float32 safetensors > Q8_0 (8.5 bits a weight) > Q4_0 (4.5 bits a weight)
    assert stored["huggingface"] > stored["ollama"] > stored["lmstudio"], stored
    default = client.get(API).json["metadata"]["weights_bytes"]
    assert default == stored["huggingface"]


def test_an_unknown_copy_is_a_409_as_for_a_load(client, copies):
    client.post("/api/models", json={"model_name": "other/model", "cache_location": "custom",
                                     "cache_path": copies["ollama"]["path"]})
    others = client.get("/api/models/other/model/copies").json[0]["id"]
    ids = ", ".join(str(copy_id) for copy_id in sorted(copy["id"] for copy in copies.values()))
    for wrong in (others, 999_999, 9_223_372_036_854_775_808):
        response = client.get(API, query_string={"copy_id": wrong})
        assert response.status_code == 409, response.json
        (message,) = response.json["errors"]["query"]["copy_id"]
        assert message == f"{NAME!r} has no copy {wrong}; its copies (GET /api/models/{NAME}/copies): {ids}."
        load = client.post(f"/api/models/{NAME}/load", json={"copy_id": wrong})  # the load says the same
        assert load.status_code == 409 and load.json["errors"]["json"]["copy_id"] == [message]
    for bad in ("abc", "0", "-3", "1.5", ""):
        response = client.get(API, query_string={"copy_id": bad})
        assert response.status_code == 422 and "copy_id" in response.json["errors"]["query"], (bad, response.json)


def test_a_copy_the_latest_scan_did_not_find_is_a_409(client, copies, library_machine):  # noqa: F811
    os.remove(library_machine.blob)
    scanned = {copy["id"]: copy for copy in client.get(f"/api/models/{NAME}/copies").json}
    assert scanned[copies["ollama"]["id"]]["missing"] is False  # not scanned since: on record, not on disk
    body = client.get(API, query_string={"copy_id": copies["ollama"]["id"]}).json
    # Never the hub cache's files in its place: that would answer for another copy.
    assert (body["verdict"], body["metadata"], body["devices"]) == ("unknown", None, [])
    assert body["reason"].startswith(f"The copy asked for is not on disk now ({library_machine.blob})")
    assert body["copy"]["id"] == copies["ollama"]["id"]

    scanned_copies_missing = _rescan(client)
    assert scanned_copies_missing[copies["ollama"]["id"]]["missing"] is True
    response = client.get(API, query_string={"copy_id": copies["ollama"]["id"]})
    assert response.status_code == 409
    assert response.json["message"].startswith(
        f"Copy {copies['ollama']['id']} of {NAME!r} ({copies['ollama']['path']}) is missing: the latest scan did not find it")


def _rescan(client) -> dict[int, dict]:
    from tests.discovery.test_scan_api import scan

    assert scan(client)["state"] == "finished"
    return {copy["id"]: copy for copy in client.get(f"/api/models/{NAME}/copies").json}


def test_a_model_without_files_names_no_copy(client, app):
    assert client.post("/api/models", json={"model_name": "nowhere/model"}).status_code == 201
    body = client.get("/api/models/nowhere/model/preflight").json
    assert (body["verdict"], body["copy"]) == ("unknown", None)
    response = client.get("/api/models/nowhere/model/preflight", query_string={"copy_id": 1})
    assert response.status_code == 409
    assert response.json["errors"]["query"]["copy_id"] == [
        "'nowhere/model' has no copy 1; its copies (GET /api/models/nowhere/model/copies): none (it has no copy on record)."]
