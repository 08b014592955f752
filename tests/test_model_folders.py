"""Custom cache paths whose symlinks lead out of the model folder are refused (422), nothing registered
or created; hub-cache snapshots (links into their repo's blobs) and links inside the folder are fine.
Also the model-name refusals: '..', '%2e%2e', NUL bytes, absurd lengths."""

import os

import pytest

from modelhub import model_folders


@pytest.fixture
def model_dir(tmp_path):
    directory = tmp_path / "disk2" / "my-llama"
    directory.mkdir(parents=True)
    (directory / "config.json").write_text('{"model_type": "llama"}')
    (directory / "model.safetensors").write_bytes(b"x" * 100)
    return directory


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "user" / ".ssh" / "id_ed25519"
    path.parent.mkdir(parents=True)
    path.write_text("PRIVATE KEY")
    return path


def _register(client, path):
    return client.post("/api/models", json={"model_name": "me/my-llama", "cache_location": "custom", "cache_path": str(path)})


def _refused(client, tmp_path, path, before):
    response = _register(client, path)
    assert response.status_code == 422, response.json
    (message,) = response.json["errors"]["json"]["cache_path"]
    assert client.get("/api/models").json["pagination"]["total"] == 0
    assert sorted(tmp_path.rglob("*")) == before
    return message


@pytest.mark.parametrize("link, target", [
    ("config.json", "secret"),
    ("README.md", "secret"),
    (".eval_results/mmlu.yaml", "secret"),
    ("tokenizer", "secret-folder"),  # a folder
    ("model-00002.safetensors", "missing"),  # broken, and outside
    ("weights.safetensors", "relative-escape"),
])
def test_links_leading_out_are_refused(client, model_dir, secret, tmp_path, link, target):
    source = model_dir / link
    source.parent.mkdir(exist_ok=True)
    if source.name == "config.json":
        source.unlink()
    destination = {"secret": secret, "secret-folder": secret.parent, "missing": tmp_path / "gone" / "x",
                   "relative-escape": "../../user/.ssh/id_ed25519"}[target]
    source.symlink_to(destination)
    expected = os.path.realpath(source)
    before = sorted(tmp_path.rglob("*"))
    message = _refused(client, tmp_path, model_dir, before)
    assert message == (
        f"Symlinks lead out of the model folder: {link} -> {expected}. modelhub reads only files inside the folder "
        "(or a hub-cache snapshot's blobs): copy those files in, or register the folder they are in.")


def test_many_links_out_are_summarised(client, model_dir, secret, tmp_path):
    for i in range(5):
        (model_dir / f"shard-{i}.safetensors").symlink_to(secret)
    message = _refused(client, tmp_path, model_dir, sorted(tmp_path.rglob("*")))
    assert "shard-0.safetensors" in message and "(and 2 more)" in message


def test_links_inside_the_folder_are_accepted(client, model_dir):
    (model_dir / "nested").mkdir()
    (model_dir / "nested" / "tokenizer.json").write_text("{}")
    (model_dir / "tokenizer.json").symlink_to("nested/tokenizer.json")
    (model_dir / "alias").symlink_to(model_dir)  # a loop back to itself is inside
    assert _register(client, model_dir).status_code == 201


def test_a_link_to_the_folder_itself_is_the_users_choice(client, model_dir, tmp_path):
    link = tmp_path / "link-to-llama"
    link.symlink_to(model_dir)
    assert _register(client, link).status_code == 201


def _snapshot(cache, repo="models--org--llama"):
    snapshot = cache / repo / "snapshots" / "abc123"
    blobs = cache / repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    (blobs / "c0ffee").write_text('{"model_type": "llama"}')
    (snapshot / "config.json").symlink_to("../../blobs/c0ffee")  # as huggingface_hub writes them
    return snapshot


def test_a_hub_cache_snapshot_linking_into_its_blobs_is_accepted(client, tmp_path):
    snapshot = _snapshot(tmp_path / "hub")
    (tmp_path / "hub" / "blobs").mkdir()  # a shared blob store beside the repos
    (tmp_path / "hub" / "blobs" / "feed").write_bytes(b"w")
    (snapshot / "model.safetensors").symlink_to("../../../blobs/feed")
    assert _register(client, snapshot).status_code == 201


def test_a_hub_cache_snapshot_linking_into_another_repo_is_refused(client, tmp_path):
    _snapshot(tmp_path / "hub", "models--someone--else")
    snapshot = _snapshot(tmp_path / "hub")
    (snapshot / "model.safetensors").symlink_to("../../../models--someone--else/blobs/c0ffee")
    message = _refused(client, tmp_path, snapshot, sorted(tmp_path.rglob("*")))
    assert message.startswith("Symlinks lead out of the model folder: model.safetensors -> ")


def test_a_folder_too_big_to_be_a_model_is_refused(client, model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(model_folders, "MAX_ENTRIES", 5)
    for i in range(5):
        (model_dir / f"f{i}").write_text("")
    message = _refused(client, tmp_path, model_dir, sorted(tmp_path.rglob("*")))
    assert message == f"{model_dir} holds more than 5 files and folders: this does not look like a model directory."


@pytest.mark.parametrize("name", ["..", "../etc", "org/..", "org/../x", "%2e%2e", "org/%2e%2e", "org%2fname", "a\x00b",
                                  "a" * 10_000, "org/name/extra", "/abs", "org\\name", ".hidden", " spaced"])
@pytest.mark.parametrize("field", ["model_name", "hf_path"])
def test_bad_model_names_are_refused_and_nothing_is_created(client, tmp_path, name, field):
    before = sorted(tmp_path.rglob("*"))
    body = {"model_name": "org/ok", field: name}
    response = client.post("/api/models", json=body)
    assert response.status_code == 422
    assert response.json["errors"]["json"][field]
    assert client.get("/api/models").json["pagination"]["total"] == 0
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("path", ["/api/models/%2e%2e", "/api/models/..%2f..%2fetc", "/api/models/a%00b",
                                  "/api/models/" + "a" * 5000])
def test_bad_names_in_addresses_are_4xx(client, path):
    assert 400 <= client.get(path).status_code < 500
    assert 400 <= client.patch(path + "/config", json={"compatibility_notes": "x"}).status_code < 500
    assert 400 <= client.post(path.replace("/api/models", "/models") + "/load").status_code < 500
