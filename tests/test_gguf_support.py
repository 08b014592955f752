"""What transformers loads from GGUF: the files of tests/gguf_files.py load (and the refused ones are refused)
exactly as modelhub.gguf_support says, and its lists are transformers' and gguf's own."""

import pytest

from modelhub.discovery.gguf_header import read_facts
from modelhub.gguf_support import (NOT_CAUSAL, OWN_LOADER_ARCHITECTURES, OWN_LOADER_QUANT_TYPES,
                                   SUPPORTED_ARCHITECTURES, SUPPORTED_QUANT_TYPES, SUPPORTED_TOKENIZERS,
                                   TRANSFORMERS_VERSION, load_dtype, model_type, unsupported_reason)
from tests.gguf_files import write_header_only

PROMPT = "The quick brown fox jumps over the lazy dog."


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    return model, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _logits(model, input_ids):
    import torch

    with torch.no_grad():
        return model(input_ids).logits


@pytest.fixture(scope="module")
def source(gguf_model_files):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_model_files.source)
    input_ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    return input_ids, _logits(AutoModelForCausalLM.from_pretrained(gguf_model_files.source), input_ids)


@pytest.mark.parametrize("label, tolerance", [("F32", 1e-5), ("F16", 5e-3), ("BF16", 2e-2), ("Q8_0", 5e-2)])
def test_a_gguf_file_computes_what_its_source_model_computes(gguf_model_files, source, label, tolerance):
    input_ids, expected = source
    model, tokenizer = _load(gguf_model_files.files[label])
    assert tokenizer(PROMPT, return_tensors="pt").input_ids.tolist() == input_ids.tolist()
    assert model.config.model_type == "qwen2" and model.config.num_key_value_heads == 2
    difference = (_logits(model, input_ids) - expected).abs().max().item()
    assert difference < tolerance
    assert difference == 0 if label == "F32" else difference > 0  # the weights were really rounded


@pytest.mark.parametrize("label", ["Q8_0", "Q5_0", "Q4_0"])
def test_a_quantized_gguf_file_loads_dequantized_and_generates(gguf_model_files, source, label):
    import torch

    input_ids, _ = source
    model, tokenizer = _load(gguf_model_files.files[label])
    assert model.dtype == torch.float32  # dequantized to the default dtype
    output = model.generate(input_ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert output.shape[1] > input_ids.shape[1]
    assert isinstance(tokenizer.decode(output[0]), str)


def test_transformers_refuses_the_unsupported_files_for_the_reason_given(gguf_model_files):
    for path in gguf_model_files.files.values():
        assert unsupported_reason(read_facts(path)) is None
    reason = unsupported_reason(read_facts(gguf_model_files.unsupported_architecture))
    assert "architecture 'command-r'" in reason and "qwen2, qwen2moe, qwen3" in reason
    with pytest.raises(ValueError, match="architecture command-r is not supported"):
        _load(gguf_model_files.unsupported_architecture)
    reason = unsupported_reason(read_facts(gguf_model_files.unsupported_type))
    assert "cannot dequantize Q1_0 tensors (this file is Q1_0)" in reason and "Q6_K, Q8_0" in reason
    with pytest.raises(NotImplementedError, match="Dequantization for Q1_0"):
        _load(gguf_model_files.unsupported_type)


def test_files_that_are_no_model_transformers_loads(tmp_path):
    def reason(**header):
        return unsupported_reason(read_facts(write_header_only(tmp_path / "file.gguf", **header)))

    assert reason() is None  # a Llama in Q8_0 with a byte-level BPE vocabulary
    assert reason(architecture="clip", general_type="mmproj") == "it is a mmproj file (general.type), not a model"
    assert "is an encoder-decoder (T5), not a causal language model" in reason(architecture="t5")
    assert "architecture 'rwkv7'" in reason(architecture="rwkv7")
    assert ("cannot dequantize Q5_0 tensors (this file is Q5_0); for 'lfm2' it dequantizes BF16, F16, F32, IQ1_M"
            in reason(architecture="lfm2", file_type=None, tensors=[("x.weight", (64, 64), "Q5_0")]))
    assert reason(architecture="qwen2", file_type=None, tensors=[("x.weight", (64, 64), "Q5_0")]) is None
    assert "states no tokenizer (tokenizer.ggml.model)" in reason(tokens=[])
    assert "gemma4, gpt2, llama, t5" in reason(tokens=[])
    split = reason(metadata={"split.no": 1, "split.count": 3, "split.tensors.count": 291})  # llama-gguf-split's keys
    assert split.startswith("it is part 2 of a model split into 3 GGUF files") and "llama-gguf-split --merge" in split
    assert reason(metadata={"split.no": 0, "split.count": 1}) is None  # a "split" into one file is the model


def _weights_map_accepts(model_type: str) -> bool:
    """Whether transformers' first loader finds gguf tensor names for ``model_type`` (its own code, run on a
    model with no tensors)."""
    from types import SimpleNamespace

    from transformers.modeling_gguf_pytorch_utils import TensorProcessor, get_gguf_hf_weights_map

    class NoTensors:
        config = SimpleNamespace(model_type=model_type, num_hidden_layers=1)

        def state_dict(self):
            return {}

        def named_children(self):
            return []

    try:
        get_gguf_hf_weights_map(NoTensors(), TensorProcessor())
        return True
    except NotImplementedError:
        return False


def _first_loader_reads(tmp_path) -> dict[str, str]:
    """``{gguf architecture: model_type}`` for every llama.cpp architecture transformers' first loader reads:
    a header of each, given to it as from_pretrained does."""
    import gguf
    from transformers.integrations.gguf import GGUF_CONFIG_ARCHS
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    read = {}
    # from_pretrained asks the first loader only for architectures the own loader has no config builder for
    for architecture in sorted(set(gguf.MODEL_ARCH_NAMES.values()) - set(GGUF_CONFIG_ARCHS)):
        path = write_header_only(tmp_path / f"{architecture}.gguf", architecture=architecture)
        try:
            config = load_gguf_checkpoint(str(path), return_tensors=False)["config"]
        except ValueError as error:
            assert f"architecture {architecture} is not supported" in str(error)
            continue
        if _weights_map_accepts(config["model_type"]):
            read[architecture] = config["model_type"]
    return read


def _own_loader_model_types() -> dict[str, str]:
    """``{gguf architecture: model_type}`` for transformers' own GGUF loader, from its config builders."""
    from transformers.integrations.gguf import GGUF_ARCHS, GGUF_CONFIG_ARCHS

    class AnyMetadata(dict):  # the builders only read numbers (and lists of them) from the metadata
        def __missing__(self, key):
            return [1, 1, 1, 1] if key.endswith(("dimension_sections", "head_count_kv")) else 1

    assert set(GGUF_ARCHS) == set(GGUF_CONFIG_ARCHS)
    return {architecture: build(AnyMetadata({"general.architecture": architecture}), ())["model_type"]
            for architecture, build in GGUF_CONFIG_ARCHS.items()}


def test_the_architectures_are_transformers_own(tmp_path):
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    assert transformers.__version__ == TRANSFORMERS_VERSION  # an upgrade: check every list here again
    read = _first_loader_reads(tmp_path) | _own_loader_model_types()
    causal = {architecture for architecture, kind in read.items() if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES}
    assert SUPPORTED_ARCHITECTURES == causal
    assert set(NOT_CAUSAL) == set(read) - causal
    assert OWN_LOADER_ARCHITECTURES == set(_own_loader_model_types())
    assert {architecture: model_type(architecture) for architecture in causal} == {a: read[a] for a in causal}
    assert model_type("llama", "mistral") == "mistral" and model_type("command-r") is None


def test_the_tensor_types_are_those_each_loader_dequantizes():
    import gguf
    import numpy as np
    from transformers.integrations.gguf.dequant import GGML_NAME

    first = set()
    for qtype in gguf.GGMLQuantizationType:
        block_bytes = gguf.GGML_QUANT_SIZES[qtype][1]
        try:
            gguf.dequantize(np.zeros((1, block_bytes), dtype=np.uint8), qtype)
        except NotImplementedError:
            continue
        first.add(qtype.name)
    assert SUPPORTED_QUANT_TYPES == first
    assert OWN_LOADER_QUANT_TYPES == set(GGML_NAME.values()) | {"F32", "F16", "BF16"}


def test_the_tokenizers_are_those_transformers_builds():
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_TYPES

    assert SUPPORTED_TOKENIZERS == set(GGUF_TOKENIZER_TYPES)


@pytest.mark.parametrize("types", [["F32", "F16"], ["F32", "BF16"], ["F32"], ["F32", "Q8_0"]])
def test_the_dtype_a_file_loads_in(tmp_path, types):
    from transformers.integrations.gguf.reader import GgufHeader

    tensors = [(f"blk.{index}.weight", (64, 64), type_name) for index, type_name in enumerate(types)]
    for architecture in ("lfm2", "llama"):
        path = write_header_only(tmp_path / f"{architecture}.gguf", architecture=architecture, tensors=tensors)
        expected = "float32"
        if architecture == "lfm2":  # transformers' own loader builds in the file's float type
            header_dtype = GgufHeader.from_file(str(path)).dtype
            expected = "float32" if header_dtype is None else str(header_dtype).removeprefix("torch.")
        assert load_dtype(read_facts(path)) == expected


def test_a_first_loader_file_loads_in_float32_whatever_its_type(gguf_model_files):
    import torch
    from transformers import AutoModelForCausalLM

    path = gguf_model_files.files["F16"]
    assert load_dtype(read_facts(path)) == "float32"
    assert AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).dtype == torch.float32
