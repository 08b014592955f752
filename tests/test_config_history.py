"""The load_config history recorded by the registry itself: every change a version, whichever way it
arrives (registration, edits, discovery, runs), nothing for the same text saved again, numbering that
continues after the versions migration 0009 wrote, and the diff a person reads."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from modelhub import config_history, registry
from modelhub.config_diff import diff
from modelhub.database import migrations, migrations_dir
from modelhub.discovery.sync import apply_scan
from modelhub.discovery.types import FoundModel, Location, ScanReport
from modelhub.loading import attempts
from modelhub.schemas import ModelCreateSchema

EAGER = '{"attn_implementation": "eager"}'
BF16 = '{"attn_implementation": "eager", "torch_dtype": "bfloat16"}'


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def register(name: str, **fields):
    return registry.create_model(ModelCreateSchema().load({"model_name": name, **fields}))


def stored_versions(app, name: str) -> list[dict]:
    """The model's versions straight from the database, oldest first."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(text(
                "SELECT v.id, v.number, v.load_config, v.source, v.via, v.host, v.restored_from FROM load_config_version v "
                "JOIN modelregistry m ON m.id = v.model_id WHERE m.model_name = :name ORDER BY v.number"),
                {"name": name}).mappings()]
    finally:
        engine.dispose()


def test_registering_makes_version_1_and_each_change_the_next(app, ctx):
    app.config["MODELHUB_HOST_NAME"] = "rocm-desktop"
    register("microsoft/phi-2", load_config=EAGER)
    registry.update_model("microsoft/phi-2", {"load_config": BF16})
    registry.update_model("microsoft/phi-2", {"load_config": None})

    versions = stored_versions(app, "microsoft/phi-2")
    assert [(v["number"], v["source"], v["load_config"]) for v in versions] == [
        (1, "created", EAGER), (2, "typed", BF16), (3, "typed", None)]
    assert {v["host"] for v in versions} == {"rocm-desktop"}
    assert config_history.history(registry.get_model("microsoft/phi-2")).current == 3


def test_the_same_text_saved_again_or_other_fields_make_no_version(app, ctx):
    register("gpt2", load_config=EAGER)
    registry.update_model("gpt2", {"load_config": EAGER})
    registry.update_model("gpt2", {"compatibility_notes": "fine", "mmlu_score": 30.0})
    registry.update_model("gpt2", {"load_config": EAGER, "compatibility_status": "compatible"})

    assert [v["number"] for v in stored_versions(app, "gpt2")] == [1]


def test_a_change_of_spacing_is_a_version_whose_diff_says_only_the_formatting_changed(app, ctx):
    register("gpt2", load_config=EAGER)
    registry.update_model("gpt2", {"load_config": '{"attn_implementation":   "eager"}'})

    newest = config_history.history(registry.get_model("gpt2")).versions[0]
    assert newest.number == 2 and newest.diff.only_formatting
    assert "+{\"attn_implementation\":   \"eager\"}" in newest.diff.text


def test_who_made_a_change_is_recorded_from_the_surface(app, ctx):
    register("gpt2")
    with config_history.made_by("suggestion", via="page"):
        registry.update_model("gpt2", {"load_config": '{"device_map": "auto"}'})
    registry.update_model("gpt2", {"load_config": EAGER})  # nothing said: typed

    assert [(v["source"], v["via"]) for v in stored_versions(app, "gpt2")] == [
        ("created", None), ("suggestion", "page"), ("typed", None)]


def test_models_found_by_a_scan_get_version_1_created(app, ctx):
    found = FoundModel(hf_path="TheBloke/llama-GPTQ", location="primary", path="/cache/hub/TheBloke--llama-GPTQ",
                       quantization="GPTQ")
    summary = apply_scan(ScanReport(found=[found], roots=[Location("primary", Path("/cache/hub"))]))

    assert summary.added == ["TheBloke/llama-GPTQ"]
    assert [(v["number"], v["source"], v["load_config"]) for v in stored_versions(app, "TheBloke/llama-GPTQ")] == [
        (1, "created", None)]


def test_a_write_that_fails_leaves_no_version(app, ctx):
    register("gpt2")
    from modelhub.exceptions import PreconditionFailed

    with pytest.raises(PreconditionFailed):
        registry.update_model("gpt2", {"load_config": EAGER}, if_match=frozenset({"999.1"}))

    assert [v["number"] for v in stored_versions(app, "gpt2")] == [1]


def test_a_run_records_the_version_in_force_and_the_history_counts_its_loads(app, ctx):
    model = register("gpt2", load_config=EAGER)
    failed = attempts.begin(model)
    attempts.finish(failed.id, "failure", error_type="RuntimeError", error_message="HIP out of memory")
    registry.update_model("gpt2", {"load_config": BF16})
    worked = attempts.begin(registry.get_model("gpt2"))
    attempts.finish(worked.id, "success")

    versions = stored_versions(app, "gpt2")
    assert attempts.recent(registry.get_model("gpt2"))[1].config_version_id == versions[0]["id"]
    assert attempts.recent(registry.get_model("gpt2"))[0].config_version_id == versions[1]["id"]
    history = config_history.history(registry.get_model("gpt2"))
    assert [(v.number, v.loads) for v in history.versions] == [(2, {"success": 1}), (1, {"failure": 1})]
    # Clients and the modal name the version by its number, read with the run.
    listed = app.test_client().get("/api/models/gpt2/attempts").json["items"]
    assert [(a["outcome"], a["config_version"]) for a in listed] == [("success", 2), ("failure", 1)]


def test_a_restore_is_a_new_version_equal_to_the_old_one(app, ctx):
    register("gpt2", load_config=EAGER)
    registry.update_model("gpt2", {"load_config": BF16})

    restored = config_history.restore("gpt2", 1, if_match=None, via="api")

    assert (restored.number, restored.source, restored.restored_from, restored.load_config) == (3, "restore", 1, EAGER)
    assert registry.get_model("gpt2").load_config == EAGER
    assert [c["key"] for c in restored.diff.removed] == ["torch_dtype"]


def test_numbering_continues_after_the_versions_migration_0009_wrote(app, database_url):
    """A model registered before the history existed has version 1, "existing": its first change is 2."""
    engine = create_engine(database_url)
    try:
        with app.app_context():
            migrations(app).downgrade(directory=migrations_dir(), revision="0008")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO modelregistry (model_name, hf_path, cache_location, compatibility_status,"
                                    " load_config, missing, created_at, updated_at, version) VALUES ('old/model', "
                                    "'old/model', 'primary', 'compatible', :config, false, CURRENT_TIMESTAMP, "
                                    "CURRENT_TIMESTAMP, 1)"), {"config": EAGER})
        with app.app_context():
            migrations(app).upgrade(directory=migrations_dir())
    finally:
        engine.dispose()
    response = app.test_client().patch("/api/models/old/model/config", json={"load_config": BF16})

    assert response.status_code == 200, response.json
    assert [(v["number"], v["source"], v["load_config"]) for v in stored_versions(app, "old/model")] == [
        (1, "existing", EAGER), (2, "typed", BF16)]


def test_concurrent_edits_of_one_model_number_their_versions_without_gap_or_twice(app, ctx):
    """Writers racing on one model: each change is one version, numbered in the order the writes
    committed, and the newest is the config in force (what the next load runs)."""
    register("gpt2")
    texts = [json.dumps({"max_memory": {"0": f"{size}GiB"}}) for size in range(1, 17)]

    def write(config: str) -> int:
        return app.test_client().patch("/api/models/gpt2/config", json={"load_config": config}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(write, texts)) == {200}

    versions = stored_versions(app, "gpt2")
    assert [v["number"] for v in versions] == list(range(1, len(texts) + 2))
    assert sorted(v["load_config"] for v in versions[1:]) == sorted(texts)
    assert registry.get_model("gpt2").load_config == versions[-1]["load_config"]


# ---- the diff ------------------------------------------------------------------------------------


def test_the_diff_names_keys_added_removed_and_changed_nested_ones_by_path():
    before = '{"torch_dtype": "float16", "max_memory": {"0": "10GiB"}, "low_cpu_mem_usage": true}'
    after = '{"torch_dtype": "bfloat16", "max_memory": {"0": "10GiB", "cpu": "30GiB"}, "device_map": "auto"}'

    result = diff(before, after)

    assert result.added == [{"key": "device_map", "value": "auto"}, {"key": "max_memory.cpu", "value": "30GiB"}]
    assert result.removed == [{"key": "low_cpu_mem_usage", "value": True}]
    assert result.changed == [{"key": "torch_dtype", "from": "float16", "to": "bfloat16"}]
    assert not result.only_formatting and result.comparable


def test_the_diff_from_the_defaults_adds_every_key_and_tells_1_from_true():
    assert diff(None, EAGER).added == [{"key": "attn_implementation", "value": "eager"}]
    assert diff(EAGER, None).removed == [{"key": "attn_implementation", "value": "eager"}]
    assert diff('{"load_in_8bit": 1}', '{"load_in_8bit": true}').changed == [
        {"key": "load_in_8bit", "from": 1, "to": True}]
    assert diff(None, None).text == "" and not diff(None, None).only_formatting


def test_a_text_that_is_not_a_json_object_has_only_a_text_diff():
    result = diff('{"a": 1', EAGER)
    assert not result.comparable and result.added == [] and "+" + EAGER in result.text
