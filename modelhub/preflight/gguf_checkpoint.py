"""A GGUF copy as preflight knows it, from the file's header alone (modelhub/discovery/gguf_header.py):
its tensors, the shape facts the KV cache and activations need (under config.json's names), and the dtype
transformers dequantizes it to when the load_config names none.

transformers 5.24 loads a GGUF file dequantized: every weight becomes a plain tensor of the load's dtype,
so what sits in memory is the parameters at that dtype, not the file's size (estimate.weights counts it
so). Measured on CPU (bench and tests/preflight/test_gguf_preflight.py): the peak is those weights, the
file's pages, mapped while they are dequantized, and the usual machinery.
"""

from modelhub.discovery.gguf_header import GGML_TYPES, read_facts
from modelhub.gguf_support import load_dtype, model_type, unsupported_reason
from modelhub.preflight import headers

FLOAT_TYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}
# config.json's names for the header's {architecture}.* keys
CONFIG_KEYS = {"hidden_size": "embedding_length", "num_hidden_layers": "block_count",
               "num_attention_heads": "attention.head_count", "num_key_value_heads": "attention.head_count_kv",
               "intermediate_size": "feed_forward_length", "max_position_embeddings": "context_length",
               "head_dim": "attention.key_length", "sliding_window": "attention.sliding_window",
               "vocab_size": "vocab_size"}


def describe(path: str) -> dict:
    """The GGUF file at ``path`` as checkpoint.Checkpoint's fields (config, tensors, gguf). Raises GgufError
    (not a readable GGUF file) or OSError."""
    facts = read_facts(path)
    tensors = [headers.Tensor(name, _dtype(type_name), tuple(reversed(shape))) for name, shape, type_name in facts.tensors]
    gguf = {"file": path, "architecture": facts.architecture, "quantization": facts.quant_label,
            "tensor_types": sorted(facts.tensor_types), "stored_bytes": sum(_stored(t) for t in facts.tensors),
            "default_dtype": load_dtype(facts),
            "unsupported": unsupported_reason(facts)}
    return {"config": _config(facts), "tensors": tensors, "gguf": gguf}


def _config(facts) -> dict:
    """The header's shape facts under config.json's names (what estimate.architecture reads)."""
    config = {"model_type": model_type(facts.architecture, facts.name)}
    for name, key in CONFIG_KEYS.items():
        value = facts.metadata.get(f"{facts.architecture}.{key}")
        if isinstance(value, int) and not isinstance(value, bool):
            config[name] = value
    if "vocab_size" not in config:  # the embedding's rows (ggml order: hidden first, then the vocabulary)
        embedding = next((shape for name, shape, _ in facts.tensors if name == "token_embd.weight"), None)
        if embedding and len(embedding) == 2:
            config["vocab_size"] = embedding[1]
    return config


def _dtype(type_name: str) -> str:
    """A tensor's type as preflight names dtypes: float32/float16/bfloat16, else the ggml block type."""
    return FLOAT_TYPES.get(type_name, f"gguf_{type_name.lower()}")


def _stored(tensor) -> int:
    """Bytes of one tensor's data in the file (ggml blocks: elements per block, bytes per block)."""
    _name, shape, type_name = tensor
    elements = 1
    for size in shape:
        elements *= size
    block = next(((per_block, size) for name, per_block, size in GGML_TYPES.values() if name == type_name), (1, 4))
    return -(-elements // block[0]) * block[1]
