"""Loads of real tiny models through POST /api/models/{name}/load: outcomes, statuses, records."""

import json
import os
import shutil
import time

import pytest

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
pytestmark = pytest.mark.slow


def test_a_load_that_works_records_everything_and_makes_the_model_compatible(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], compatibility_notes="my own notes")
    response = loader.load("tiny/llama")
    assert response.status_code == 202
    assert response.json["outcome"] == "running"
    assert loader.status("tiny/llama") == "testing"  # committed before the worker starts

    attempt = loader.wait("tiny/llama")

    assert attempt["outcome"] == "success", attempt
    assert loader.status("tiny/llama") == "compatible"
    assert attempt["smoke_test"]["new_tokens"] > 0
    assert attempt["environment"]["torch"].startswith("2.13")
    assert attempt["final_kwargs"]["use_safetensors"] is True
    assert attempt["previous_status"] == "unknown"
    state = loader.attempts("tiny/llama")["load_state"]
    assert state["state"] == "loaded"
    os.kill(state["pid"], 0)  # the worker holding the model is alive
    assert loader.client.get("/api/models/tiny/llama").json["compatibility_notes"] == "my own notes"

    assert loader.client.post("/api/models/tiny/llama/unload").json == {"state": "idle"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(state["pid"]):
        time.sleep(0.1)
    assert not _alive(state["pid"]), "unload must end the worker (and free its memory)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists"; it holds no memory.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


@SQLITE_ONLY
@pytest.mark.parametrize(
    "config, check",
    [
        ({"torch_dtype": "bfloat16", "attn_implementation": "eager", "device_map": "auto", "low_cpu_mem_usage": True},
         lambda kw: kw["dtype"] == "bfloat16" and kw["attn_implementation"] == "eager" and "low_cpu_mem_usage" not in kw),
        ({"attn_implementation": "eager", "torch_dtype": "bfloat16"}, lambda kw: kw["dtype"] == "bfloat16"),
        ({"device_map": "auto", "low_cpu_mem_usage": True, "max_memory": {"0": "15GiB"}},
         lambda kw: kw["device_map"] == "auto" and "0" not in (kw.get("max_memory") or {})),
        ({"load_in_8bit": True, "device_map": "auto"},
         lambda kw: kw["quantization_config"]["__class__"] == "BitsAndBytesConfig"
         and kw["quantization_config"]["load_in_8bit"] is True),
        # Everything offloaded to disk: the smoke test must still run (the model reports the meta device).
        ({"device_map": "auto", "max_memory": {"cpu": "100KiB"}}, lambda kw: kw["offload_folder"].endswith("offload/tiny_llama")),
    ],
    ids=["default", "phi-rocm", "large-models", "quantized", "disk-offload"],
)
def test_the_seeds_example_configs_load(loader, tiny_models, config, check):
    loader.register("tiny/llama", tiny_models["llama"], load_config=config)
    attempt = loader.load_and_wait("tiny/llama")
    assert attempt["outcome"] == "success", attempt
    assert check(attempt["final_kwargs"]), attempt["final_kwargs"]
    assert attempt["plugin_changes"], "the plugins' translations are recorded"


@SQLITE_ONLY
def test_each_model_family_loads(loader, tiny_models):
    for kind in ("phi", "gpt2"):
        loader.register(f"tiny/{kind}", tiny_models[kind])
        assert loader.load_and_wait(f"tiny/{kind}")["outcome"] == "success"
        assert loader.status(f"tiny/{kind}") == "compatible"


@SQLITE_ONLY
def test_one_model_at_a_time_by_default(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"])
    loader.register("tiny/gpt2", tiny_models["gpt2"])
    loader.load_and_wait("tiny/llama")
    first_pid = loader.attempts("tiny/llama")["load_state"]["pid"]
    loader.load_and_wait("tiny/gpt2")
    assert loader.attempts("tiny/llama")["load_state"] == {"state": "idle"}
    assert loader.attempts("tiny/gpt2")["load_state"]["state"] == "loaded"
    time.sleep(0.5)
    assert not _alive(first_pid)


def broken_copy(source, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def test_incompatible_is_not_loaded_again_until_reset_or_forced(loader, tiny_models, tmp_path):
    directory = broken_copy(tiny_models["llama"], tmp_path, "broken")
    loader.register("tiny/broken", directory)
    (directory / "config.json").unlink()
    loader.load_and_wait("tiny/broken")

    refused = loader.load("tiny/broken")
    assert refused.status_code == 409
    assert "marked incompatible" in refused.json["message"] and "unknown" in refused.json["message"]
    assert "seed" not in refused.json["message"] and "Reset Failed Model" not in refused.json["message"]
    assert loader.load("tiny/broken", force=True).status_code == 202
    loader.wait("tiny/broken")
    loader.client.patch("/api/models/tiny/broken/config", json={"compatibility_status": "unknown"})
    assert loader.load("tiny/broken").status_code == 202
    loader.wait("tiny/broken")


@SQLITE_ONLY
def test_alternating_outcomes_make_the_model_degraded(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"])
    assert loader.load_and_wait("tiny/llama")["outcome"] == "success"
    loader.client.patch("/api/models/tiny/llama/config", json={"load_config": {"fault_oom": True}})
    failed = loader.load_and_wait("tiny/llama")
    assert failed["outcome"] == "failure"
    assert loader.status("tiny/llama") == "degraded"  # a failure right after a success
    assert failed["error_type"] == "OutOfMemoryError"
    assert "memory" in failed["explanation"]
    assert failed["suggestion"]["device_map"] == "auto"


def test_trust_remote_code_is_refused(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"])
    response = loader.client.patch("/api/models/tiny/llama/config", json={"load_config": {"trust_remote_code": True}})
    assert response.status_code == 422
    assert "allow-remote-code" in json.dumps(response.json["errors"])


def test_unknown_load_config_keys_are_refused_naming_the_known_ones(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"])
    response = loader.client.patch("/api/models/tiny/llama/config", json={"load_config": {"foo_bar": 1}})
    assert response.status_code == 422
    (message,) = response.json["errors"]["json"]["load_config"]
    assert message.startswith("Unknown key 'foo_bar'. Known keys: ")
    for key in ("attn_implementation", "device_map", "dtype", "load_in_8bit", "max_memory", "torch_dtype"):
        assert key in message


def test_unload_of_a_model_not_loaded_is_409(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"])
    response = loader.client.post("/api/models/tiny/llama/unload")
    assert response.status_code == 409
    assert response.json["message"] == "'tiny/llama' is not loaded."
    assert loader.client.post("/api/models/nope/load").status_code == 404


@SQLITE_ONLY
def test_non_finite_logits_fail_the_smoke_test(loader, tiny_models, tmp_path):
    """fp16 NaNs are a classic ROCm failure: a model that loads but computes NaN is not compatible."""
    from safetensors.torch import load_file, save_file

    directory = broken_copy(tiny_models["llama"], tmp_path, "nan")
    weights = load_file(directory / "model.safetensors")
    weights["model.norm.weight"].fill_(float("nan"))
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    loader.register("tiny/nan", directory)

    attempt = loader.load_and_wait("tiny/nan")

    assert attempt["outcome"] == "failure"
    assert "non-finite logits" in attempt["error_message"]
    assert attempt["smoke_test"] is None
    assert loader.status("tiny/nan") == "incompatible"
