"""A load_config turned into a LoadPlan by the built-in plugins' plan_load, as they will load it."""

import json
import shutil

import pytest

from modelhub.loading.types import ModelInfo
from modelhub.plugin_manager import create_plugin_host
from modelhub.preflight import checkpoint, planner
from tests.preflight.conftest import host


@pytest.fixture(scope="module")
def plugins():
    return create_plugin_host()


def plan_for(plugins, directory, load_config, facts=None):
    found = checkpoint.read(str(directory), "org/model")
    info = ModelInfo(name="org/model", hf_path="org/model", location=str(directory), config=found.config,
                     files=found.files)
    return planner.make_plan(plugins, info, load_config, facts or host(), found)


def test_no_config_keeps_the_checkpoints_dtype_on_the_cpu(plugins, tiny_models):
    plan = plan_for(plugins, tiny_models["llama"], {})
    assert (plan.dtype, plan.checkpoint_dtype, plan.device, plan.spread, plan.quantization) == (
        None, "float32", "cpu", False, None)
    assert plan.kind == "float32/cpu"


@pytest.mark.parametrize("key", ["dtype", "torch_dtype"])
def test_dtype_and_its_old_name(plugins, tiny_models, key):
    plan = plan_for(plugins, tiny_models["llama"], {key: "bfloat16"})
    assert plan.dtype == "bfloat16" and plan.kind == "bfloat16/cpu"
    assert any("float32 to bfloat16" in note for note in plan.notes)


@pytest.mark.parametrize("config, mode, bits", [
    ({"quantization_config": {"load_in_8bit": True}}, "bnb_8bit", 8),
    ({"quantization_config": {"load_in_4bit": True, "bnb_4bit_use_double_quant": True}}, "bnb_4bit", 4),
    ({"load_in_4bit": True}, "bnb_4bit", 4),  # the legacy key, as legacy_keys moves it in the worker
])
def test_bitsandbytes_quantizes_while_loading_and_needs_its_packages(plugins, tiny_models, config, mode, bits):
    plan = plan_for(plugins, tiny_models["llama"], config)
    assert (plan.quantization, plan.weight_bits, plan.quantize_on_load) == (mode, bits, True)
    assert set(plan.packages) == {"bitsandbytes", "accelerate"} and not plan.problems
    missing = plan_for(plugins, tiny_models["llama"], config, host(packages={"bitsandbytes": None}))
    assert [(p["kind"], p["package"]) for p in missing.problems] == [("missing_package", "bitsandbytes")]


def test_device_map_and_max_memory_spread_within_budgets(plugins, tiny_models):
    plan = plan_for(plugins, tiny_models["llama"], {"max_memory": {"0": "2GiB", "cpu": "1.5GiB"}},
                    host(gpus=[{"index": 0, "name": "Card", "free_bytes": 8 * 2**30}]))
    assert plan.spread and plan.offload_to_disk  # max_memory alone means device_map "auto"
    assert plan.budgets == {"gpu0": 2 * 2**30, "cpu": int(1.5 * 2**30)}
    assert "accelerate" in plan.packages
    no_gpu = plan_for(plugins, tiny_models["llama"], {"device_map": "auto", "max_memory": {"0": "2GiB", "cpu": "1GiB"}})
    assert no_gpu.budgets == {"cpu": 2**30} and any("dropped" in note for note in no_gpu.notes)


def test_a_gpu_this_host_lacks_is_refused(plugins, tiny_models):
    plan = plan_for(plugins, tiny_models["llama"], {"device_map": "cuda:1"},
                    host(gpus=[{"index": 0, "name": "Card", "free_bytes": 2**30}]))
    assert [p["kind"] for p in plan.problems] == ["refused"]
    assert "GPU 1" in plan.problems[0]["message"]
    assert plan_for(plugins, tiny_models["llama"], {"device_map": "cpu"}).device == "cpu"


def test_a_gptq_checkpoint_stays_packed_and_needs_optimum_and_gptqmodel(plugins, tiny_models, tmp_path):
    directory = tmp_path / "gptq"
    shutil.copytree(tiny_models["llama"], directory)
    config = json.loads((directory / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 128}
    (directory / "config.json").write_text(json.dumps(config))
    plan = plan_for(plugins, directory, {}, host(packages={"optimum": None, "gptqmodel": None}))
    assert (plan.quantization, plan.weight_bits, plan.quantize_on_load) == ("gptq", 4, False)
    assert sorted(p["package"] for p in plan.problems) == ["gptqmodel", "optimum"]
    twice = plan_for(plugins, directory, {"quantization_config": {"load_in_8bit": True}},
                     host(packages={"optimum": "2.3.0", "gptqmodel": "7.6.0"}))
    assert [p["kind"] for p in twice.problems] == ["refused"] and twice.quantization == "gptq"


def test_eager_attention_on_rocm_for_phi_and_bf16_on_rdna2(plugins, tiny_models):
    rdna2 = [{"index": 0, "name": "RX 6800", "architecture": "gfx1030", "free_bytes": 16 * 2**30}]
    plan = plan_for(plugins, tiny_models["phi"], {"device_map": "cuda", "dtype": "bfloat16"}, host(gpus=rdna2, rocm="6.2"))
    assert plan.attn_implementation == "eager"
    assert [p["kind"] for p in plan.problems] == ["capability"] and "gfx1030" in plan.problems[0]["message"]
    assert not plan_for(plugins, tiny_models["phi"], {"device_map": "cuda", "dtype": "float16"},
                        host(gpus=rdna2, rocm="6.2")).problems
