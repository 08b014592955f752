"""Real GGUF files, written by the ``gguf`` package (llama.cpp's own writer, as convert_hf_to_gguf.py uses it)
from a tiny Qwen2 built here: its weights in several types, its byte-level BPE tokenizer in the metadata under
llama.cpp's keys. transformers loads them with ``from_pretrained(folder, gguf_file=name)``. Qwen2 because
transformers reads its tensors as written (a Llama's q/k rows would need llama.cpp's permutation).

Two files transformers must refuse: a Command-R (an architecture it does not read from GGUF) and a Qwen2 whose
weights are Q1_0 (a type it cannot dequantize). ``write_header_only`` writes a GGUF of any size and metadata
whose tensor data is a hole in a sparse file, for discovery and benches.

Tests get them from the ``gguf_model_files`` fixture (tests/conftest.py); building takes about
a second, once per process."""

from dataclasses import dataclass
from pathlib import Path


from tests.tiny_models import build_tokenizer

# What each file is, as llama.cpp names it -> (general.file_type, the ggml type of its 2-D weights).
# Every 2-D weight gets that type (llama-quantize --pure); norms and biases stay F32, as llama.cpp keeps them.
LOADABLE_TYPES = {
    "F32": ("ALL_F32", "F32"),
    "F16": ("MOSTLY_F16", "F16"),
    "BF16": ("MOSTLY_BF16", "BF16"),
    "Q8_0": ("MOSTLY_Q8_0", "Q8_0"),
    "Q5_0": ("MOSTLY_Q5_0", "Q5_0"),
    "Q4_0": ("MOSTLY_Q4_0", "Q4_0"),
}
# Rows of 128 and 256: every block size of the types above (32) and Q1_0's (128) divides them.
TINY_QWEN2 = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 256, "tie_word_embeddings": False}
MODEL_NAME = "Tiny Qwen2"


@dataclass(frozen=True)
class GgufModelFiles:
    """What ``gguf_model_files`` gives: the source model and the GGUF files written from it.

    ``files[label]`` are loadable ("F32", "F16", "BF16", "Q8_0", "Q5_0", "Q4_0"), all in ``folder``
    (as a GGUF repo holds several quantizations of one model, named ``tiny-qwen2.<label>.gguf``)."""

    source: Path  # the Qwen2 as save_pretrained wrote it (safetensors + tokenizer)
    folder: Path
    files: dict[str, Path]
    unsupported_architecture: Path  # a Command-R: transformers reads no "command-r" GGUF
    unsupported_type: Path  # a Qwen2 whose 2-D weights are Q1_0: no dequantizer for it


def build_qwen2(directory: Path) -> Path:
    """A tiny Qwen2 with random weights and the suite's BPE tokenizer, saved by save_pretrained."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from tests.tiny_models import VOCAB_SIZE

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=VOCAB_SIZE, bos_token_id=1, eos_token_id=2, pad_token_id=3, **TINY_QWEN2)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    build_tokenizer(directory)
    return directory


def write_gguf(source: Path, path: Path, label: str = "Q8_0", architecture: str = "qwen2",
               weight_type: str | None = None, file_type: str | None = None) -> Path:
    """Convert the saved model at ``source`` to a GGUF at ``path``, as convert_hf_to_gguf.py would.

    ``label`` picks a row of LOADABLE_TYPES; ``weight_type``/``file_type`` override it (Q1_0 is written with
    this module's own quantizer, the gguf package has none)."""
    import json

    import gguf
    from safetensors.numpy import load_file

    config = json.loads((source / "config.json").read_text())
    file_type = file_type or LOADABLE_TYPES[label][0]
    weight_type = weight_type or LOADABLE_TYPES[label][1]
    writer = gguf.GGUFWriter(path, architecture)
    _write_model_metadata(writer, config, architecture, getattr(gguf.LlamaFileType, file_type))
    _write_tokenizer(writer, json.loads((source / "tokenizer.json").read_text()), config["vocab_size"])
    arch = next(key for key, arch_name in gguf.MODEL_ARCH_NAMES.items() if arch_name == architecture)
    names = gguf.get_tensor_name_map(arch, config["num_hidden_layers"])
    for hf_name, values in load_file(source / "model.safetensors").items():
        base, _, suffix = hf_name.rpartition(".")
        gguf_name = names.get_name(base)
        if gguf_name is None:  # a tensor this architecture does not have (Command-R: no lm_head, no ffn_norm)
            continue
        _add_tensor(writer, f"{gguf_name}.{suffix}", values.astype("float32"), weight_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _write_model_metadata(writer, config: dict, architecture: str, file_type: int) -> None:
    writer.add_type("model")
    writer.add_name(MODEL_NAME)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    if architecture == "command-r":
        writer.add_logit_scale(1.0)
    writer.add_file_type(file_type)
    writer.add_quantization_version(2)


def _write_tokenizer(writer, tokenizer: dict, vocab_size: int) -> None:
    """The tokenizer.json of a byte-level BPE, as llama.cpp stores one ("gpt2" model). Ids the tokenizer
    does not use, up to the model's vocab_size, become "[PAD<id>]" tokens of type UNUSED, as
    convert_hf_to_gguf.py pads them (transformers takes the model's vocab_size from the token count)."""
    vocab = tokenizer["model"]["vocab"]
    by_id = {index: token for token, index in vocab.items()}
    tokens = [by_id.get(index, f"[PAD{index}]") for index in range(vocab_size)]
    special = {added["content"]: added["id"] for added in tokenizer["added_tokens"] if added["special"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # GPT-2's split regex: the one the suite's tokenizer was trained with
    writer.add_token_list(tokens)
    # 1: NORMAL, 3: CONTROL, 5: UNUSED (llama.cpp's TokenType)
    writer.add_token_types([3 if token in special else 1 if index in by_id else 5 for index, token in enumerate(tokens)])
    writer.add_token_merges([" ".join(merge) if isinstance(merge, list) else merge
                             for merge in tokenizer["model"]["merges"]])
    writer.add_bos_token_id(special["<s>"])
    writer.add_eos_token_id(special["</s>"])
    writer.add_unk_token_id(special["<unk>"])
    writer.add_pad_token_id(special["<pad>"])
    writer.add_add_bos_token(False)  # the source tokenizer adds none either


def _add_tensor(writer, name: str, values, weight_type: str) -> None:
    import gguf

    if values.ndim != 2:  # norms and biases
        writer.add_tensor(name, values)
        return
    if weight_type == "Q1_0":
        writer.add_tensor(name, _quantize_q1_0(values), raw_dtype=gguf.GGMLQuantizationType.Q1_0)
        return
    qtype = gguf.GGMLQuantizationType[weight_type]
    quantized = gguf.quantize(values, qtype)
    writer.add_tensor(name, quantized, raw_dtype=None if weight_type in ("F32", "F16") else qtype)


def _quantize_q1_0(values):
    """ggml's Q1_0: blocks of 128 weights, an f16 scale (the mean magnitude) and one sign bit each."""
    import numpy as np

    blocks = values.reshape(-1, 128)
    scales = np.abs(blocks).mean(axis=1, keepdims=True).astype(np.float16)
    bits = np.packbits(blocks >= 0, axis=1, bitorder="little")
    packed = np.concatenate([scales.view(np.uint8), bits], axis=1)
    return packed.reshape(values.shape[0], -1)


def build_all(root: Path) -> GgufModelFiles:
    """The source Qwen2 and every GGUF written from it, under ``root``."""
    source = build_qwen2(root / "source")
    folder = root / "tiny-qwen2-GGUF"
    folder.mkdir()
    files = {label: write_gguf(source, folder / f"tiny-qwen2.{label}.gguf", label) for label in LOADABLE_TYPES}
    odd = root / "unsupported"
    odd.mkdir()
    return GgufModelFiles(
        source=source, folder=folder, files=files,
        unsupported_architecture=write_gguf(source, odd / "tiny-command-r.Q8_0.gguf", "Q8_0", "command-r"),
        unsupported_type=write_gguf(source, odd / "tiny-qwen2.Q1_0.gguf", weight_type="Q1_0",
                                    file_type="MOSTLY_Q1_0"),
    )


# Header-only files: a real GGUF header (written by the gguf package), the tensor data a hole.

# A Llama 3 8B's shapes (ggml order: columns first), for files as big as the real ones.
LLAMA3_8B = {"hidden": 4096, "intermediate": 14336, "layers": 32, "heads": 32, "kv_heads": 8, "vocab": 128256,
             "context": 8192}


def llama_tensors(dims: dict = LLAMA3_8B, weight_type: str = "Q4_K") -> list[tuple[str, tuple[int, ...], str]]:
    """``(name, shape in ggml order, ggml type)`` of every tensor of a Llama of ``dims``; norms are F32."""
    hidden, inter, vocab = dims["hidden"], dims["intermediate"], dims["vocab"]
    kv = dims["kv_heads"] * hidden // dims["heads"]
    tensors = [("token_embd.weight", (hidden, vocab), weight_type), ("output_norm.weight", (hidden,), "F32"),
               ("output.weight", (hidden, vocab), weight_type)]
    for layer in range(dims["layers"]):
        block = f"blk.{layer}."
        tensors += [
            (block + "attn_norm.weight", (hidden,), "F32"), (block + "ffn_norm.weight", (hidden,), "F32"),
            (block + "attn_q.weight", (hidden, hidden), weight_type), (block + "attn_k.weight", (hidden, kv), weight_type),
            (block + "attn_v.weight", (hidden, kv), weight_type), (block + "attn_output.weight", (hidden, hidden), weight_type),
            (block + "ffn_gate.weight", (hidden, inter), weight_type), (block + "ffn_up.weight", (hidden, inter), weight_type),
            (block + "ffn_down.weight", (inter, hidden), weight_type),
        ]
    return tensors


def write_header_only(path: Path, *, architecture: str = "llama", name: str | None = "Tiny Llama",
                      file_type: str | None = "MOSTLY_Q8_0", context_length: int | None = 8192,
                      tensors: list[tuple[str, tuple[int, ...], str]] | None = None,
                      tokens: list[str] | None = None, merges: list[str] | None = None,
                      metadata: dict | None = None, general_type: str | None = "model",
                      big_endian: bool = False) -> Path:
    """A GGUF whose header is real and whose tensor data is a hole (no disk used, never read).

    ``tensors`` default to a tiny Llama's in Q8_0; ``llama_tensors()`` are an 8B's in Q4_K (file_type
    "MOSTLY_Q4_K_M"). ``file_type``: a gguf.LlamaFileType name, None for no general.file_type.
    ``tokens``/``merges`` go in the metadata as llama.cpp stores a vocabulary (a realistic one is 128k
    tokens and 280k merges: megabytes of header). ``metadata``: more keys, their values typed as
    GGUFWriter.add_key_value infers them (str, int -> uint32/int32, float, bool, lists), written after the
    vocabulary and before general.quantization_version (the last key convert_hf_to_gguf.py writes)."""
    import gguf

    writer = gguf.GGUFWriter(path, architecture, endianess=gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE)
    if general_type:
        writer.add_type(general_type)
    if name:
        writer.add_name(name)
    if context_length is not None:
        writer.add_uint32(f"{architecture}.context_length", context_length)
    if file_type:
        writer.add_file_type(getattr(gguf.LlamaFileType, file_type))
    if tokens is None:
        tokens = TINY_VOCAB
    if tokens:  # in convert_hf_to_gguf.py's order
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("llama-bpe")
        writer.add_token_list(tokens)
        writer.add_token_types([1] * len(tokens))
        if merges:
            writer.add_token_merges(merges)
        writer.add_bos_token_id(0)
        writer.add_eos_token_id(len(tokens) - 1)
    for key, value in (metadata or {}).items():
        _add_value(writer, key, value)
    writer.add_quantization_version(2)
    for tensor_name, shape, type_name in tensors if tensors is not None else llama_tensors(TINY_DIMS, "Q8_0"):
        qtype = gguf.GGMLQuantizationType[type_name]
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        count = 1
        for dim in shape:
            count *= dim
        # shape is in ggml order; GGUFWriter takes numpy order and reverses it
        writer.add_tensor_info(tensor_name, tuple(reversed(shape)), _float32(), count // block * size, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    alignment = writer.data_alignment
    # as GGUFWriter lays the data out: from the next boundary, each tensor padded to the alignment
    data_size = sum(gguf.GGUFWriter.ggml_pad(info.nbytes, alignment) for info in writer.tensors[0].values())
    writer.close()
    with open(path, "r+b") as handle:
        header_end = handle.seek(0, 2)
        handle.truncate(gguf.GGUFWriter.ggml_pad(header_end, alignment) + data_size)
    return path


TINY_VOCAB = [f"t{index}" for index in range(32)]  # what a header-only file holds unless told (tokens=[]: none)
TINY_DIMS = {"hidden": 64, "intermediate": 128, "layers": 2, "heads": 4, "kv_heads": 4, "vocab": 1000, "context": 256}


def _add_value(writer, key: str, value) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value) if value >= 0 else writer.add_int32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    else:
        writer.add_array(key, value)


def _float32():
    import numpy as np

    return np.dtype(np.float32)


def vocabulary(tokens: int = 128_000, merges: int = 280_000) -> tuple[list[str], list[str]]:
    """A vocabulary as big as Llama 3's (128k tokens, 280k merges), of made-up but plausible strings."""
    token_list = [f"tok{index}" for index in range(tokens)]
    merge_list = [f"t{index % 997} ok{index}" for index in range(merges)]
    return token_list, merge_list
