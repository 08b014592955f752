"""``PUT /api/models/{name}/primary-copy``: the user chooses which copy a load that names none reads (the
model's cache_path and cache_location). One guarded write, answered as GET answers the model; a rescan
keeps the choice while the copy is found, and the next plain load reads it (a real load of a tiny Llama
found in the hub cache in float32 and on a second disk in float16: the dtype says which files it read)."""

import shutil

import pytest

from modelhub.extensions import db
from modelhub.models import ModelCopy
from tests.api.test_copy_choice import NAME as TINY, scanned, two_copies  # noqa: F401 (fixtures)
from tests.discovery.test_scan_api import scan
from tests.views import library_copies
from tests.views.library_copies import GGUF_ONLY, NAME


@pytest.fixture
def libraries(app, tmp_path):
    """TinyLlama's six copies (HF cache, LM Studio x2, Ollama, a missing text-generation-webui file, a
    folder) and SmolLM's one, recorded as a scan records them; the HF cache's copy is the primary."""
    libraries = library_copies.build(tmp_path / "machine")
    with app.app_context():
        libraries.ids = library_copies.record(libraries)
    return libraries


def put(client, name: str, body, **headers):
    return client.put(f"/api/models/{name}/primary-copy", json=body, headers=headers)


def test_the_chosen_copy_becomes_the_models_cache_path_in_one_write(client, libraries, stored):
    hub, _, _, ollama, _, folder = libraries.copies[NAME]
    before = client.get(f"/api/models/{NAME}")
    assert (before.json["cache_location"], before.json["cache_path"]) == ("primary", hub["path"])

    chosen = put(client, NAME, {"copy_id": libraries.ids[NAME][3]})
    assert chosen.status_code == 200, chosen.json
    assert (chosen.json["cache_location"], chosen.json["cache_path"]) == ("secondary", ollama["path"])
    after = client.get(f"/api/models/{NAME}")
    assert chosen.json == after.json  # answered as GET answers the model
    assert chosen.headers["ETag"] == after.headers["ETag"] != before.headers["ETag"]
    row = stored(NAME)
    assert (row["cache_location"], row["cache_path"], row["version"]) == ("secondary", ollama["path"], 2)

    back = put(client, NAME, {"copy_id": libraries.ids[NAME][0]})
    assert (back.json["cache_location"], back.json["cache_path"]) == ("primary", hub["path"])
    assert stored(NAME)["version"] == 3
    # The copy it already reads: nothing to write, the same version.
    again = put(client, NAME, {"copy_id": libraries.ids[NAME][0]})
    assert again.status_code == 200 and again.headers["ETag"] == back.headers["ETag"]
    assert put(client, NAME, {"copy_id": float(libraries.ids[NAME][5])}).json["cache_path"] == folder["path"]
    # Only the path and its location changed: the rest of the model is as it was.
    moved = {key for key in before.json if before.json[key] != after.json[key]}
    assert moved - {"updated_at"} == {"cache_path", "cache_location", "version"}, moved
    assert stored(GGUF_ONLY)["version"] == 1  # the other model untouched


def test_a_custom_copy_stays_custom(app, client, libraries):
    with app.app_context():
        model_id = db.session.scalar(db.select(ModelCopy.model_id).where(ModelCopy.id == libraries.ids[NAME][0]))
        custom = ModelCopy(model_id=model_id, location="custom", library="custom", path="/mnt/models/tinyllama")
        db.session.add(custom)
        db.session.commit()
        custom_id = custom.id
    response = put(client, NAME, {"copy_id": custom_id})
    assert response.status_code == 200, response.json
    assert (response.json["cache_location"], response.json["cache_path"]) == ("custom", "/mnt/models/tinyllama")


def test_an_unknown_copy_is_a_409_naming_the_models_copies_and_nothing_changes(client, libraries, stored):
    ids = ", ".join(map(str, libraries.ids[NAME]))
    for wrong in (libraries.ids[GGUF_ONLY][0], 999_999, 9_223_372_036_854_775_808):
        response = put(client, NAME, {"copy_id": wrong})
        assert response.status_code == 409, response.json
        (message,) = response.json["errors"]["json"]["copy_id"]
        assert message == f"{NAME!r} has no copy {wrong}; its copies (GET /api/models/{NAME}/copies): {ids}."
    for bad in ({"copy_id": "1"}, {"copy_id": True}, {"copy_id": 1.5}, {"copy_id": 0}, {"copy_id": None}, {},
                {"copy_id": libraries.ids[NAME][3], "path": "/elsewhere"}):
        response = put(client, NAME, bad)
        assert response.status_code == 422, (bad, response.json)
        assert set(response.json["errors"]["json"]) <= {"copy_id", "path"}, (bad, response.json)
    assert client.put(f"/api/models/{NAME}/primary-copy", data="{", content_type="application/json").status_code == 400
    assert client.put(f"/api/models/{NAME}/primary-copy", data="x", content_type="text/plain").status_code == 415
    assert stored(NAME)["version"] == 1 and stored(NAME)["cache_location"] == "primary"


def test_a_missing_copy_is_a_409_saying_so_and_nothing_changes(client, libraries, stored):
    gone = libraries.ids[NAME][4]
    response = put(client, NAME, {"copy_id": gone})
    assert response.status_code == 409, response.json
    path = libraries.copies[NAME][4]["path"]
    assert response.json["message"].startswith(f"Copy {gone} of {NAME!r} ({path}) is missing: the latest scan did "
                                               "not find it")
    assert stored(NAME)["version"] == 1


def test_if_match_guards_the_write_as_patch_does(client, libraries, stored):
    etag = client.get(f"/api/models/{NAME}").headers["ETag"]
    assert client.patch(f"/api/models/{NAME}/config", json={"compatibility_notes": "tried"}).status_code == 200
    stale = put(client, NAME, {"copy_id": libraries.ids[NAME][1]}, **{"If-Match": etag})
    assert stale.status_code == 412, stale.json
    assert "was changed since you read it" in stale.json["message"]
    current = stale.headers["ETag"]
    assert current == client.get(f"/api/models/{NAME}").headers["ETag"] != etag
    assert stored(NAME)["cache_location"] == "primary"

    fresh = put(client, NAME, {"copy_id": libraries.ids[NAME][1]}, **{"If-Match": current})
    assert fresh.status_code == 200 and fresh.json["cache_path"] == libraries.copies[NAME][1]["path"]
    assert put(client, NAME, {"copy_id": libraries.ids[NAME][2]}, **{"If-Match": current}).status_code == 412
    assert put(client, NAME, {"copy_id": libraries.ids[NAME][2]}, **{"If-Match": "*"}).status_code == 200
    assert stored(NAME)["cache_path"] == libraries.copies[NAME][2]["path"]


def test_an_unknown_model_is_a_404(client, libraries):
    response = put(client, "nobody/here", {"copy_id": libraries.ids[NAME][0]})
    assert response.status_code == 404 and response.json["message"] == "No model named 'nobody/here' in the registry."
    refused = client.post("/api/models", json={"model_name": "acme/primary-copy"})
    assert refused.status_code == 422 and "primary-copy endpoint of model 'acme'" in str(refused.json)


@pytest.mark.slow
def test_a_rescan_keeps_the_choice_and_a_plain_load_reads_that_copy(scanned, two_copies):  # noqa: F811
    loader, copies = scanned
    client = loader.client
    chosen = put(client, TINY, {"copy_id": copies["secondary"]["id"]})
    assert chosen.status_code == 200, chosen.json
    assert (chosen.json["cache_location"], chosen.json["cache_path"]) == ("secondary", copies["secondary"]["path"])

    scan(client)
    model = client.get(f"/api/models/{TINY}")
    assert (model.json["cache_location"], model.json["cache_path"]) == ("secondary", copies["secondary"]["path"])
    assert model.headers["ETag"] == chosen.headers["ETag"]  # the rescan wrote nothing over the choice

    attempt = loader.load_and_wait(TINY)  # no copy_id: the model's primary copy, the one chosen
    assert attempt["outcome"] == "success", attempt
    assert attempt["copy_path"] == copies["secondary"]["path"]
    assert attempt["load_report"]["dtype"] == "float16"  # the second disk's files, not the hub cache's float32

    # The chosen copy goes: the next scan makes the copy still here the primary one, and it cannot be chosen.
    shutil.rmtree(two_copies)
    scan(client)
    model = client.get(f"/api/models/{TINY}").json
    assert (model["cache_location"], model["cache_path"]) == ("primary", copies["primary"]["path"])
    missing = put(client, TINY, {"copy_id": copies["secondary"]["id"]})
    assert missing.status_code == 409 and "is missing" in missing.json["message"]
