"""Checkpoints as preflight sees them: a config.json and a safetensors header declaring every tensor, the
data a hole in a sparse file (no disk used, nothing to load). Preflight reads metadata only, so a
header-only Llama of 1.6 GiB is exactly what it would read of a real one; with a worker memory limit
(MODELHUB_WORKER_MEMORY_LIMIT) around its size, every verdict is reached on any host.

Real loads use the tiny models of tests/tiny_models.py; these are for sizes those cannot have."""

import json
import math
import struct
from pathlib import Path

# A 0.85B-parameter Llama stored in bfloat16: 1.59 GiB of weights.
SMALL_LLAMA = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 16, "num_attention_heads": 16,
               "num_key_value_heads": 4, "vocab_size": 32000, "max_position_embeddings": 4096}


def build_llama(directory: Path, dims: dict = SMALL_LLAMA, dtype: str = "BF16") -> Path:
    """Write ``config.json`` and a header-only ``model.safetensors`` for a Llama of ``dims``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16",
              "tie_word_embeddings": False, **dims}
    (directory / "config.json").write_text(json.dumps(config))
    header, offset = {}, 0
    for name, shape in _llama_tensors(dims).items():
        size = math.prod(shape) * 2
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    with open(directory / "model.safetensors", "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)  # the tensors' bytes: a hole
    return directory


def _llama_tensors(dims: dict) -> dict[str, list[int]]:
    hidden, inter, vocab = dims["hidden_size"], dims["intermediate_size"], dims["vocab_size"]
    kv = dims["num_key_value_heads"] * hidden // dims["num_attention_heads"]
    tensors = {"model.embed_tokens.weight": [vocab, hidden], "lm_head.weight": [vocab, hidden],
               "model.norm.weight": [hidden]}
    for layer in range(dims["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        tensors.update({
            prefix + "self_attn.q_proj.weight": [hidden, hidden], prefix + "self_attn.k_proj.weight": [kv, hidden],
            prefix + "self_attn.v_proj.weight": [kv, hidden], prefix + "self_attn.o_proj.weight": [hidden, hidden],
            prefix + "mlp.gate_proj.weight": [inter, hidden], prefix + "mlp.up_proj.weight": [inter, hidden],
            prefix + "mlp.down_proj.weight": [hidden, inter], prefix + "input_layernorm.weight": [hidden],
            prefix + "post_attention_layernorm.weight": [hidden],
        })
    return tensors
