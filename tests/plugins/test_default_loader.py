"""default_loader: its keys, the machine description, the plain load, and the generic failure explanations,
each explanation checked against the exception a real load raises."""

import json
import os
import subprocess
import sys
from importlib.metadata import version

import pytest
import torch
from marshmallow import ValidationError

from modelhub.loading.types import LoadedModel
from modelhub.plugin_manager import PluginHost, create_plugin_host
from tests.plugins.support import apply_suggestion, copy_model, edit_config, generate, load, model_info


def explain(host, model, error, load_config, environment, kwargs=None):
    return host.hook.explain_failure(model=model, error=error, load_config=load_config,
                                     kwargs=kwargs or {}, environment=environment)


def failure(host, model, kwargs, environment):
    """The exception a real load with these final kwargs raises."""
    with pytest.raises(Exception) as raised:
        host.hook.load_model(model=model, kwargs=kwargs, environment=environment)
    return raised.value


@pytest.mark.parametrize("key, value, message", [
    ("dtype", "bfloat17", "Must be one of: float32, float16, bfloat16, auto"),
    ("dtype", 16, "Not a valid string."),
    ("revision", "", "Length must be between 1 and 200."),
])
def test_fields_refuse_bad_values(host, key, value, message):
    with pytest.raises(ValidationError) as refused:
        host.fields[key].deserialize(value)
    assert message in str(refused.value)


def test_fields_accept_good_values(host):
    assert host.fields["dtype"].deserialize("bfloat16") == "bfloat16"
    assert host.fields["revision"].deserialize("main") == "main"


def test_environment_describes_this_machine(environment):
    assert environment["torch"] == torch.__version__
    assert environment["transformers"] == version("transformers")
    assert environment["cuda"] == torch.version.cuda and environment["rocm"] == torch.version.hip
    assert len(environment["gpus"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert environment["packages"]["bitsandbytes"] == version("bitsandbytes")
    assert environment["packages"]["gptqmodel"] is None  # not installed here
    assert environment["wsl"] == ("microsoft" in open("/proc/version").read().lower())
    assert json.loads(json.dumps(environment)) == environment  # recorded with the attempt as JSON


def test_environment_reads_package_versions_without_importing_them():
    script = ("import sys; from modelhub.loading.pipeline import describe_environment; "
              "from modelhub.plugin_manager import create_plugin_host; "
              "env = describe_environment(create_plugin_host(), {}); "
              "print(env['packages']['bitsandbytes'], 'bitsandbytes' in sys.modules, 'accelerate' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.stdout.split() == [version("bitsandbytes"), "False", "False"], result.stderr


def test_load_model_returns_the_model_and_its_tokenizer(host, environment, tiny_models):
    loaded, kwargs, _ = load(host, model_info(tiny_models["llama"]), {"dtype": "float16", "revision": "main"}, environment)
    assert isinstance(loaded, LoadedModel)
    assert loaded.model.dtype == torch.float16
    assert loaded.tokenizer.eos_token == "</s>"
    assert len(generate(loaded)) == 3


def test_out_of_memory(host, environment, tiny_models):
    try:
        torch.empty(2**50, dtype=torch.uint8)  # the real CPU allocator failure
    except RuntimeError as error:
        cpu_error = error
    explanation = explain(host, model_info(tiny_models["llama"]), cpu_error, {}, environment)
    assert "did not fit in system memory" in explanation.cause
    assert explanation.suggestion == {"device_map": "auto", "quantization_config": {"load_in_8bit": True}}
    # Already 8-bit (the legacy form users already store): the next step is 4-bit.
    gpu_error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    explanation = explain(host, model_info(tiny_models["llama"]), gpu_error, {"load_in_8bit": True}, environment)
    assert explanation.suggestion["quantization_config"]["load_in_4bit"] is True
    assert explanation.suggestion["load_in_8bit"] is None


def test_unexpected_keyword_is_removed(tiny_models, environment, monkeypatch):
    # Without legacy_keys, the legacy load_in_8bit reaches the model constructor on transformers 5.
    monkeypatch.setenv("MODELHUB_LOAD_PLUGINS", "default_loader")
    host = create_plugin_host()
    model = model_info(tiny_models["llama"])
    error = failure(host, model, {"load_in_8bit": True}, environment)
    assert "unexpected keyword argument 'load_in_8bit'" in str(error)
    explanation = explain(host, model, error, {"load_in_8bit": True}, environment)
    assert explanation.suggestion == {"load_in_8bit": None}
    assert "does not accept 'load_in_8bit'" in explanation.cause


def test_flash_attention_not_installed(host, environment, tiny_models):
    model = model_info(tiny_models["llama"])
    error = failure(host, model, {"attn_implementation": "flash_attention_2"}, environment)
    explanation = explain(host, model, error, {"attn_implementation": "flash_attention_2"}, environment)
    assert explanation.suggestion == {"attn_implementation": "eager"}
    assert "flash-attn" in explanation.cause


@pytest.mark.parametrize("load_config, suggestion", [
    ({"device_map": "cuda"}, {"device_map": "cpu"}),  # AssertionError: Torch not compiled with CUDA enabled
    ({"device_map": "auto", "max_memory": {0: "1GiB", "cpu": "1GiB"}}, {"device_map": "cpu", "max_memory": None}),
])
def test_no_accelerator(host, environment, tiny_models, load_config, suggestion):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    model = model_info(tiny_models["llama"])
    error = failure(host, model, load_config, environment)  # final kwargs as given: no plugin corrected them
    explanation = explain(host, model, error, load_config, environment)
    assert explanation.suggestion == suggestion
    assert "has none" in explanation.cause
    loaded, _, _ = load(host, model, apply_suggestion(load_config, suggestion), environment)
    assert loaded.model.device.type == "cpu"


def test_missing_config_json(host, environment, tiny_models, tmp_path):
    directory = copy_model(tiny_models["llama"], tmp_path / "no-config")
    (directory / "config.json").unlink()
    model = model_info(directory)
    explanation = explain(host, model, failure(host, model, {}, environment), {}, environment)
    assert f"{directory} has no config.json" in explanation.cause


def test_damaged_weights(host, environment, tiny_models, tmp_path):
    directory = copy_model(tiny_models["llama"], tmp_path / "truncated")
    weights = directory / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)  # an interrupted download
    model = model_info(directory)
    error = failure(host, model, {}, environment)
    assert "incomplete metadata" in str(error)
    explanation = explain(host, model, error, {}, environment)
    assert "damaged or truncated" in explanation.cause and "download the model again" in explanation.cause


def test_unknown_architecture(host, environment, tiny_models, tmp_path):
    directory = copy_model(tiny_models["llama"], tmp_path / "unknown")
    edit_config(directory, model_type="llama99")
    model = model_info(directory)
    explanation = explain(host, model, failure(host, model, {}, environment), {}, environment)
    assert explanation.cause.startswith(f"transformers {version('transformers')} does not know architecture 'llama99'")


def test_non_finite_logits_from_the_smoke_test(host, environment, rocm_environment, tiny_models):
    from modelhub.loading.worker import smoke_test

    model = model_info(tiny_models["llama"])
    loaded, _, _ = load(host, model, {"dtype": "float16"}, environment)
    with torch.no_grad():
        loaded.model.lm_head.weight.fill_(float("nan"))  # what an fp16 overflow leaves behind
    with pytest.raises(ValueError) as raised:
        smoke_test(loaded)
    on_cpu = explain(host, model, raised.value, {"dtype": "float16"}, environment)
    assert "NaN" in on_cpu.cause and "ROCm" in on_cpu.cause
    assert on_cpu.suggestion == {"dtype": "float32"}  # no GPU here: float32 is the safe choice
    on_rocm = explain(host, model, raised.value, {"torch_dtype": "float16"}, rocm_environment)
    assert on_rocm.suggestion == {"dtype": "bfloat16", "torch_dtype": None}


def test_unknown_errors_are_left_alone(host, environment, tiny_models):
    assert explain(host, model_info(tiny_models["llama"]), ValueError("something else"), {}, environment) is None


def test_web_process_imports_no_ml_library():
    """The server imports every plugin to read its fields; that must not pull torch in (3+ s, GBs)."""
    script = ("import sys; from modelhub.plugin_manager import create_plugin_host; host = create_plugin_host(); "
              "assert all(r.loaded for r in host.plugin_reports()), host.plugin_reports(); "
              "print(len(host.fields), sorted(m for m in ('torch', 'transformers', 'accelerate', 'bitsandbytes') "
              "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    count, imported = result.stdout.split(" ", 1)
    assert int(count) >= 17 and imported.strip() == "[]"


def test_plugin_host_without_the_default_loader_loads_nothing(tiny_models, environment):
    host = PluginHost(allow=set())
    assert host.hook.load_model(model=model_info(tiny_models["llama"]), kwargs={}, environment=environment) is None
