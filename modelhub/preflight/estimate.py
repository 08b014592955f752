"""Peak memory of a load and its smoke generation, term by term, from the checkpoint and the plan.

Terms (each shown to the user, with how it was computed): ``weights`` (every tensor at the dtype or the
quantization the plan says; bitsandbytes keeps embeddings and the head unquantized, adds its scales),
the load's transient (what reading and converting the files costs on top: counted into ``weights``'s
detail), ``kv_cache`` (2 x full-attention layers x key/value heads x head_dim x context x bytes; a
sliding-window layer holds at most its window), ``activations`` (the residual stream plus the largest of
the attention, MLP and LM-head transients for one forward pass of the context) and ``overhead`` (the
worker before any weight: Python, torch, transformers; measured on this host when a load has run).
"""

from dataclasses import dataclass

from modelhub.preflight.checkpoint import Checkpoint, is_quantizable
from modelhub.preflight.plan import DTYPE_BYTES, LoadPlan

DEFAULT_OVERHEAD = 600 * 2**20  # a CPU worker's RSS after importing torch + transformers, before weights
GPU_CONTEXT = 400 * 2**20  # CUDA/HIP context and kernels: on the GPU, outside torch's allocations
SMOKE_PROMPT_TOKENS = 8  # the worker's smoke prompt, tokenized (about)
SMOKE_CONTEXT = SMOKE_PROMPT_TOKENS + 8  # the prompt plus the 8 tokens it generates
BNB_4BIT_BLOCK = 64  # bitsandbytes' 4-bit blocksize: one absmax per 64 weights


@dataclass
class Term:
    device: str
    name: str
    bytes: int
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "bytes": int(self.bytes), "detail": self.detail}


def gib(value: float) -> str:
    if abs(value) >= 2**30:
        return f"{value / 2**30:.2f} GiB"
    return f"{value / 2**20:.1f} MiB"


def compute_dtype(plan: LoadPlan, checkpoint: Checkpoint) -> str:
    """The dtype of activations and the KV cache: the unquantized weights' dtype."""
    if plan.quantization == "bnb_4bit" and plan.quantization_overhead.get("compute_dtype"):
        return plan.quantization_overhead["compute_dtype"]
    dtype = plan.dtype or checkpoint.dtype or "float32"
    return dtype if dtype in DTYPE_BYTES and dtype.startswith(("float", "bfloat")) else "float32"


def weight_bytes(plan: LoadPlan, checkpoint: Checkpoint) -> tuple[int, str]:
    """The weights as they sit in memory once loaded, and how that was counted."""
    dtype = plan.dtype
    quantized_numel = quantized_rows = kept = 0
    quantize = plan.quantize_on_load and plan.quantization in ("bnb_8bit", "bnb_4bit")
    for tensor in checkpoint.tensors:
        if quantize and is_quantizable(tensor) and not any(skip in tensor.name for skip in plan.keep_unquantized):
            quantized_numel += tensor.numel
            quantized_rows += tensor.shape[0]
            continue
        stored = tensor.dtype
        target = dtype if (dtype and stored.startswith(("float", "bfloat"))) else stored
        if plan.quantization and not plan.quantize_on_load and not stored.startswith(("float", "bfloat")):
            target = stored  # a pre-quantized checkpoint's packed integers stay as stored
        kept += tensor.numel * DTYPE_BYTES.get(target, 4)
    if not quantize:
        return kept, f"{checkpoint.parameters / 1e6:.1f}M parameters as {_as(plan, checkpoint)}"
    if plan.quantization == "bnb_8bit":
        quantized = quantized_numel + quantized_rows * 4  # int8 weights + one fp32 scale per row (SCB)
        how = f"{quantized_numel / 1e6:.1f}M in int8 (+ fp32 row scales)"
    else:
        blocks = -(-quantized_numel // plan.quantization_overhead.get("blocksize", BNB_4BIT_BLOCK))
        scale = blocks * (1 + 4 / 256) if plan.quantization_overhead.get("double_quant") else blocks * 4
        quantized = quantized_numel // 2 + int(scale)
        how = f"{quantized_numel / 1e6:.1f}M in 4-bit (0.5 byte + absmax per {BNB_4BIT_BLOCK})"
    return kept + quantized, f"{how}; {(checkpoint.parameters - quantized_numel) / 1e6:.1f}M unquantized as {_as(plan, checkpoint)}"


def _as(plan: LoadPlan, checkpoint: Checkpoint) -> str:
    return plan.dtype or f"{checkpoint.dtype} (the checkpoint's)"


def load_transient(plan: LoadPlan, checkpoint: Checkpoint, weights: int) -> tuple[int, str]:
    """What reading the files costs on top of the loaded weights, on the host. Safetensors files are
    memory-mapped: pages read count in RSS while mapped. Converting (dtype, quantization) reads every
    page while the converted copy grows; a load that keeps the stored dtype maps the pages it uses."""
    converts = plan.quantize_on_load or (plan.dtype and plan.dtype != checkpoint.dtype)
    if converts:
        return checkpoint.stored_bytes, "the weight files' pages, read while converted"
    return 0, "weights used as stored (memory-mapped)"


def architecture(checkpoint: Checkpoint) -> dict:
    """The shape facts the KV cache and activations depend on, under their usual config names."""
    config = checkpoint.text_config

    def first(*names, default=None):
        for name in names:
            if isinstance(config.get(name), int) and not isinstance(config.get(name), bool):
                return config[name]
        return default

    hidden = first("hidden_size", "n_embd", "d_model", default=0)
    heads = first("num_attention_heads", "n_head", default=1) or 1
    layers = first("num_hidden_layers", "n_layer", "num_layers", default=0)
    return {
        "hidden": hidden, "heads": heads, "layers": layers,
        "kv_heads": first("num_key_value_heads", "num_kv_heads", default=heads),
        "head_dim": first("head_dim", default=hidden // heads if heads else 0),
        "intermediate": first("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden),
        "vocab": first("vocab_size", default=0),
        "window": first("sliding_window", default=None),
        "layer_types": config.get("layer_types") if isinstance(config.get("layer_types"), list) else None,
        "pattern": first("sliding_window_pattern", default=None),
    }


def kv_cache(shape: dict, context: int, dtype: str) -> tuple[int, str]:
    """2 (keys and values) x layers x kv heads x head_dim x tokens x bytes, per layer's span."""
    per_token_layer = 2 * shape["kv_heads"] * shape["head_dim"] * DTYPE_BYTES[dtype]
    full, sliding = _layer_kinds(shape)
    window = min(context, shape["window"] or context)
    total = per_token_layer * (full * context + sliding * window)
    detail = f"2 x {full} full-attention layers x {shape['kv_heads']} kv heads x {shape['head_dim']} x {context} tokens x {dtype}"
    if sliding:
        detail += f"; {sliding} sliding-window layers hold at most {window} tokens"
    return total, detail


def _layer_kinds(shape: dict) -> tuple[int, int]:
    """(full-attention layers, sliding-window layers)."""
    layers = shape["layers"]
    if shape["layer_types"]:
        sliding = sum(1 for kind in shape["layer_types"] if "sliding" in str(kind))
        return len(shape["layer_types"]) - sliding, sliding
    if shape["pattern"] and shape["window"]:  # Gemma 3: every pattern-th layer is global
        full = layers // shape["pattern"]
        return full, layers - full
    return layers, 0


def activations(shape: dict, tokens: int, prompt_tokens: int, dtype: str, attn: str | None) -> tuple[int, str]:
    """One forward pass over ``tokens``: the residual stream (kept twice: input and output of a
    block) plus the largest transient of attention (eager: the score matrix; fused: q, k, v and the
    output), the MLP (gate and up projections) and the LM head (logits of the prompt, in the dtype
    and upcast to float32)."""
    size = DTYPE_BYTES[dtype]
    residual = 2 * tokens * shape["hidden"] * size
    if attn == "eager":
        attention = 2 * shape["heads"] * tokens * tokens * size
    else:
        attention = 4 * tokens * shape["heads"] * shape["head_dim"] * size
    mlp = 3 * tokens * shape["intermediate"] * size
    head = max(prompt_tokens, 1) * shape["vocab"] * (size + 4)
    largest = max(("attention", attention), ("MLP", mlp), ("LM head", head), key=lambda item: item[1])
    return residual + largest[1], f"residual stream {gib(residual)} + {largest[0]} {gib(largest[1])} for {tokens} tokens"
