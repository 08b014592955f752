"""A custom cache location is an absolute path to an existing directory holding config.json; every other
path is refused with a clear message, and nothing is registered or created."""

import pytest


@pytest.fixture
def model_dir(tmp_path):
    directory = tmp_path / "disk2" / "my-llama"
    directory.mkdir(parents=True)
    (directory / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')
    (directory / "model.safetensors").write_bytes(b"x" * 100)
    return directory


def test_a_real_model_directory_is_accepted(client, model_dir):
    response = client.post("/api/models", json={"model_name": "me/my-llama", "cache_location": "custom",
                                                 "cache_path": str(model_dir)})
    assert response.status_code == 201
    assert response.json["cache_path"] == str(model_dir)


@pytest.mark.parametrize(
    "path, message",
    [
        ("models/my-llama", "Must be an absolute path (starting with /), not 'models/my-llama'."),
        ("{root}/disk2/../disk2/my-llama", "Must not contain '..': give the directory's real absolute path."),
        ("{root}/disk2/%2e%2e/disk2/my-llama", "Must not contain '..': give the directory's real absolute path."),
        ("{root}/disk2/nothing-here", "No such directory: {root}/disk2/nothing-here"),
        ("{root}/disk2/my-llama/config.json", "Not a directory: {root}/disk2/my-llama/config.json (give the folder that holds config.json)."),
        ("{root}/disk2", "No config.json in {root}/disk2: this does not look like a model directory."),
        ("{root}/disk2/my-\x00llama", "Must not contain NUL characters."),
        ("/" + "a" * 5000, "Longer than the maximum of 4096 characters."),
    ],
    ids=["relative", "dotdot", "encoded-dotdot", "missing", "a-file", "no-config", "nul", "absurd-length"],
)
def test_bad_custom_paths_are_refused_and_nothing_is_created(client, model_dir, tmp_path, path, message):
    before = sorted(p for p in tmp_path.rglob("*"))
    path = path.format(root=tmp_path)
    response = client.post("/api/models", json={"model_name": "me/my-llama", "cache_location": "custom", "cache_path": path})
    assert response.status_code == 422
    assert response.json["errors"]["json"]["cache_path"] == [message.format(root=tmp_path)]
    assert client.get("/api/models").json["pagination"]["total"] == 0
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_custom_location_needs_a_path(client):
    response = client.post("/api/models", json={"model_name": "me/my-llama", "cache_location": "custom"})
    assert response.status_code == 422
    assert response.json["errors"]["json"]["cache_path"] == ["A custom location needs cache_path: the directory holding the model."]


def test_a_symlink_to_a_model_directory_is_followed(client, model_dir, tmp_path):
    link = tmp_path / "link-to-llama"
    link.symlink_to(model_dir)
    response = client.post("/api/models", json={"model_name": "me/linked", "cache_location": "custom", "cache_path": str(link)})
    assert response.status_code == 201
