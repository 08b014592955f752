"""bitsandbytes: quantization_config checked on save, built into a BitsAndBytesConfig, real 8/4-bit loads on CPU."""

import sys

import pytest
import torch
from marshmallow import ValidationError

from modelhub.loading.types import LoadRefused
from modelhub.plugins import bitsandbytes_quantization
from tests.plugins.support import (adjust, apply_suggestion, generate, host_with, layer_classes, load, model_info,
                                   notes_of)


@pytest.mark.parametrize("value, message", [
    ({"load_in_8bit": True, "use_exllama": True}, "Unknown key(s) use_exllama: quantization_config takes"),
    ({"load_in_8bit": True, "load_in_4bit": True}, "Choose one of load_in_8bit and load_in_4bit"),
    ({"load_in_4bit": True, "bnb_4bit_quant_type": "int3"}, "bnb_4bit_quant_type: Must be one of: nf4, fp4."),
    ({"load_in_4bit": True, "bnb_4bit_compute_dtype": "float64"}, "Must be one of"),
    ({"load_in_8bit": "true"}, "Must be true or false."),
    ({"load_in_8bit": True, "llm_int8_threshold": 0}, "Must be greater than 0"),
    ("load_in_8bit", 'Must be an object such as {"load_in_8bit": true}.'),
])
def test_field_refuses_bad_values(host, value, message):
    with pytest.raises(ValidationError) as refused:
        host.fields["quantization_config"].deserialize(value)
    assert message in str(refused.value)


def test_field_accepts_bitsandbytes_options(host):
    value = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bfloat16",
             "bnb_4bit_use_double_quant": True, "llm_int8_skip_modules": ["lm_head"]}
    assert host.fields["quantization_config"].deserialize(value) == value


def test_seed_8bit_example_loads_linear8bitlt(host, tiny_models, environment):
    loaded, kwargs, changes = load(host, model_info(tiny_models["llama"]), {"load_in_8bit": True, "device_map": "auto"},
                                   environment)
    assert type(kwargs["quantization_config"]).__name__ == "BitsAndBytesConfig"
    assert "Linear8bitLt" in layer_classes(loaded.model)
    assert "8-bit (LLM.int8) with bitsandbytes 0.50.2" in notes_of(changes, "bitsandbytes")
    assert len(generate(loaded)) == 3


def test_4bit_nf4_with_a_compute_dtype(host, tiny_models, environment):
    config = {"quantization_config": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                      "bnb_4bit_compute_dtype": "bfloat16"}}
    loaded, kwargs, _ = load(host, model_info(tiny_models["llama"]), config, environment)
    assert kwargs["quantization_config"].bnb_4bit_compute_dtype == torch.bfloat16
    layer = loaded.model.model.layers[0].self_attn.q_proj
    assert type(layer).__name__ == "Linear4bit"
    assert layer.weight.quant_type == "nf4" and layer.compute_dtype == torch.bfloat16
    assert len(generate(loaded)) == 3


def test_options_without_a_mode_are_refused(tiny_models, environment):
    plugin = host_with(bitsandbytes_quantization, "bitsandbytes")
    with pytest.raises(LoadRefused) as refused:
        adjust(plugin, model_info(tiny_models["llama"]), {"quantization_config": {"bnb_4bit_quant_type": "nf4"}},
               environment)
    assert "neither load_in_8bit nor load_in_4bit is true" in str(refused.value)


def test_missing_bitsandbytes_is_refused_with_the_install_command(tiny_models, environment, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # find_spec now answers "not installed"
    plugin = host_with(bitsandbytes_quantization, "bitsandbytes")
    with pytest.raises(LoadRefused) as refused:
        adjust(plugin, model_info(tiny_models["llama"]), {"quantization_config": {"load_in_8bit": True}}, environment)
    assert "pip install bitsandbytes==0.50.2" in str(refused.value)
    assert (refused.value.kind, refused.value.package) == ("missing_package", "bitsandbytes")


def test_8bit_offloaded_to_disk_is_explained_and_the_suggestion_loads(host, tiny_models, environment):
    model = model_info(tiny_models["llama"])
    load_config = {"load_in_8bit": True, "device_map": {"": "disk"}}
    with pytest.raises(ValueError) as raised:
        load(host, model, load_config, environment)
    assert "Some modules are dispatched on the CPU or the disk" in str(raised.value)
    explanation = host.hook.explain_failure(model=model, error=raised.value, load_config=load_config, kwargs={},
                                            environment=environment)
    assert "bitsandbytes 8-bit layers cannot be offloaded" in explanation.cause
    assert explanation.suggestion == {"quantization_config": {"load_in_8bit": True,
                                                              "llm_int8_enable_fp32_cpu_offload": True},
                                      "load_in_8bit": None}
    loaded, _, _ = load(host, model, apply_suggestion(load_config, explanation.suggestion), environment)
    assert loaded.model.hf_device_map == {"": "disk"}


def test_unsupported_device_is_explained(host, tiny_models, environment):
    # transformers' own message (integrations/bitsandbytes.py) when the build supports no device present.
    error = RuntimeError("None of the available devices `available_devices = None` are supported by the bitsandbytes "
                         "version you have installed: `bnb_supported_devices = {'cuda'}`.")
    explanation = host.hook.explain_failure(model=model_info(tiny_models["llama"]), error=error,
                                            load_config={"load_in_4bit": True}, kwargs={}, environment=environment)
    assert "bitsandbytes failed" in explanation.cause and "bitsandbytes==0.50.2" in explanation.cause
    assert explanation.suggestion == {"quantization_config": None, "load_in_4bit": None}


@pytest.mark.parametrize("mode", ["8bit", "4bit"])
def test_auto_configures_quantized_proposals_load_and_generate_here(host, tiny_models, environment, mode):
    """After running out of memory with parts offloaded, the 8-bit and 4-bit proposals load and generate for
    real. Without a GPU, bitsandbytes cannot run offloaded layers (generation fails), so the whole quantized
    model stays in RAM; with one, the offloading stays, its modules kept in float32."""
    from modelhub.loading.types import Failure

    model = model_info(tiny_models["llama"])
    offloaded = {"device_map": "auto", "max_memory": {"cpu": "64KiB"}, "dtype": "float32"}
    calls = host.call_each("propose_configs", model=model, failure=Failure(kind="out_of_memory", cause="OOM"),
                           load_config=offloaded, environment=environment)
    (proposal,) = [p for call in calls if call.plugin == "bitsandbytes" for p in call.result
                   if p.limitation.startswith(f"weights in {mode[0]}-bit")]
    if environment["gpus"]:
        assert proposal.changes["quantization_config"]["llm_int8_enable_fp32_cpu_offload"] is True
    else:
        assert proposal.changes["device_map"] == "cpu" and proposal.changes["max_memory"] is None
    loaded, _, _ = load(host, model, apply_suggestion(offloaded, proposal.changes), environment)
    assert {"Linear8bitLt", "Linear4bit"} & layer_classes(loaded.model)
    assert len(generate(loaded)) == 3
