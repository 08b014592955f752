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
    assert environment["packages"]["gptqmodel"] == version("gptqmodel")  # the test extra installs it
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


# ---- failure kinds for auto-configure (modelhub/autoconfigure), set where the failure is explained ------------

def test_explanations_carry_their_kind(host, environment, tiny_models):
    model = model_info(tiny_models["llama"])
    try:
        torch.empty(2**50, dtype=torch.uint8)
    except RuntimeError as error:
        assert explain(host, model, error, {}, environment).kind == "out_of_memory"
    flash = failure(host, model, {"attn_implementation": "flash_attention_2"}, environment)
    assert explain(host, model, flash, {}, environment).kind == "attention"
    missing = ModuleNotFoundError("No module named 'transformers'", name="transformers")
    explained = explain(host, model, missing, {}, environment)
    assert (explained.kind, explained.package) == ("missing_package", "transformers")


@pytest.mark.parametrize("text", [
    # torch on ROCm when no kernel is built for the GPU's gfx architecture (e.g. SDPA's on gfx1030)
    "HIP error: invalid device function\nHIP kernel errors might be asynchronously reported at some other API call, "
    "so the stacktrace below might be incorrect.\nFor debugging consider passing AMD_SERIALIZE_KERNEL=3",
    "FlashAttention only supports Ampere GPUs or newer.",  # flash-attn on a Turing or older GPU
    "No available kernel. Aborting execution.",  # SDPA finding no kernel for these inputs
])
def test_fused_attention_errors_are_attention_failures(host, environment, tiny_models, text):
    explanation = explain(host, model_info(tiny_models["llama"]), RuntimeError(text), {}, environment)
    assert explanation.kind == "attention"
    assert explanation.suggestion == {"attn_implementation": "eager"}
    assert ("not built for this GPU" in explanation.cause) == text.startswith("HIP")


def test_bf16_kernel_errors_are_bf16_failures(host, environment, tiny_models):
    error = RuntimeError("LLVM ERROR: Cannot select: 0x55d3c8 (intrinsic %llvm.amdgcn.fdot2.bf16.bf16)")
    explanation = explain(host, model_info(tiny_models["llama"]), error, {"torch_dtype": "bfloat16"}, environment)
    assert explanation.kind == "bf16_unsupported"
    assert explanation.suggestion == {"dtype": "float16", "torch_dtype": None}


def test_this_cpu_host_has_bf16(environment):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert environment["bf16"] == {"supported": True, "why": "CPU: torch computes bfloat16 on the CPU."}


def test_rocm_rdna2_has_no_bf16_whatever_torch_says():
    from types import SimpleNamespace

    from modelhub.plugins.default_loader import _bf16

    rocm_torch = SimpleNamespace(version=SimpleNamespace(hip="6.4.1"))  # only the version is read on ROCm
    rdna2 = [{"index": 0, "name": "AMD Radeon RX 6800 XT", "architecture": "gfx1030"}]
    assert _bf16(rocm_torch, rdna2)["supported"] is False and "gfx1030" in _bf16(rocm_torch, rdna2)["why"]
    rdna3 = [{"index": 0, "name": "AMD Radeon RX 7900 XTX", "architecture": "gfx1100"}]
    assert _bf16(rocm_torch, rdna3)["supported"] is True


def test_bf16_is_refused_where_the_host_has_none(host, environment, tiny_models):
    from modelhub.loading.types import LoadRefused

    without = {**environment, "bf16": {"supported": False, "why": "gfx1030 (RDNA1/2) has no bfloat16."}}
    model = model_info(tiny_models["llama"])
    with pytest.raises(LoadRefused) as refused:
        load(host, model, {"torch_dtype": "bfloat16"}, without)
    assert refused.value.kind == "bf16_unsupported" and refused.value.suggestion == {"dtype": "float16"}
    assert "gfx1030 (RDNA1/2) has no bfloat16" in str(refused.value)
    loaded, _, _ = load(host, model, {"dtype": "bfloat16", "device_map": "cpu"}, without)  # the CPU has it
    assert loaded.model.dtype == torch.bfloat16


def run_worker(tiny_models, load_config: dict):
    """A real worker process loading the tiny Llama with this load_config: its messages and its exit."""
    request = {"model_name": "tiny/llama", "hf_path": "tiny/llama", "cache_path": str(tiny_models["llama"]),
               "load_config": load_config, "settings": {}}
    process = subprocess.run([sys.executable, "-m", "modelhub.loading.worker"], input=json.dumps(request) + "\n",
                             capture_output=True, text=True, timeout=180)
    return [json.loads(line) for line in process.stdout.splitlines()], process


@pytest.mark.slow
def test_a_worker_refuses_bf16_where_the_test_plugin_reports_none(tiny_models, with_test_plugins):
    messages, _ = run_worker(tiny_models, {"torch_dtype": "bfloat16", "fault_bf16_unsupported": True})
    failed = messages[-1]
    assert failed["event"] == "failed" and failed["error_type"] == "LoadRefused"
    assert failed["failure_kind"] == "bf16_unsupported"
    assert failed["suggestion"] == {"dtype": "float16"}
    assert failed["environment"]["bf16"]["supported"] is False
    messages, _ = run_worker(tiny_models, {"dtype": "float16", "fault_bf16_unsupported": True})
    assert messages[-1]["event"] == "loaded"


@pytest.mark.slow
def test_a_worker_classifies_the_real_attention_error_and_eager_loads(tiny_models, with_test_plugins):
    from modelhub_test_plugins.faults import ATTENTION_ERRORS

    messages, _ = run_worker(tiny_models, {"fault_attention": ATTENTION_ERRORS["sdpa_no_kernel"]})
    failed = messages[-1]
    assert (failed["event"], failed["error_type"], failed["failure_kind"]) == ("failed", "RuntimeError", "attention")
    assert failed["suggestion"] == {"attn_implementation": "eager"}
    messages, _ = run_worker(tiny_models, {"fault_attention": ATTENTION_ERRORS["sdpa_no_kernel"],
                                           "attn_implementation": "eager"})
    assert messages[-1]["event"] == "loaded"


@pytest.mark.slow
def test_a_gpu_memory_access_fault_kills_the_worker(tiny_models, with_test_plugins):
    from modelhub_test_plugins.faults import ATTENTION_ERRORS

    messages, process = run_worker(tiny_models, {"fault_attention": ATTENTION_ERRORS["memory_access_fault"]})
    assert process.returncode < 0 and messages[-1]["event"] == "stage"  # no report: the supervisor sees a crash
    assert "Memory access fault by GPU node-1" in process.stderr
