"""What transformers loads from GGUF: the files of tests/gguf_files.py load (and the refused ones are refused)
exactly as modelhub.gguf_support says, and its lists are transformers' and gguf's own."""

import pytest

from tests.gguf_files import gguf_model_files  # noqa: F401  (the fixture)

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
def source(gguf_model_files):  # noqa: F811
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_model_files.source)
    input_ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    return input_ids, _logits(AutoModelForCausalLM.from_pretrained(gguf_model_files.source), input_ids)


@pytest.mark.parametrize("label, tolerance", [("F32", 1e-5), ("F16", 5e-3), ("BF16", 2e-2), ("Q8_0", 5e-2)])
def test_a_gguf_file_computes_what_its_source_model_computes(gguf_model_files, source, label, tolerance):  # noqa: F811
    input_ids, expected = source
    model, tokenizer = _load(gguf_model_files.files[label])
    assert tokenizer(PROMPT, return_tensors="pt").input_ids.tolist() == input_ids.tolist()
    assert model.config.model_type == "qwen2" and model.config.num_key_value_heads == 2
    difference = (_logits(model, input_ids) - expected).abs().max().item()
    assert difference < tolerance
    assert difference == 0 if label == "F32" else difference > 0  # the weights were really rounded


@pytest.mark.parametrize("label", ["Q8_0", "Q5_0", "Q4_0"])
def test_a_quantized_gguf_file_loads_dequantized_and_generates(gguf_model_files, source, label):  # noqa: F811
    import torch

    input_ids, _ = source
    model, tokenizer = _load(gguf_model_files.files[label])
    assert model.dtype == torch.float32  # dequantized to the default dtype
    output = model.generate(input_ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert output.shape[1] > input_ids.shape[1]
    assert isinstance(tokenizer.decode(output[0]), str)


def test_transformers_refuses_the_unsupported_files(gguf_model_files):  # noqa: F811
    with pytest.raises(ValueError, match="architecture command-r is not supported"):
        _load(gguf_model_files.unsupported_architecture)
    with pytest.raises(NotImplementedError, match="Dequantization for Q1_0"):
        _load(gguf_model_files.unsupported_type)
