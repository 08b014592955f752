"""What transformers (the version below) can load from a GGUF file, written down so that discovery, preflight and
the web process can tell without importing it (or torch, or the gguf package). tests/test_gguf_support.py checks
every list against transformers' and gguf's own code, so an upgrade that changes them fails there.

transformers reads GGUF two ways. Most architectures go through its first loader (modeling_gguf_pytorch_utils):
the gguf package reads the file and dequantizes every tensor with numpy, and the model is built in torch's
default dtype (float32). A few newer ones (GGUF_ARCHS in transformers/integrations/gguf) have a loader of its own
that dequantizes with torch into the file's float type, or keeps the blocks packed where the ``kernels`` package
has a kernel for them; its types are fewer."""

TRANSFORMERS_VERSION = "5.24.0"

# GGUF architecture (general.architecture, llama.cpp's name) -> the transformers model_type it loads as, for
# every architecture AutoModelForCausalLM loads from GGUF.
_MODEL_TYPES = {
    "bloom": "bloom", "falcon": "falcon", "gemma2": "gemma2", "gemma3": "gemma3_text", "gemma4": "gemma4_text",
    "gpt-oss": "gpt_oss", "gpt2": "gpt2", "llama": "llama", "mamba": "mamba", "minimax-m2": "minimax_m2",
    "nemotron": "nemotron", "phi3": "phi3", "qwen2": "qwen2", "qwen2moe": "qwen2_moe", "qwen3": "qwen3",
    "qwen3moe": "qwen3_moe", "stablelm": "stablelm", "starcoder2": "starcoder2",
    # transformers' own GGUF loader
    "lfm2": "lfm2", "qwen35": "qwen3_5_text", "qwen35moe": "qwen3_5_moe_text",
}
SUPPORTED_ARCHITECTURES = frozenset(_MODEL_TYPES)
OWN_LOADER_ARCHITECTURES = frozenset({"lfm2", "qwen35", "qwen35moe"})
# Architectures transformers reads from GGUF that are no causal language model it can build: why not.
NOT_CAUSAL = {
    "t5": "an encoder-decoder (T5)",
    "t5encoder": "a T5 encoder",
    "deci": "a DeciLM, which transformers builds only with the model's own code",
}

# ggml tensor types each loader turns into values: the gguf package's dequantize (numpy) ...
SUPPORTED_QUANT_TYPES = frozenset({
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
    "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0",
    "MXFP4", "NVFP4",
})
# ... and transformers' own loader (integrations/gguf/dequant.py's GGML_NAME, and the three float types)
OWN_LOADER_QUANT_TYPES = frozenset({
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
    "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS",
})
# tokenizer.ggml.model values AutoTokenizer builds a tokenizer from (GGUF_TOKENIZER_TYPES)
SUPPORTED_TOKENIZERS = frozenset({"gpt2", "llama", "t5", "gemma4"})

_FLOATS = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def model_type(architecture: str | None, name: str | None = None) -> str | None:
    """The transformers model_type a GGUF file of ``architecture`` loads as (None: it does not load).

    ``name`` is general.name: transformers loads a "llama" file named exactly "mistral" as a Mistral."""
    if architecture == "llama" and name == "mistral":
        return "mistral"
    return _MODEL_TYPES.get(architecture)


def quant_types(architecture: str | None) -> frozenset:
    """The ggml tensor types transformers dequantizes for a file of ``architecture``."""
    return OWN_LOADER_QUANT_TYPES if architecture in OWN_LOADER_ARCHITECTURES else SUPPORTED_QUANT_TYPES


def load_dtype(facts) -> str:
    """The dtype transformers builds the model in from this file by default: torch's default (float32) for
    its first loader; the file's float type for its own (float32 for quantized blocks it unpacks)."""
    if facts.architecture not in OWN_LOADER_ARCHITECTURES or not facts.tensor_types <= set(_FLOATS):
        return "float32"
    for type_name in ("BF16", "F16"):  # a file's F32 tensors are its norms: the half type is the model's
        if type_name in facts.tensor_types:
            return _FLOATS[type_name]
    return "float32"


def unsupported_reason(facts) -> str | None:
    """Why transformers cannot load the GGUF file these facts (modelhub.discovery.gguf_header) describe as a
    causal language model, naming what is unsupported and what is; None when it can."""
    kind = facts.general_type
    if kind not in (None, "model"):
        return f"it is a {kind} file (general.type), not a model"
    parts = facts.metadata.get("split.count")
    if isinstance(parts, int) and parts > 1:  # llama.cpp's gguf-split: transformers reads one file's tensors only
        return (f"it is part {facts.metadata.get('split.no', 0) + 1} of a model split into {parts} GGUF files, and "
                f"transformers {TRANSFORMERS_VERSION} loads a single file: merge the parts first "
                "(llama.cpp: llama-gguf-split --merge FIRST-PART OUTPUT.gguf)")
    architecture = facts.architecture
    if architecture is None:
        return "its header names no architecture (general.architecture)"
    if architecture in NOT_CAUSAL:
        return (f"its architecture {architecture!r} is {NOT_CAUSAL[architecture]}, not a causal language model "
                f"transformers builds from GGUF")
    if architecture not in SUPPORTED_ARCHITECTURES:
        return (f"transformers {TRANSFORMERS_VERSION} does not load GGUF files of architecture {architecture!r}; "
                f"it loads {_listed(SUPPORTED_ARCHITECTURES)}")
    supported = quant_types(architecture)
    unsupported = facts.tensor_types - supported
    if unsupported:
        return (f"transformers {TRANSFORMERS_VERSION} cannot dequantize {_listed(unsupported)} tensors "
                f"(this file is {facts.quant_label or 'of no known type'}); for {architecture!r} it dequantizes "
                f"{_listed(supported)}")
    tokenizer = facts.metadata.get("tokenizer.ggml.model")
    if tokenizer not in SUPPORTED_TOKENIZERS:
        stated = "states no tokenizer" if tokenizer is None else f"states tokenizer {tokenizer!r}"
        return (f"the file {stated} (tokenizer.ggml.model): transformers builds tokenizers of types "
                f"{_listed(SUPPORTED_TOKENIZERS)}")
    return None


def _listed(names) -> str:
    return ", ".join(sorted(names))
