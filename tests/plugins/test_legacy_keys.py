"""legacy_keys: configs written for older transformers become today's keys, each translation noted."""

import pytest
import torch
from marshmallow import ValidationError

from modelhub.plugins import legacy_keys
from tests.plugins.support import adjust, host_with, load, model_info, notes_of


@pytest.fixture
def legacy():
    return host_with(legacy_keys, "legacy_keys")


@pytest.mark.parametrize("key, value, message", [
    ("torch_dtype", "bfloat17", "Must be one of"),
    ("low_cpu_mem_usage", "yes", "Must be true or false."),
    ("load_in_8bit", 1, "Must be true or false."),
    ("bnb_4bit_quant_type", "int3", "Must be one of: nf4, fp4."),
    ("bnb_4bit_compute_dtype", "float8", "Must be one of"),
    ("llm_int8_threshold", "6.0", "Must be a number"),
    ("llm_int8_threshold", -1, "Must be greater than 0"),
])
def test_fields_refuse_bad_values(legacy, key, value, message):
    with pytest.raises(ValidationError) as refused:
        legacy.fields[key].deserialize(value)
    assert message in str(refused.value)


def test_torch_dtype_becomes_dtype(legacy, tiny_models, environment):
    kwargs, changes = adjust(legacy, model_info(tiny_models["llama"]), {"torch_dtype": "bfloat16"}, environment)
    assert kwargs == {"dtype": "bfloat16"}
    assert changes == [{"plugin": "legacy_keys", "set": {"dtype": "bfloat16"}, "removed": ["torch_dtype"],
                        "notes": ["torch_dtype='bfloat16' renamed to dtype (transformers 5 deprecates torch_dtype)."]}]


def test_dtype_wins_over_torch_dtype(legacy, tiny_models, environment):
    kwargs, changes = adjust(legacy, model_info(tiny_models["llama"]),
                             {"torch_dtype": "float16", "dtype": "bfloat16"}, environment)
    assert kwargs == {"dtype": "bfloat16"}
    assert "torch_dtype='float16' ignored: dtype='bfloat16' is also set and wins" in notes_of(changes, "legacy_keys")


def test_low_cpu_mem_usage_is_dropped(legacy, tiny_models, environment):
    kwargs, changes = adjust(legacy, model_info(tiny_models["llama"]), {"low_cpu_mem_usage": True}, environment)
    assert kwargs == {}
    assert "transformers 5 always loads with low memory use" in notes_of(changes, "legacy_keys")


def test_bitsandbytes_keys_move_into_quantization_config(legacy, tiny_models, environment):
    load_config = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                   "device_map": "auto", "quantization_config": {"bnb_4bit_compute_dtype": "bfloat16"}}
    kwargs, changes = adjust(legacy, model_info(tiny_models["llama"]), load_config, environment)
    assert kwargs == {"device_map": "auto", "quantization_config": {
        "bnb_4bit_compute_dtype": "bfloat16", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True}}
    assert "moved into quantization_config: transformers 5 removed" in notes_of(changes, "legacy_keys")


def test_quantization_config_wins_over_an_old_key(legacy, tiny_models, environment):
    load_config = {"llm_int8_threshold": 4.0, "quantization_config": {"load_in_8bit": True, "llm_int8_threshold": 5.0}}
    kwargs, changes = adjust(legacy, model_info(tiny_models["llama"]), load_config, environment)
    assert kwargs["quantization_config"] == {"load_in_8bit": True, "llm_int8_threshold": 5.0}
    assert "llm_int8_threshold=4.0 ignored: quantization_config sets llm_int8_threshold=5.0" in notes_of(changes, "legacy_keys")


def test_false_flags_are_dropped(legacy, tiny_models, environment):
    kwargs, changes = adjust(legacy, model_info(tiny_models["llama"]), {"load_in_8bit": False}, environment)
    assert kwargs == {}
    assert "load_in_8bit=false dropped" in notes_of(changes, "legacy_keys")


def test_runs_before_every_other_plugin(host, tiny_models, environment):
    _, changes = adjust(host, model_info(tiny_models["llama"]), {"torch_dtype": "bfloat16"}, environment)
    assert changes[0]["plugin"] == "legacy_keys"


def test_seed_torch_dtype_loads_in_bfloat16(host, tiny_models, environment):
    loaded, kwargs, _ = load(host, model_info(tiny_models["phi"]), {"torch_dtype": "bfloat16"}, environment)
    assert "torch_dtype" not in kwargs
    assert loaded.model.dtype == torch.bfloat16
