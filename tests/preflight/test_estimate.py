"""The memory terms: weights by dtype and quantization, the KV cache (sliding-window layers), activations."""

from modelhub.preflight import checkpoint, estimate
from modelhub.preflight.checkpoint import Checkpoint
from modelhub.preflight.headers import Tensor
from modelhub.preflight.plan import LoadPlan

GEMMA_LIKE = {"model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 6, "num_attention_heads": 4,
              "num_key_value_heads": 1, "head_dim": 256, "intermediate_size": 2048, "vocab_size": 1000,
              "sliding_window": 512}


def shaped(config):
    return estimate.architecture(Checkpoint(directory="-", source="test", config=config, files=[]))


def test_kv_cache_counts_full_attention_layers_over_the_whole_context():
    shape = shaped({**GEMMA_LIKE, "sliding_window": None})
    total, detail = estimate.kv_cache(shape, 4096, "bfloat16")
    assert total == 2 * 6 * 1 * 256 * 4096 * 2
    assert "6 full-attention layers" in detail


def test_sliding_window_layers_hold_only_their_window_layer_types():
    types = ["sliding_attention"] * 5 + ["full_attention"]
    total, detail = estimate.kv_cache(shaped({**GEMMA_LIKE, "layer_types": types}), 4096, "bfloat16")
    per_token = 2 * 1 * 256 * 2
    assert total == per_token * (1 * 4096 + 5 * 512)
    assert "5 sliding-window layers hold at most 512 tokens" in detail
    # within the window every layer holds the whole context
    assert estimate.kv_cache(shaped({**GEMMA_LIKE, "layer_types": types}), 256, "bfloat16")[0] == per_token * 6 * 256


def test_sliding_window_pattern_makes_every_nth_layer_global():
    total, _ = estimate.kv_cache(shaped({**GEMMA_LIKE, "sliding_window_pattern": 6}), 4096, "float32")
    assert total == 2 * 256 * 4 * (1 * 4096 + 5 * 512)


def test_gpt2_names_are_understood(tiny_models):
    shape = estimate.architecture(checkpoint.read(str(tiny_models["gpt2"]), "x/gpt2"))
    assert (shape["hidden"], shape["layers"], shape["heads"], shape["kv_heads"], shape["head_dim"]) == (64, 2, 4, 4, 16)


def test_bitsandbytes_weights_keep_embeddings_and_head_unquantized():
    tensors = [Tensor("model.embed_tokens.weight", "bfloat16", (1000, 64)),
               Tensor("model.layers.0.mlp.up_proj.weight", "bfloat16", (256, 64)),
               Tensor("model.layers.0.input_layernorm.weight", "bfloat16", (64,)),
               Tensor("lm_head.weight", "bfloat16", (1000, 64))]
    found = Checkpoint(directory="-", source="test", config={}, files=[], tensors=tensors)
    kept = (1000 * 64 * 2 + 64) * 2  # embeddings, head and norm at bf16
    assert estimate.weight_bytes(LoadPlan(), found)[0] == kept + 256 * 64 * 2
    eight = LoadPlan(quantization="bnb_8bit", quantize_on_load=True)
    assert estimate.weight_bytes(eight, found)[0] == kept + 256 * 64 + 256 * 4  # int8 + fp32 row scales
    four = LoadPlan(quantization="bnb_4bit", quantize_on_load=True)
    assert estimate.weight_bytes(four, found)[0] == kept + 256 * 64 // 2 + (256 * 64 // 64) * 4
    fp32 = LoadPlan(dtype="float32")
    assert estimate.weight_bytes(fp32, found)[0] == 2 * (kept + 256 * 64 * 2)


def test_eager_attention_grows_with_the_square_of_the_context():
    shape = shaped({**GEMMA_LIKE, "vocab_size": 10})
    fused = estimate.activations(shape, 8192, 1, "float16", None)[0]
    eager, detail = estimate.activations(shape, 8192, 1, "float16", "eager")
    assert eager > 4 * fused and "attention" in detail
