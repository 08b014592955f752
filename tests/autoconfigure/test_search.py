"""The search for a working config, on its own: each rule's path through the built-in plugins' proposals,
settings carried over, no repeats, pruning, a third-party plugin merged by priority, and a property test
that it never proposes a config twice and always ends. Failures are built by hand here; the runner's tests
(test_runner.py) provoke them with real loads."""

import json

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelhub import hookimpl
from modelhub.autoconfigure import rules
from modelhub.autoconfigure.search import Search, apply_changes, canonical
from modelhub.loading.types import FAILURE_KINDS, Failure, ModelInfo, Proposal
from modelhub.plugin_manager import create_plugin_host

CPU = {"gpus": [], "rocm": None, "wsl": False, "bf16": {"supported": True, "why": "CPU"},
       "packages": {"bitsandbytes": "0.50.2", "accelerate": "1.15.0"}, "modelhub": {}}
ROCM = {**CPU, "rocm": "6.4.1", "gpus": [{"index": 0, "name": "AMD Radeon RX 7900 XTX", "memory_bytes": 24 * 2**30,
                                         "architecture": "gfx1100"}]}
LLAMA = ModelInfo(name="tiny/llama", hf_path="test/llama", location="/models/llama", config={"model_type": "llama"})


@pytest.fixture(scope="module")
def plugins():
    host = create_plugin_host()
    assert all(report.loaded for report in host.plugin_reports()), host.plugin_reports()
    return host


def oom(cause="CUDA out of memory. Tried to allocate 2.00 GiB"):
    return Failure(kind="out_of_memory", cause=cause)


def run(search, failures):
    """Feed failures until the search ends or they run out; return every candidate it proposed."""
    candidates = [search.first()]
    for failure in failures:
        candidate = search.after_failure(failure)
        if candidate is None:
            break
        candidates.append(candidate)
    return candidates


def test_the_first_candidate_is_the_start_config(plugins):
    start = {"dtype": "bfloat16", "example_tag": "mine"}
    candidate = Search(LLAMA, start, CPU, plugins).first()
    assert candidate.config == start and candidate.changes == {} and candidate.limitation is None
    assert candidate.number == 1


def test_out_of_memory_offloads_then_8bit_then_4bit_keeping_the_other_settings(plugins):
    start = {"dtype": "bfloat16", "attn_implementation": "sdpa", "example_tag": "mine"}
    search = Search(LLAMA, start, ROCM, plugins)
    first, offload, eight, four = run(search, [oom(), oom(), oom()])

    assert offload.config["device_map"] == "auto" and set(offload.config["max_memory"]) == {"0", "cpu"}
    cpu_budget = int(offload.config["max_memory"]["cpu"].removesuffix("MiB")) * 2**20
    assert 0 < cpu_budget < psutil.virtual_memory().total  # a budget under the host's RAM
    assert offload.plugin == "device_map" and "disk" in offload.why
    assert offload.limitation.startswith("parts offloaded to CPU and disk beyond")

    assert eight.config["quantization_config"] == {"load_in_8bit": True, "llm_int8_enable_fp32_cpu_offload": True}
    assert eight.changes == {"quantization_config": eight.config["quantization_config"]}
    assert "weights in 8-bit" in eight.limitation and "offloaded to CPU and disk" in eight.limitation

    assert four.config["quantization_config"] == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                                  "llm_int8_enable_fp32_cpu_offload": True}
    assert "weights in 4-bit (bitsandbytes nf4)" in four.limitation and "8-bit" not in four.limitation
    for candidate in (offload, eight, four):  # the user's settings, an unknown plugin key included, come along
        assert {key: candidate.config[key] for key in start} == start
    assert search.after_failure(oom()) is None
    assert search.ended_because.startswith("Nothing left to try after try 4 failed (out of memory)")


def test_without_a_gpu_quantized_weights_stay_in_ram(plugins):
    search = Search(LLAMA, {"dtype": "bfloat16"}, CPU, plugins)
    first, offload, eight, four = run(search, [oom(), oom(), oom()])
    assert offload.config["device_map"] == "auto" and set(offload.config["max_memory"]) == {"cpu"}
    assert offload.limitation.startswith("parts offloaded to disk beyond")
    # bitsandbytes cannot run offloaded layers without a GPU: the quantized model is placed in RAM
    assert eight.config == {"dtype": "bfloat16", "device_map": "cpu", "quantization_config": {"load_in_8bit": True}}
    assert eight.limitation == "weights in 8-bit (bitsandbytes LLM.int8)"
    assert four.config["quantization_config"] == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}
    assert four.limitation == "weights in 4-bit (bitsandbytes nf4)"


def test_gpu_budgets_keep_room_for_the_context(plugins):
    search = Search(LLAMA, {}, ROCM, plugins)
    search.first()
    offload = search.after_failure(oom())
    assert offload.config["max_memory"]["0"] == f"{(24 - 2.4) * 1024:.0f}MiB".replace(".0", "")
    assert offload.limitation.startswith("parts offloaded to CPU and disk")


def test_the_legacy_8bit_key_goes_to_4bit_in_quantization_config(plugins):
    search = Search(LLAMA, {"load_in_8bit": True, "device_map": "auto", "max_memory": {"cpu": "1GiB"}}, CPU, plugins)
    search.first()
    four = search.after_failure(oom())
    assert "load_in_8bit" not in four.config
    assert four.config["quantization_config"]["load_in_4bit"] is True
    assert four.changes["load_in_8bit"] is None


def test_an_already_quantized_checkpoint_is_not_quantized_again(plugins):
    gptq = ModelInfo(name="q", hf_path="q", location="/q", config={"quantization_config": {"quant_method": "gptq"}})
    search = Search(gptq, {"device_map": "auto", "max_memory": {"cpu": "1GiB"}}, CPU, plugins)
    search.first()
    assert search.after_failure(oom()) is None


def test_a_gguf_file_is_not_quantized_by_bitsandbytes(plugins):
    """transformers dequantizes a GGUF file; the gguf plugin refuses bitsandbytes on top of it, so a search
    must not spend tries on it."""
    gguf = ModelInfo(name="g", hf_path="g", location="/lmstudio/org/g-GGUF", files=["g.Q4_K_M.gguf"],
                     gguf={"file": "/lmstudio/org/g-GGUF/g.Q4_K_M.gguf", "architecture": "llama", "model_type": "llama",
                           "quantization": "Q4_K_M"})
    search = Search(gguf, {"device_map": "auto", "max_memory": {"cpu": "1GiB"}}, CPU, plugins)
    search.first()
    assert search.after_failure(oom()) is None


@pytest.mark.parametrize("kind", ["attention", "non_finite"])
def test_attention_and_nan_go_to_eager_first(plugins, kind):
    search = Search(LLAMA, {"dtype": "float16", "attn_implementation": "sdpa"}, CPU, plugins)
    search.first()
    eager = search.after_failure(Failure(kind=kind, cause="No available kernel. Aborting execution."))
    assert eager.config == {"dtype": "float16", "attn_implementation": "eager"}
    assert eager.plugin == "rocm_eager_attention" and eager.limitation is None
    following = search.after_failure(Failure(kind=kind, cause="again"))
    if kind == "attention":
        assert following is None and "Eager attention did not help either" in search.ended_because
    else:
        assert following.config == {"dtype": "float32", "attn_implementation": "eager"}
        assert following.limitation == "float32: twice the memory of 16-bit weights"


def test_bf16_unsupported_goes_to_float16_then_float32(plugins):
    search = Search(LLAMA, {"torch_dtype": "bfloat16", "device_map": "auto"}, ROCM, plugins)
    search.first()
    fp16 = search.after_failure(Failure(kind="bf16_unsupported", cause="gfx1030 has no bfloat16"))
    assert fp16.config == {"dtype": "float16", "device_map": "auto"}  # the deprecated torch_dtype is replaced
    assert fp16.limitation is None
    fp32 = search.after_failure(Failure(kind="bf16_unsupported", cause="again"))
    assert fp32.config == {"dtype": "float32", "device_map": "auto"}
    assert fp32.limitation == "float32 (no bf16 here): twice the memory of 16-bit weights"


def test_missing_bitsandbytes_drops_quantization_and_says_what_to_install(plugins):
    start = {"quantization_config": {"load_in_8bit": True}, "dtype": "float16"}
    search = Search(LLAMA, start, CPU, plugins)
    search.first()
    cause = ("quantization_config asks for bitsandbytes quantization, which needs the bitsandbytes package; it is "
             "not installed in the worker's environment: pip install bitsandbytes==0.50.2")
    plain = search.after_failure(Failure(kind="missing_package", cause=cause, package="bitsandbytes"))
    assert plain.config == {"dtype": "float16"} and plain.limitation is None
    assert "pip install bitsandbytes==0.50.2" in plain.why
    # It runs out of memory without quantization: offloading, but no 8-bit or 4-bit (bitsandbytes is missing).
    offload = search.after_failure(oom())
    assert "quantization_config" not in offload.config and offload.config["device_map"] == "auto"
    assert search.after_failure(oom()) is None
    assert "Missing here: bitsandbytes" in search.ended_because
    assert "pip install bitsandbytes==0.50.2" in search.ended_because


def test_missing_accelerate_drops_the_placement_keys(plugins):
    search = Search(LLAMA, {"device_map": "auto", "max_memory": {"cpu": "2GiB"}, "dtype": "float16"}, CPU, plugins)
    search.first()
    plain = search.after_failure(Failure(kind="missing_package", cause="pip install accelerate==1.15.0",
                                         package="accelerate==1.15.0"))
    assert plain.config == {"dtype": "float16"}


@pytest.mark.parametrize("kind, says", [("refused", "only the user can allow it"),
                                        ("files", "download them"), ("timeout", "MODELHUB_LOAD_TIMEOUT")])
def test_refused_files_and_timeout_stop_the_search(plugins, kind, says):
    search = Search(LLAMA, {"dtype": "float16"}, CPU, plugins)
    search.first()
    cause = "model ships only pickle .bin weights" if kind == "refused" else "the cause"
    failure = Failure(kind=kind, cause=cause, suggestion={"allow_pickle_weights": True})
    assert search.after_failure(failure) is None
    assert search.ended_because.startswith(f"Stopped at try 1 ({rules.LABELS[kind]}): {cause}")
    assert says in search.ended_because.lower() or says in search.ended_because


def test_a_suggestion_never_turns_on_a_setting_only_the_user_may_allow(plugins):
    search = Search(LLAMA, {}, CPU, plugins)
    search.first()
    failure = Failure(kind="other", cause="needs remote code", suggestion={"trust_remote_code": True})
    assert search.after_failure(failure) is None
    assert search.skipped == [({"trust_remote_code": True}, "turns on trust_remote_code, which only the user may allow")]


def test_an_explainers_suggestion_is_tried_for_an_unclassified_failure(plugins):
    search = Search(LLAMA, {"dtype": "float16", "load_in_9bit": True}, CPU, plugins)
    search.first()
    fixed = search.after_failure(Failure(kind="other", cause="transformers does not accept 'load_in_9bit'",
                                         suggestion={"load_in_9bit": None}))
    assert fixed.config == {"dtype": "float16"} and fixed.plugin == "explanation"
    assert search.after_failure(Failure(kind="other", cause="still")) is None
    assert "not one auto-configure knows how to fix" in search.ended_because


def test_crashes_are_treated_like_memory_then_stop(plugins):
    search = Search(LLAMA, {}, ROCM, plugins)
    search.first()
    crash = Failure(kind="crash", cause="The worker died (SIGKILL)")
    assert search.after_failure(crash).plugin == "device_map"
    assert search.after_failure(crash).plugin == "bitsandbytes"
    assert search.after_failure(crash) is None
    assert "crashed 3 times" in search.ended_because


def test_pruned_configs_are_skipped_and_what_would_fit_from_them_is_tried(plugins):
    def prune(config):
        if "quantization_config" not in config:
            return "preflight: needs 9.1 GiB, 6.0 GiB free"
        return None

    search = Search(LLAMA, {"dtype": "bfloat16"}, ROCM, plugins, prune=prune)
    search.first()
    candidate = search.after_failure(oom())
    # Offloading alone would not fit; 8-bit with the offloading is what the plugins propose from there.
    assert candidate.config["quantization_config"]["load_in_8bit"] is True
    assert candidate.config["device_map"] == "auto"
    assert candidate.number == 2
    assert candidate.changes.keys() == {"device_map", "max_memory", "quantization_config"}
    assert "needs 9.1 GiB" in candidate.why and "8-bit" in candidate.why
    (skipped_config, reason), = search.skipped
    assert skipped_config["device_map"] == "auto" and reason == "preflight: needs 9.1 GiB, 6.0 GiB free"
    assert "offloaded" in candidate.limitation and "8-bit" in candidate.limitation


def test_a_preflight_that_fails_does_not_stop_the_search(plugins):
    def prune(config):
        raise RuntimeError("no headers")

    search = Search(LLAMA, {}, CPU, plugins, prune=prune)
    search.first()
    assert search.after_failure(oom()).plugin == "device_map"


def test_never_repeats_a_config_and_says_so(plugins):
    start = {"dtype": "float16", "attn_implementation": "sdpa", "revision": None}
    search = Search(LLAMA, start, CPU, plugins)
    search.first()
    eager = search.after_failure(Failure(kind="attention", cause="x", suggestion={"attn_implementation": "eager"}))
    # The explainer suggested what the plugin proposed: one try, the repeat recorded as skipped.
    assert search.after_failure(Failure(kind="attention", cause="x", suggestion={"attn_implementation": "sdpa"})) is None
    assert ({"dtype": "float16", "attn_implementation": "sdpa"}, "already tried (try 1)") in search.skipped
    assert eager.number == 2 and len(search.tried) == 2


def test_max_tries_bounds_the_search(plugins):
    search = Search(LLAMA, {}, CPU, plugins, max_tries=2)
    search.first()
    assert search.after_failure(oom()) is not None
    assert search.after_failure(oom()) is None
    assert search.ended_because.startswith("Tried 2 configs, the most this search may (max_tries)")


class ShrinkBudget:
    """A third-party plugin: before anything else, after running out of memory, try a smaller context
    (its own key) — and it proposes the same thing as device_map at a worse priority, which must not win."""

    @hookimpl
    def load_config_fields(self):
        from marshmallow import fields
        return {"third_party_context": fields.Integer()}

    @hookimpl
    def propose_configs(self, failure, load_config):
        if failure.kind != "out_of_memory" or load_config.get("third_party_context") == 512:
            return None
        return [Proposal({"third_party_context": 512}, "A shorter context needs a smaller KV cache.", priority=5),
                Proposal({"device_map": "cpu"}, "low priority", priority=95)]


class Broken:
    @hookimpl
    def propose_configs(self):
        raise RuntimeError("broken plugin")


def test_third_party_proposals_are_merged_by_priority(plugins):
    plugins.register(ShrinkBudget(), "shrink")
    plugins.register(Broken(), "broken")
    try:
        search = Search(LLAMA, {"third_party_context": 4096}, CPU, plugins)
        search.first()
        shorter = search.after_failure(oom())
        assert shorter.config == {"third_party_context": 512} and shorter.plugin == "shrink"
        offload = search.after_failure(oom())  # from the shorter context: the built-in steps, in their order
        assert offload.plugin == "device_map" and offload.config["third_party_context"] == 512
        assert search.plugin_errors == [("broken", "RuntimeError: broken plugin")]
    finally:
        plugins.unregister("shrink")
        plugins.unregister("broken")


def test_canonical_ignores_key_order_and_none():
    assert canonical({"b": 1, "a": None, "c": {"y": 1, "x": 2}}) == canonical({"c": {"x": 2, "y": 1}, "b": 1})
    assert apply_changes({"a": 1, "b": 2}, {"a": None, "c": 3}) == {"b": 2, "c": 3}


# ---- property: never a config twice, always ends -----------------------------------------------------

configs = st.fixed_dictionaries({}, optional={
    "dtype": st.sampled_from(["float32", "float16", "bfloat16", "auto"]),
    "torch_dtype": st.sampled_from(["float16", "bfloat16"]),
    "attn_implementation": st.sampled_from(["eager", "sdpa", "flash_attention_2"]),
    "device_map": st.sampled_from(["auto", "cpu", "cuda", {"": "cpu"}]),
    "max_memory": st.sampled_from([{"cpu": "1GiB"}, {"0": "4GiB", "cpu": "8GiB"}]),
    "quantization_config": st.sampled_from([{"load_in_8bit": True}, {"load_in_4bit": True}, {}]),
    "load_in_8bit": st.booleans(),
    "example_tag": st.text(max_size=5),
    "trust_remote_code": st.just(None),
})
failures = st.builds(Failure, kind=st.sampled_from(FAILURE_KINDS), cause=st.just("cause"),
                     package=st.sampled_from([None, "bitsandbytes", "accelerate", "gptqmodel"]),
                     suggestion=st.one_of(st.none(), configs))
environments = st.sampled_from([CPU, ROCM, {}, {**ROCM, "wsl": True, "packages": {"bitsandbytes": None}}])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=configs, sequence=st.lists(failures, max_size=30), environment=environments,
       max_tries=st.integers(1, 10), prune_every=st.integers(0, 3))
def test_property_never_repeats_and_always_ends(plugins, start, sequence, environment, max_tries, prune_every):
    seen = []

    def prune(config):  # preflight rejecting some candidates, deterministically
        seen.append(canonical(config))
        return "preflight: does not fit" if prune_every and len(seen) % (prune_every + 1) == 0 else None

    search = Search(LLAMA, start, environment, plugins, prune=prune, max_tries=max_tries)
    candidates = [search.first()]
    ended = False
    for failure in sequence + [Failure(kind="out_of_memory", cause="x")] * (max_tries + 1):
        candidate = search.after_failure(failure)
        if candidate is None:
            ended = True
            break
        candidates.append(candidate)
    keys = [canonical(candidate.config) for candidate in candidates]
    assert len(keys) == len(set(keys)), "a config was proposed twice"
    assert len(candidates) <= max_tries
    assert ended and search.ended_because
    assert search.after_failure(Failure(kind="other", cause="after the end")) is None
    assert all(json.loads(json.dumps(candidate.config)) == candidate.config for candidate in candidates)
    assert not any(candidate.config.get("trust_remote_code") for candidate in candidates)


def test_the_guides_propose_configs_example_runs_in_a_search(plugins):
    """docs/plugins.md's propose_configs example, as written there, registered and searched with."""
    import re
    import types
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text(encoding="utf-8")
    start = guide.index("<!-- propose-configs-example -->")
    block = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL).search(guide, start).group(1)
    example = types.ModuleType("rope_proposals")
    exec(compile(block, "docs/plugins.md (propose_configs example)", "exec"), example.__dict__)
    plugins.register(example, "rope_proposals")
    try:
        search = Search(LLAMA, {"rope_scaling_factor": 4, "dtype": "float16"}, CPU, plugins)
        search.first()
        nan = Failure(kind="non_finite", cause="The model produced non-finite logits")
        eager, without_rope, float32 = (search.after_failure(nan) for _ in range(3))
        assert eager.config == {"rope_scaling_factor": 4, "dtype": "float16", "attn_implementation": "eager"}
        assert without_rope.plugin == "rope_proposals"
        assert without_rope.config == {"dtype": "float16", "attn_implementation": "eager"}
        assert without_rope.limitation == "the model's own context length (no RoPE scaling)"
        assert float32.config == {"dtype": "float32", "attn_implementation": "eager"}
        assert float32.limitation == ("the model's own context length (no RoPE scaling); "
                                      "float32: twice the memory of 16-bit weights")
    finally:
        plugins.unregister("rope_proposals")
