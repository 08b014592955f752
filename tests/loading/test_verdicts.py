"""Verdicts that mean what they say: real loads of locally built checkpoints that transformers "loads" with
random weights (no LM head, a mismatched shape), one that loads only with a part on disk, an encoder-decoder
refused before its weights are read, and the report of what a load really was. The judging functions
themselves are tested below without a worker."""

from types import SimpleNamespace

import pytest

from modelhub.loading import load_report, verdict
from tests import tiny_models as builders

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def checkpoints(tiny_models, tmp_path_factory):
    """``{kind: directory}``: the checkpoints a verdict must see through, built once per module."""
    root, llama = tmp_path_factory.mktemp("verdict-checkpoints"), tiny_models["llama"]
    return {
        "bert": builders.build_headless_bert(root / "bert", llama),
        "mismatched": builders.build_mismatched_llama(root / "mismatched", llama),
        "tied": builders.build_tied_llama(root / "tied", llama),
        "t5": builders.build_t5(root / "t5", llama),
    }


@pytest.mark.slow
def test_a_checkpoint_without_an_lm_head_is_incompatible_and_says_why(loader, checkpoints):
    """A sentence-embedding BERT: transformers fills the missing head with random weights and the smoke
    test would get finite noise; the verdict is a failure naming the head and the count."""
    loader.register("tiny/embedder", checkpoints["bert"])

    attempt = loader.load_and_wait("tiny/embedder")

    assert attempt["outcome"] == "failure", attempt
    assert loader.status("tiny/embedder") == "incompatible"
    assert attempt["error_type"] == "MissingWeights"
    cause = attempt["explanation"]
    assert "this checkpoint has no causal-LM head: 6 weights newly initialized (cls.predictions.*)" in cause, cause
    assert "sentence-embedding model" in cause and "BertModel" in cause
    assert attempt["smoke_test"] is None, "a load with random weights is not smoke-tested"
    report = attempt["load_report"]
    assert report["model_class"] == "BertLMHeadModel"
    assert report["loading_info"]["missing"]["count"] == 6
    assert report["loading_info"]["unexpected"]["items"] == ["pooler.dense.bias", "pooler.dense.weight"]
    assert any("pooler.dense.*" in warning for warning in attempt["warnings"]), attempt["warnings"]


@pytest.mark.slow
def test_a_mismatched_shape_fails_naming_the_weight_and_both_shapes(loader, checkpoints):
    loader.register("tiny/mismatched", checkpoints["mismatched"])

    attempt = loader.load_and_wait("tiny/mismatched")

    assert attempt["outcome"] == "failure", attempt
    assert loader.status("tiny/mismatched") == "incompatible"
    assert attempt["error_type"] == "MismatchedWeights"
    assert "1 weight in the checkpoint has another shape than config.json gives the model: lm_head.weight " \
           "(checkpoint 1024×64, model 1000×64)" in attempt["explanation"], attempt["explanation"]
    assert attempt["load_report"]["loading_info"]["mismatched"]["items"] == [
        {"key": "lm_head.weight", "checkpoint": [1024, 64], "model": [1000, 64]}]
    assert "ignore_mismatched_sizes" not in attempt["final_kwargs"], "the loader's own flag is not the user's config"


@pytest.mark.slow
def test_a_load_that_works_only_with_a_part_on_disk_is_degraded_with_its_reason(loader, tiny_models):
    """On this CPU-only machine the CPU is the main device: a layer read from disk is an offload."""
    device_map = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
                  "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
    loader.register("tiny/offloaded", tiny_models["llama"], load_config={"device_map": device_map})

    attempt = loader.load_and_wait("tiny/offloaded")

    assert attempt["outcome"] == "success", attempt
    report = attempt["load_report"]
    assert report["placement"]["counts"] == {"cpu": 5, "disk": 1}
    assert report["placement"]["modules"]["disk"] == ["model.layers.1"]
    reason = report["degraded_reason"]
    assert reason.startswith("Works only with parts offloaded to disk: 1 of 6 modules (model.layers.1)"), reason
    assert attempt["environment_status"] == "degraded"
    assert loader.status("tiny/offloaded") == "degraded"
    modal = loader.client.get("/models/tiny/offloaded/details").get_data(as_text=True)
    assert "Loaded as: float32 · sdpa · cpu 5 modules, disk 1 module · not quantized" in modal
    assert "<strong>Degraded:</strong> Works only with parts offloaded to disk" in modal


@pytest.mark.slow
def test_a_tied_head_is_not_a_missing_head_and_the_report_says_what_the_load_was(loader, checkpoints, tiny_models):
    loader.register("tiny/tied", checkpoints["tied"])
    loader.register("tiny/llama", tiny_models["llama"])

    tied = loader.load_and_wait("tiny/tied")

    assert tied["outcome"] == "success", tied
    assert loader.status("tiny/tied") == "compatible"
    report = tied["load_report"]
    assert report["loading_info"]["missing"] == {"count": 0, "items": []}
    assert (report["dtype"], report["attention"], report["quantization"]) == ("float32", "sdpa", None)
    assert report["placement"]["summary"] == "all on cpu" and report["placement"]["device_map"] is False
    assert report["degraded_reason"] is None and report["parameters"] > 0

    plain = loader.load_and_wait("tiny/llama")
    smoke = plain["smoke_test"]
    assert smoke["prompt"] == "The capital of France is"
    assert len(smoke["token_ids"]) == smoke["new_tokens"] == 8 and len(set(smoke["token_ids"])) > 1
    assert plain["warnings"] == [], "a varied continuation is no warning"


@pytest.mark.slow
@SQLITE_ONLY
def test_a_degenerate_continuation_is_a_warning_not_a_failure(loader, tiny_models):
    """The untrained tiny GPT-2 says one token eight times: recorded and warned about, still a success."""
    loader.register("tiny/gpt2", tiny_models["gpt2"])

    attempt = loader.load_and_wait("tiny/gpt2")

    assert attempt["outcome"] == "success", attempt
    assert loader.status("tiny/gpt2") == "compatible"
    ids = attempt["smoke_test"]["token_ids"]
    assert len(ids) == 8 and len(set(ids)) == 1
    (warning,) = attempt["warnings"]
    assert "repeats one token" in warning and "for all 8 new tokens" in warning
    modal = loader.client.get("/models/tiny/gpt2/details").get_data(as_text=True)
    assert f"Said: “{attempt['smoke_test']['output']}”" in modal
    assert "<strong>Warning:</strong> The smoke test&#39;s continuation" in modal


@pytest.mark.slow
def test_an_encoder_decoder_fails_in_preflight_before_its_weights_are_read(loader, checkpoints, tmp_path):
    import shutil

    directory = tmp_path / "t5"
    shutil.copytree(checkpoints["t5"], directory)
    (directory / "model.safetensors").write_bytes(b"not weights")  # reading them would fail otherwise
    loader.register("tiny/t5", directory)

    attempt = loader.load_and_wait("tiny/t5")

    assert attempt["outcome"] == "failure", attempt
    assert loader.status("tiny/t5") == "incompatible"
    assert attempt["error_type"] == "NotACausalLM"
    assert attempt["explanation"].startswith("'t5' models are not causal language models that AutoModelForCausalLM "
                                             "can load (encoder-decoder"), attempt["explanation"]
    assert attempt["load_report"] is None


# The judging functions on their own (no worker, no database).

def test_degraded_reason_on_a_gpu_host_counts_cpu_parts_unless_the_config_chose_the_cpu():
    gpus = [{"index": 0}]
    split = {"device_map": True, "counts": {"gpu": 30, "cpu": 2},
             "modules": {"gpu": ["model.layers.0"], "cpu": ["model.layers.30", "lm_head"]}}
    reason = load_report.degraded_reason(split, gpus, "auto")
    assert reason.startswith("Works only with parts offloaded: 2 of 32 modules on the CPU (model.layers.30, lm_head)")
    assert load_report.degraded_reason(split, [], "auto") is None, "without a GPU the CPU is the main device"
    all_cpu = {"device_map": True, "counts": {"cpu": 1}, "modules": {"cpu": ["(whole model)"]}}
    assert load_report.degraded_reason(all_cpu, gpus, "auto") is not None, "auto found no room on the GPU"
    assert load_report.degraded_reason(all_cpu, gpus, {"": "cpu"}) is None, "the load_config chose the CPU"
    assert load_report.degraded_reason({"device_map": False, "counts": {"cpu": 1}}, gpus, None) is None


def test_device_kinds_as_accelerate_writes_them():
    assert [load_report.device_kind(d) for d in (0, "cuda:1", "cpu", "disk", "meta", "mps")] == \
        ["gpu", "gpu", "cpu", "disk", "disk", "gpu"]


def test_tied_weights_and_buffers_are_not_missing_weights():
    class Model:
        all_tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight",
                                 "cls.decoder.bias": "cls.bias"}

        def named_buffers(self):
            return iter([("model.rotary_emb.inv_freq", None)])

    missing = {"lm_head.weight", "model.rotary_emb.inv_freq", "cls.decoder.bias", "cls.bias"}
    # cls.decoder.bias is tied to cls.bias, which is missing too: both stay random
    assert verdict.needed_missing(Model(), missing) == ["cls.bias", "cls.decoder.bias"]


class Tokenizer:
    all_special_ids = [0, 1, 2, 3]

    def decode(self, ids):
        return "".join(f"<{token}>" for token in ids)


@pytest.mark.parametrize("ids, output, expected", [
    ([7, 7, 7, 7], "x x x x", "repeats one token ('<7>') for all 4 new tokens"),
    ([3, 3, 2], "", "is only special tokens"),
    ([], "", "is empty"),
    ([9, 10], "  ", "decodes to no visible text"),
    ([9, 10, 9], "Paris, of", None),
])
def test_continuation_warnings(ids, output, expected):
    warnings = verdict.continuation_warnings({"prompt": "p", "token_ids": ids, "output": output}, Tokenizer())
    if expected is None:
        assert warnings == []
    else:
        (warning,) = warnings
        assert expected in warning


def test_preflight_lets_a_causal_lm_and_remote_causal_code_through():
    from modelhub.loading.types import ModelInfo

    def info(config):
        return ModelInfo(name="m", hf_path="m", location="/nowhere", config=config)

    verdict.preflight(info({"model_type": "bert"}), {})  # BertLMHeadModel exists: weights decide
    verdict.preflight(info({"model_type": "brand-new-arch"}), {})  # unknown: from_pretrained explains it
    remote = {"model_type": "t5", "auto_map": {"AutoModelForCausalLM": "modeling.MyLM"}}
    verdict.preflight(info(remote), {"trust_remote_code": True})
    with pytest.raises(verdict.NotACausalLM, match="auto_map names no AutoModelForCausalLM"):
        verdict.preflight(info({"model_type": "t5", "auto_map": {"AutoModel": "x.Y"}}), {"trust_remote_code": True})
    with pytest.raises(verdict.NotACausalLM) as refused:
        verdict.preflight(info({"model_type": "distilbert"}), {})
    assert str(refused.value).startswith("'distilbert' models are not causal language models that "
                                         "AutoModelForCausalLM can load (an encoder: it fills in masked words")


def test_gpu_architecture_is_the_compute_capability_or_the_gcn_arch(monkeypatch):
    import torch

    from plugins.default_loader import _architecture

    monkeypatch.setattr(torch.version, "hip", None)
    assert _architecture(SimpleNamespace(major=8, minor=9, gcnArchName="ignored")) == "sm_89"
    monkeypatch.setattr(torch.version, "hip", "6.4.0")
    assert _architecture(SimpleNamespace(major=11, minor=0, gcnArchName="gfx1100")) == "gfx1100"


@pytest.mark.slow
def test_files_out_of_reach_are_no_verdict_and_leave_the_status_as_it_was(loader):
    """Not in the hub cache and the Hub unreachable (HF_HUB_OFFLINE here): the load could not be tried,
    which says nothing about the model; before, it became incompatible."""
    response = loader.client.post("/api/models", json={"model_name": "acme/not-downloaded",
                                                      "compatibility_status": "compatible"})
    assert response.status_code == 201, response.json
    attempt = loader.load_and_wait("acme/not-downloaded")
    assert (attempt["outcome"], attempt["error_type"]) == ("interrupted", "FilesUnavailable"), attempt
    assert "could not be reached" in attempt["explanation"] and "huggingface-cli download acme/not-downloaded" in \
        attempt["explanation"]
    assert attempt["environment_status"] is None
    assert loader.status("acme/not-downloaded") == "compatible"
