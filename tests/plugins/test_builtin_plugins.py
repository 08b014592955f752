"""The built-in plugins together: each registers with its keys, and the documented example configs load."""

import pytest
import torch

from tests.plugins.support import generate, load, model_info

KEYS = {
    "default_loader": ["dtype", "revision"],
    "legacy_keys": ["bnb_4bit_compute_dtype", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
                    "llm_int8_threshold", "load_in_4bit", "load_in_8bit", "low_cpu_mem_usage", "torch_dtype"],
    "rocm_eager_attention": ["attn_implementation"],
    "bitsandbytes": ["quantization_config"],
    "device_map": ["device_map", "max_memory", "offload_folder"],
    "gptq": [],
    "safety": ["allow_pickle_weights", "trust_remote_code"],
}
# Which hooks each implements: load_config_fields where it owns keys, adjust_load_kwargs where it rewrites them,
# plan_load where its keys change a load's memory (preflight), propose_configs where auto-configure's steps
# change its keys (modelhub/autoconfigure/rules.py).
HOOKS = {
    "default_loader": ["adjust_load_kwargs", "describe_environment", "explain_failure", "load_config_fields",
                       "load_model", "plan_load", "propose_configs"],
    "legacy_keys": ["adjust_load_kwargs", "load_config_fields"],
    "rocm_eager_attention": ["adjust_load_kwargs", "load_config_fields", "plan_load", "propose_configs"],
    "bitsandbytes": ["adjust_load_kwargs", "explain_failure", "load_config_fields", "plan_load", "propose_configs"],
    "device_map": ["adjust_load_kwargs", "explain_failure", "load_config_fields", "plan_load", "propose_configs"],
    "gptq": ["adjust_load_kwargs", "explain_failure", "plan_load"],
    "safety": ["adjust_load_kwargs", "explain_failure", "load_config_fields"],
}
# The "Custom Load Configuration" examples of the original registry's model-details documentation.
SEED_EXAMPLES = {
    "phi_rocm_wsl": {"attn_implementation": "eager", "torch_dtype": "bfloat16"},
    "large_model": {"device_map": "auto", "low_cpu_mem_usage": True, "max_memory": {"0": "15GiB"}},
    "quantized": {"load_in_8bit": True, "device_map": "auto"},
    "placeholder": {"torch_dtype": "bfloat16", "attn_implementation": "eager", "device_map": "auto",
                    "low_cpu_mem_usage": True},
}


def test_each_builtin_plugin_owns_its_keys_and_hooks(host):
    assert {name: host.reports[name].keys for name in KEYS} == KEYS
    assert {name: host.reports[name].hooks for name in HOOKS} == HOOKS


def test_legacy_keys_adjusts_first_and_default_loader_explains_last(host):
    assert next(name for name, _ in host.implementations("adjust_load_kwargs")) == "legacy_keys"
    assert [name for name, _ in host.implementations("explain_failure")][-1] == "default_loader"


@pytest.mark.parametrize("example", SEED_EXAMPLES)
def test_seed_examples_load_and_generate(host, tiny_models, environment, example):
    load_config = SEED_EXAMPLES[example]
    for key, value in load_config.items():  # they pass the save-time checks too
        host.fields[key].deserialize(value)
    loaded, kwargs, changes = load(host, model_info(tiny_models["phi"]), load_config, environment)
    assert not {"torch_dtype", "low_cpu_mem_usage", "load_in_8bit"} & set(kwargs)
    if "torch_dtype" in load_config:
        assert loaded.model.dtype == torch.bfloat16
    if "attn_implementation" in load_config:
        assert loaded.model.config._attn_implementation == "eager"
    if "load_in_8bit" in load_config:
        assert any(type(m).__name__ == "Linear8bitLt" for m in loaded.model.modules())
    assert not any("error" in change for change in changes)
    assert len(generate(loaded)) == 3
