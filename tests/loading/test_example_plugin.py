"""A third-party plugin, pip-installed from tests/plugin_packages through its entry point, takes effect
through every hook it implements: load_config_fields, describe_environment, adjust_load_kwargs and
load_attempt_finished."""

import json

import pytest

from modelhub.app import create_app

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def test_example_plugin_takes_effect_through_every_hook(loader, tiny_models, tmp_path):
    # load_config_fields: its key is accepted at save time...
    loader.register("tiny/llama", tiny_models["llama"], load_config={"example_tag": "bf16-eager", "torch_dtype": "bfloat16"})
    attempt = loader.load_and_wait("tiny/llama")
    assert attempt["outcome"] == "success", attempt

    # adjust_load_kwargs: the tag is taken out of the kwargs, the change attributed to the plugin
    (change,) = [c for c in attempt["plugin_changes"] if c["plugin"] == "example"]
    assert change == {"plugin": "example", "removed": ["example_tag"],
                      "notes": ["configuration tagged 'bf16-eager' for tiny/llama"]}
    assert "example_tag" not in attempt["final_kwargs"]
    # describe_environment: its fact is in the recorded environment
    assert attempt["environment"]["example"]["hostname"]
    # load_attempt_finished: it heard the outcome
    lines = (tmp_path / "example-log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"model": "tiny/llama", "outcome": "success", "tag": "bf16-eager"}]


def test_without_the_plugin_its_key_is_unknown(database_url, monkeypatch):
    monkeypatch.setenv("MODELHUB_LOAD_PLUGINS", "default_loader,legacy_keys")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    client = app.test_client()
    response = client.post("/api/models", json={"model_name": "gpt2", "load_config": {"example_tag": "x"}})
    assert response.status_code == 422
    assert response.json["errors"]["json"]["load_config"][0].startswith("Unknown key 'example_tag'. Known keys: ")
    names = [p["name"] for p in client.get("/api/plugins").json]
    assert names == ["default_loader", "legacy_keys"]
