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

DEFAULT_OVERHEAD = 245 * 2**20  # a CPU worker's RSS after importing torch + transformers, before weights
LOAD_MACHINERY = 100 * 2**20  # after that: the model's code, its skeleton, the tokenizer, loading threads
GENERATION = 18 * 2**20  # generate()'s own buffers (logits processors, cache objects), measured
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


@dataclass
class Weights:
    """The weights once loaded (``resident``) and what loading them costs on top, at its peak."""

    resident: int
    transient: int
    how: str
    transient_how: str


def _quantized(plan: LoadPlan) -> bool:
    return plan.quantize_on_load and plan.quantization in ("bnb_8bit", "bnb_4bit")


def weights(plan: LoadPlan, checkpoint: Checkpoint) -> Weights:
    """Resident weights by dtype and quantization, and the load's transient (measured with transformers
    5.24 and bitsandbytes 0.50.2 on CPU, bench/preflight.py): safetensors files are memory-mapped, so
    a tensor kept in its stored dtype *is* its file pages (no copy); converting one reads every page of
    the files while the converted copy grows; bitsandbytes adds its import and quantization buffers the
    allocator keeps (a share of the source bytes of the quantized layers)."""
    if checkpoint.gguf:
        return _dequantized(plan, checkpoint)
    quantize = _quantized(plan)
    kept = quantized_numel = quantized_rows = quantized_source = 0
    converts = quantize
    for tensor in checkpoint.tensors:
        size = DTYPE_BYTES.get(tensor.dtype, 4)
        if quantize and is_quantizable(tensor) and not any(skip in tensor.name for skip in plan.keep_unquantized):
            quantized_numel += tensor.numel
            quantized_rows += tensor.shape[0]
            quantized_source += tensor.numel * size
            continue
        target = plan.dtype if plan.dtype and tensor.dtype.startswith(("float", "bfloat")) else tensor.dtype
        converts = converts or target != tensor.dtype
        kept += tensor.numel * DTYPE_BYTES.get(target, 4)
    unquantized = f"{(checkpoint.parameters - quantized_numel) / 1e6:.1f}M as {_as(plan, checkpoint)}"
    if not quantize:
        resident, how = kept, f"{checkpoint.parameters / 1e6:.1f}M parameters as {_as(plan, checkpoint)}"
    elif plan.quantization == "bnb_8bit":
        resident = kept + quantized_numel + quantized_rows * 4  # int8 weights + one fp32 scale per row (SCB)
        how = f"{quantized_numel / 1e6:.1f}M in int8 (+ fp32 row scales), {unquantized}"
    else:
        blocks = -(-quantized_numel // plan.quantization_overhead.get("blocksize", BNB_4BIT_BLOCK))
        scale = blocks * (1 + 4 / 256) if plan.quantization_overhead.get("double_quant") else blocks * 4
        resident = kept + quantized_numel // 2 + int(scale)  # packed 4-bit + an absmax per block
        how = f"{quantized_numel / 1e6:.1f}M in 4-bit (+ absmax per {BNB_4BIT_BLOCK}), {unquantized}"
    if not converts:
        return Weights(resident, 0, how, "used in place from the memory-mapped files")
    transient = checkpoint.stored_bytes
    transient_how = f"the files' pages ({gib(transient)}), mapped while converted"
    if quantize:
        extra = _bnb_transient(plan, quantized_source, checkpoint.dtype)
        transient += extra
        transient_how += f" + bitsandbytes' import and quantization buffers ({gib(extra)})"
    return Weights(resident, transient, how, transient_how)


def _dequantized(plan: LoadPlan, checkpoint: Checkpoint) -> Weights:
    """A GGUF file, which transformers dequantizes while loading: every parameter at the load's dtype
    (the load_config's, else what transformers picks), the file's pages mapped while it reads them (measured
    on CPU with transformers 5.24: the peak is both, whatever the file's type, even F32 into float32)."""
    dtype = plan.dtype or checkpoint.dtype
    gguf = checkpoint.gguf
    how = (f"{checkpoint.parameters / 1e6:.1f}M parameters dequantized from GGUF {gguf['quantization']} to {dtype} "
           f"(the file holds {gib(checkpoint.stored_bytes)} of weights; a GGUF load unpacks them)")
    return Weights(checkpoint.parameters * DTYPE_BYTES.get(dtype, 4), checkpoint.stored_bytes, how,
                   f"the GGUF file's pages ({gib(checkpoint.stored_bytes)}), mapped while dequantized")


# bitsandbytes on CPU, measured (bench/preflight.py): a fixed part (its import, kernels) and the share of
# the quantized layers' source bytes the allocator keeps after quantizing them.
BNB_FIXED = {"bnb_8bit": 90 * 2**20, "bnb_4bit": 47 * 2**20}
BNB_KEPT = {("bnb_8bit", 4): 0.0, ("bnb_8bit", 2): 0.9, ("bnb_4bit", 4): 0.67, ("bnb_4bit", 2): 0.67}


def _bnb_transient(plan: LoadPlan, quantized_source: int, stored_dtype: str | None) -> int:
    size = DTYPE_BYTES.get(stored_dtype or "float32", 4)
    return int(BNB_FIXED[plan.quantization] + BNB_KEPT.get((plan.quantization, size), 0.67) * quantized_source)


def weight_bytes(plan: LoadPlan, checkpoint: Checkpoint) -> tuple[int, str]:
    """The weights as they sit in memory once loaded, and how that was counted."""
    found = weights(plan, checkpoint)
    return found.resident, found.how


def _as(plan: LoadPlan, checkpoint: Checkpoint) -> str:
    return plan.dtype or f"{checkpoint.dtype} (the checkpoint's)"


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
    return residual + largest[1] + GENERATION, (f"residual stream {gib(residual)} + {largest[0]} {gib(largest[1])} "
                                                f"for {tokens} tokens + generate()'s buffers {gib(GENERATION)}")
