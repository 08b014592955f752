"""device_map: placement keys checked on save, made to fit this machine, and real offloaded loads."""

import sys

import pytest
import torch
from marshmallow import ValidationError

from modelhub.loading.types import LoadRefused
from modelhub.plugins import device_map
from tests.plugins.support import (adjust, apply_suggestion, copy_model, generate, host_with, load, model_info,
                                   notes_of)

TWO_GPUS = [{"index": 0, "name": "GPU 0", "memory_bytes": 16 * 2**30}, {"index": 1, "name": "GPU 1", "memory_bytes": 8 * 2**30}]


@pytest.fixture
def plugin():
    return host_with(device_map, "device_map")


@pytest.fixture
def pickle_model(tiny_models, tmp_path):
    """The tiny Llama with its weights as pytorch_model.bin (transformers 5's save_pretrained only writes safetensors)."""
    from transformers import AutoModelForCausalLM

    directory = copy_model(tiny_models["llama"], tmp_path / "pickled")
    (directory / "model.safetensors").unlink()
    torch.save(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).state_dict(), directory / "pytorch_model.bin")
    return directory


@pytest.mark.parametrize("key, value, message", [
    ("device_map", "gpu", "Must be one of auto, balanced, balanced_low_0, sequential, cpu, cuda, mps, 'cuda:N'"),
    ("device_map", {}, "non-empty object"),
    ("device_map", {"model.layers": "gpu0"}, "Device 'gpu0' for module 'model.layers' must be a GPU index"),
    ("device_map", {"lm_head": -1}, "must be a GPU index"),
    ("max_memory", {"0": "15 gigs"}, "Budget '15 gigs' for '0' must be a size like \"15GiB\""),
    ("max_memory", {"0": "15Gb"}, "must be a size like"),  # accelerate would read gigabits
    ("max_memory", {"gpu0": "15GiB"}, "Unknown device 'gpu0'"),
    ("max_memory", {"\u00b2": "15GiB"}, "Unknown device"),  # a digit to str.isdigit(), not to int()
    ("max_memory", {"cpu": True}, "must be a size like"),
    ("max_memory", {"cpu": -5}, "must be a size like"),
    ("max_memory", "15GiB", "Must be a non-empty object"),
    ("offload_folder", "", "Length must be between 1 and 1000."),
])
def test_fields_refuse_bad_values(host, key, value, message):
    with pytest.raises(ValidationError) as refused:
        host.fields[key].deserialize(value)
    assert message in str(refused.value)


@pytest.mark.parametrize("key, value", [
    ("device_map", "auto"), ("device_map", "cuda:1"), ("device_map", {"model": 0, "lm_head": "cpu", "x": "disk"}),
    ("max_memory", {"0": "15GiB", "1": "500MB", "cpu": "1.5GB", "disk": 10**12}),
])
def test_fields_accept_good_values(host, key, value):
    assert host.fields[key].deserialize(value) == value


def test_gpu_keys_become_ints_and_missing_gpus_are_dropped(plugin, tiny_models, environment):
    two_gpus = {**environment, "gpus": TWO_GPUS}
    load_config = {"max_memory": {"0": "15GiB", "1": "7GiB", "2": "1GiB", "cpu": "30GiB"}}
    kwargs, changes = adjust(plugin, model_info(tiny_models["llama"]), load_config, two_gpus)
    assert kwargs["max_memory"] == {0: "15GiB", 1: "7GiB", "cpu": "30GiB"}
    assert kwargs["device_map"] == "auto"
    notes = notes_of(changes, "device_map")
    assert "max_memory['2']='1GiB' dropped: this machine has 2 GPU(s)" in notes
    assert "max_memory keys '0', '1' turned into integers" in notes
    assert "device_map='auto' added: transformers ignores max_memory without a device_map" in notes


def test_seed_max_memory_on_a_machine_without_gpu_loads(host, tiny_models, environment):
    if environment["gpus"]:
        pytest.skip("this machine has a GPU")
    load_config = {"device_map": "auto", "max_memory": {"0": "15GiB", "cpu": "30GiB"}}
    loaded, kwargs, changes = load(host, model_info(tiny_models["llama"]), load_config, environment)
    assert kwargs["max_memory"] == {"cpu": "30GiB"}
    notes = notes_of(changes, "device_map")
    assert "max_memory['0']='15GiB' dropped: this machine has 0 GPU(s)" in notes
    assert "max_memory now only budgets cpu" in notes
    assert loaded.model.device.type == "cpu" and len(generate(loaded)) == 3


def test_tiny_cpu_budget_offloads_to_disk(host, tiny_models, environment):
    loaded, kwargs, _ = load(host, model_info(tiny_models["llama"]), {"max_memory": {"cpu": "100KiB"}}, environment)
    assert kwargs["device_map"] == "auto"
    assert loaded.model.hf_device_map == {"": "disk"}
    assert len(generate(loaded)) == 3


def test_pickle_weights_offloaded_to_disk_use_the_default_offload_folder(host, pickle_model, environment, tmp_path):
    load_config = {"allow_pickle_weights": True, "device_map": "auto", "max_memory": {"cpu": "100KiB"}}
    loaded, kwargs, changes = load(host, model_info(pickle_model, name="org/pickled"), load_config, environment)
    assert kwargs["offload_folder"] == str(tmp_path / "home" / "offload" / "org_pickled")  # under MODELHUB_HOME
    assert "offload_folder set to" in notes_of(changes, "device_map")
    assert loaded.model.hf_device_map == {"": "disk"} and len(generate(loaded)) == 3


def test_missing_offload_folder_is_explained(host, pickle_model, environment):
    model = model_info(pickle_model)
    kwargs = {"device_map": "auto", "max_memory": {"cpu": "100KiB"}}  # as if no plugin had added a folder
    with pytest.raises(ValueError) as raised:
        host.hook.load_model(model=model, kwargs=kwargs, environment=environment)
    explanation = host.hook.explain_failure(model=model, error=raised.value, load_config=kwargs, kwargs=kwargs,
                                            environment=environment)
    assert "re-saved to a folder" in explanation.cause
    fixed = apply_suggestion(kwargs, explanation.suggestion)
    assert host.hook.load_model(model=model, kwargs=fixed, environment=environment).model.hf_device_map == {"": "disk"}


def test_gpu_device_map_without_that_gpu_is_refused(plugin, tiny_models, environment):
    for load_config, environment_gpus, suggestion in [({"device_map": "cuda"}, [], "cpu"),
                                                      ({"device_map": {"model": 2, "lm_head": "cpu"}}, TWO_GPUS, "auto")]:
        with pytest.raises(LoadRefused) as refused:
            adjust(plugin, model_info(tiny_models["llama"]), load_config, {**environment, "gpus": environment_gpus})
        assert f"this machine has {len(environment_gpus)} GPU(s)" in str(refused.value)
        assert refused.value.suggestion == {"device_map": suggestion}


def test_missing_accelerate_is_refused(plugin, tiny_models, environment, monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)
    with pytest.raises(LoadRefused) as refused:
        adjust(plugin, model_info(tiny_models["llama"]), {"device_map": "auto"}, environment)
    assert "pip install accelerate==1.15.0" in str(refused.value)


def test_without_placement_keys_nothing_changes(plugin, tiny_models, environment):
    assert adjust(plugin, model_info(tiny_models["llama"]), {"dtype": "float16"}, environment) == ({"dtype": "float16"}, [])
