"""Which copy a verdict was for: each row of where a model loads (``GET /api/models/{name}/compatibility``,
modelhub/compatibility.py) names the copy its newest result read, as the registry knows it ("GGUF Q4_0,
LM Studio"), so "compatible here" learned from a GGUF file is not taken for the safetensors folder's.
One tiny Qwen2 found by a real scan in the HF cache, LM Studio and Ollama (tests/library_machine.py);
results recorded as runs record them, and real loads of two of its copies."""

import pytest

from modelhub import compatibility, registry
from modelhub.extensions import db
from modelhub.loading import attempts
from modelhub.models import ModelCopy
from tests.library_machine import NAME, library_machine, scanned_copies  # noqa: F401  (a fixture)
from tests.test_compatibility import on_host

API = f"/api/models/{NAME}/compatibility"


@pytest.fixture
def copies(app, client, library_machine):  # noqa: F811
    copies = scanned_copies(client)
    with app.app_context():
        yield copies


def loaded(path, outcome="success"):
    """A finished attempt on the model that read the copy at ``path``, in the current environment."""
    attempt = attempts.begin(registry.get_model(NAME), copy_path=path)
    return attempts.finish(attempt.id, outcome)


def rows(client) -> dict[str, dict]:
    return {row["host"]: row for row in client.get(API).json["environments"]}


def test_each_environments_row_names_the_copy_its_result_read(app, client, copies, monkeypatch):
    on_host(app, "laptop", monkeypatch)
    loaded(copies["lmstudio"]["path"])
    on_host(app, "desktop", monkeypatch)
    loaded(copies["huggingface"]["path"], "failure")
    found = rows(client)
    laptop, desktop = found["laptop"], found["desktop"]
    assert (laptop["status"], laptop["copy_path"]) == ("compatible", copies["lmstudio"]["path"])
    assert laptop["copy"] == {
        "id": copies["lmstudio"]["id"], "path": copies["lmstudio"]["path"], "library": "lmstudio",
        "library_name": "LM Studio", "label": f"{NAME}/tiny-qwen2.Q4_0.gguf", "location": "secondary",
        "weight_format": "gguf", "quantization": "GGUF Q4_0", "missing": False, "text": "GGUF Q4_0, LM Studio",
        "where": f"LM Studio: {NAME}/tiny-qwen2.Q4_0.gguf"}
    assert (desktop["status"], desktop["copy_path"]) == ("incompatible", copies["huggingface"]["path"])
    assert (desktop["copy"]["id"], desktop["copy"]["library"]) == (copies["huggingface"]["id"], "huggingface")
    assert desktop["copy"]["text"] == "safetensors, HF cache" and desktop["copy"]["quantization"] is None


def test_the_row_names_the_copy_of_its_newest_result(app, client, copies, monkeypatch):
    on_host(app, "laptop", monkeypatch)
    loaded(copies["huggingface"]["path"])
    assert rows(client)["laptop"]["copy"]["text"] == "safetensors, HF cache"
    loaded(copies["ollama"]["path"])
    row = rows(client)["laptop"]
    assert (row["successes"], row["copy"]["id"]) == (2, copies["ollama"]["id"])
    assert (row["copy"]["text"], row["copy"]["label"]) == ("GGUF Q8_0, Ollama", f"hf.co/{NAME}:Q8_0")
    # The same on the pages' side: the rows the modal's "Where it loads" is built from.
    (result,) = compatibility.results(app, registry.get_model(NAME))
    assert result.copy_path == copies["ollama"]["path"] and result.copy.where == f"Ollama: hf.co/{NAME}:Q8_0"


def test_a_path_reached_through_a_link_is_that_copy(app, client, copies, library_machine, monkeypatch):  # noqa: F811
    lmstudio = db.session.get(ModelCopy, copies["lmstudio"]["id"])
    assert [alias["path"] for alias in lmstudio.aliases] == [str(library_machine.linked)]  # text-generation-webui's
    on_host(app, "laptop", monkeypatch)
    loaded(str(library_machine.linked))
    row = rows(client)["laptop"]
    assert row["copy_path"] == str(library_machine.linked)
    assert (row["copy"]["id"], row["copy"]["path"]) == (copies["lmstudio"]["id"], str(library_machine.linked))
    assert row["copy"]["text"] == "GGUF Q4_0, LM Studio"


def test_a_path_no_copy_holds_now_and_no_path_at_all(app, client, copies, tmp_path, monkeypatch):
    on_host(app, "laptop", monkeypatch)
    gone = str(tmp_path / "deleted" / "tiny-qwen2.Q5_0.gguf")
    loaded(gone)
    row = rows(client)["laptop"]
    assert row["copy_path"] == gone
    assert {key: row["copy"][key] for key in ("id", "path", "library", "quantization", "text")} == {
        "id": None, "path": gone, "library": None, "quantization": None, "text": gone}
    on_host(app, "desktop", monkeypatch)
    loaded(None)  # an attempt recorded before copies were (or files the worker took from the hub by id)
    row = rows(client)["desktop"]
    assert (row["copy_path"], row["copy"]) == (None, None)


def test_a_copy_gone_missing_since_says_so(app, client, copies, library_machine, monkeypatch):  # noqa: F811
    from tests.discovery.test_scan_api import scan

    on_host(app, "laptop", monkeypatch)
    loaded(copies["ollama"]["path"])
    library_machine.blob.unlink()
    assert scan(client)["state"] == "finished"
    copy = rows(client)["laptop"]["copy"]
    assert (copy["id"], copy["missing"], copy["text"]) == (copies["ollama"]["id"], True, "GGUF Q8_0, Ollama")


# Real loads --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_real_loads_of_two_copies_each_name_theirs(database_url, library_machine):  # noqa: F811
    """Load the Ollama Q8_0 blob, then the HF cache's safetensors: the row here says which was read last."""
    from modelhub.app import create_app
    from tests.loading.conftest import Loader

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_LOAD_TIMEOUT": 120})
    loader = Loader(app)
    try:
        copies = scanned_copies(loader.client)
        attempt = loader.load_and_wait(NAME, copy_id=copies["ollama"]["id"])
        assert attempt["outcome"] == "success", attempt
        assert attempt["load_report"]["gguf"]["quantization"] == "Q8_0"  # the blob was what loaded
        (here,) = [row for row in loader.client.get(API).json["environments"] if row["here"]]
        assert (here["status"], here["copy_path"]) == ("compatible", str(library_machine.blob))
        assert (here["copy"]["id"], here["copy"]["text"]) == (copies["ollama"]["id"], "GGUF Q8_0, Ollama")

        attempt = loader.load_and_wait(NAME)  # the default: the model's cache_path, the HF cache's folder
        assert attempt["outcome"] == "success" and "gguf" not in attempt["load_report"], attempt
        (here,) = [row for row in loader.client.get(API).json["environments"] if row["here"]]
        assert (here["successes"], here["copy"]["id"]) == (2, copies["huggingface"]["id"])
        assert here["copy"]["text"] == "safetensors, HF cache"
    finally:
        app.extensions["modelhub.supervisor"].shutdown()
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
