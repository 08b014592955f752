"""Preflight of GGUF copies: the weights counted dequantized (parameters x the load's dtype, from the header's
tensors), not the file's size, and said to be so; what transformers cannot load is 'cannot load' before
anything loads; and the prediction stored with a real load against the peak that load measured."""

import pytest

from modelhub import preflight
from modelhub.discovery.gguf_header import read_facts
from modelhub.extensions import db
from modelhub.models import ModelRegistry
from tests.gguf_files import llama_tensors, write_gguf, write_header_only
from tests.loading.conftest import Loader
from tests.preflight.conftest import host

GIB = 2**30
# A Qwen2 big enough for its weights to be a good part of a load's peak (55M parameters: 218 MB in float32).
MEDIUM_QWEN2 = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 6, "num_attention_heads": 12,
                "num_key_value_heads": 4, "max_position_embeddings": 512, "tie_word_embeddings": False}


def check(app, model_id, load_config=None, **kwargs):
    with app.app_context():
        return preflight.check(app, db.session.get(ModelRegistry, model_id), load_config, **kwargs)


def weights_term(answer) -> dict:
    return next(term for term in answer["devices"][0]["terms"] if term["name"] == "weights")


def test_a_gguf_file_counts_its_parameters_dequantized_not_its_size(app, register, gguf_model_files):
    path = gguf_model_files.files["Q4_0"]
    parameters = read_facts(path).parameter_count
    model_id = register("tiny/qwen2", path)
    answer = check(app, model_id)
    assert answer["verdict"] == "fits", answer
    assert answer["metadata"]["parameters"] == parameters
    assert answer["metadata"]["quantization"] == "GGUF Q4_0" and answer["metadata"]["dtype"] == "float32"
    assert answer["metadata"]["source"] == f"GGUF file: {path}"
    assert answer["metadata"]["weights_bytes"] < path.stat().st_size < parameters  # Q4_0: 4.5 bits a weight
    weights = weights_term(answer)
    assert weights["bytes"] == parameters * 4
    assert f"{parameters / 1e6:.1f}M parameters dequantized from GGUF Q4_0 to float32" in weights["detail"]
    assert "the GGUF file's pages" in weights["detail"]
    assert any("GGUF Q4_0 file, dequantized while loading" in note for note in answer["notes"])

    half = check(app, model_id, {"dtype": "float16"})
    assert weights_term(half)["bytes"] == parameters * 2
    assert "dequantized from GGUF Q4_0 to float16" in weights_term(half)["detail"]


def test_the_shape_facts_come_from_the_header(app, register, gguf_model_files):
    model_id = register("tiny/qwen2", gguf_model_files.files["Q8_0"])
    answer = check(app, model_id, context_tokens=100_000)
    assert answer["context_tokens"] == 256  # the header's qwen2.context_length bounds it
    kv = next(term for term in answer["devices"][0]["terms"] if term["name"] == "kv_cache")
    # 2 x 2 layers x 2 kv heads x head_dim 32 (128 / 4 heads) x 256 tokens x float32
    assert kv["bytes"] == 2 * 2 * 2 * 32 * 256 * 4, kv


def test_an_eight_billion_q4_k_m_file_needs_its_dequantized_size(app, register, tmp_path):
    path = write_header_only(tmp_path / "Meta-Llama-3-8B-Instruct.Q4_K_M.gguf", tensors=llama_tensors(),
                             metadata={"llama.embedding_length": 4096, "llama.block_count": 32,
                                       "llama.attention.head_count": 32, "llama.attention.head_count_kv": 8,
                                       "llama.feed_forward_length": 14336},
                             tokens=["<s>", "</s>"], merges=["a b"])
    parameters = read_facts(path).parameter_count
    assert 8.0e9 < parameters < 8.1e9 and path.stat().st_size < 5 * GIB
    model_id = register("meta/llama3-8b", path)
    answer = check(app, model_id, host=host(ram=16 * GIB))
    # 32 GB, where the file is under 5 GB (plus what of the file's pages, mapped while loading, the KV cache
    # and the activations do not cover)
    size = path.stat().st_size
    assert parameters * 4 < weights_term(answer)["bytes"] < parameters * 4 + size
    assert "+ " in weights_term(answer)["detail"] and "while loading: the GGUF file's pages" in weights_term(answer)["detail"]
    assert answer["verdict"] == "wont_fit"
    bf16 = check(app, model_id, {"dtype": "bfloat16"}, host=host(ram=64 * GIB))
    assert parameters * 2 < weights_term(bf16)["bytes"] < parameters * 2 + size and bf16["verdict"] == "fits"


@pytest.mark.parametrize("which, said", [("unsupported_architecture", "architecture 'command-r'"),
                                         ("unsupported_type", "cannot dequantize Q1_0 tensors")])
def test_a_file_transformers_cannot_load_cannot_load(app, register, gguf_model_files, which, said):
    path = getattr(gguf_model_files, which)
    answer = check(app, register("tiny/odd", path))
    assert answer["verdict"] == "cannot_load"
    (problem,) = [p for p in answer["problems"] if p["kind"] == "refused"]
    assert problem["message"].startswith(f"The GGUF file {path} cannot be loaded: ") and said in problem["message"]


def test_bitsandbytes_on_a_gguf_file_cannot_load(app, register, gguf_model_files):
    model_id = register("tiny/qwen2", gguf_model_files.files["Q8_0"])
    answer = check(app, model_id, {"load_in_4bit": True})
    assert answer["verdict"] == "cannot_load"
    assert any("cannot quantize it again with bitsandbytes" in p["message"] for p in answer["problems"])


def test_a_gguf_without_the_gguf_package_here_needs_it(app, register, gguf_model_files):
    model_id = register("tiny/qwen2", gguf_model_files.files["Q8_0"])
    answer = check(app, model_id, host=host(packages={"gguf": None}))
    (problem,) = answer["problems"]
    assert problem["kind"] == "missing_package" and problem["package"] == "gguf"


@pytest.fixture(scope="module")
def medium_gguf(tmp_path_factory):
    """A 55M-parameter Qwen2 as Q8_0 and F16 GGUF files (writing them takes a few seconds)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from tests.tiny_models import VOCAB_SIZE, build_tokenizer

    root = tmp_path_factory.mktemp("medium-gguf")
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=VOCAB_SIZE, bos_token_id=1, eos_token_id=2, pad_token_id=3, **MEDIUM_QWEN2)
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "source")
    build_tokenizer(root / "source")
    return {label: write_gguf(root / "source", root / f"medium.{label}.gguf", label) for label in ("Q8_0", "F16")}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("label, load_config", [("Q8_0", None), ("F16", {"dtype": "float16"})])
def test_the_prediction_stored_with_a_real_load_is_near_its_measured_peak(database_url, tmp_path, medium_gguf,
                                                                          label, load_config):
    from modelhub.app import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_LOAD_TIMEOUT": 120,
                      "MODELHUB_HOME": str(tmp_path / "home")})
    loader = Loader(app)
    try:
        loader.register("medium/qwen2", medium_gguf[label], load_config=load_config)
        attempt = loader.load_and_wait("medium/qwen2")
    finally:
        app.extensions["modelhub.supervisor"].shutdown()
    assert attempt["outcome"] == "success", attempt
    dtype = (load_config or {}).get("dtype", "float32")
    assert attempt["load_report"]["gguf"]["dequantized_to"] == dtype
    predicted, measured = attempt["predicted_peak"]["host_bytes"], attempt["measured_peak"]["host_peak_rss_bytes"]
    # the calibration tolerance of tests/preflight/test_calibration_real.py
    assert abs(predicted / measured - 1) < 0.25, (predicted, measured)
    assert attempt["predicted_peak"]["plan"]["kind"] == "gguf/cpu"
    if label == "Q8_0":  # a prediction counting the file's size instead of the dequantized weights is far off
        parameters = read_facts(medium_gguf[label]).parameter_count
        file_counted = predicted - parameters * 4 + medium_gguf[label].stat().st_size
        assert abs(predicted / measured - 1) < 0.1 < abs(file_counted / measured - 1), (predicted, file_counted, measured)
