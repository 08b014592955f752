"""modelhub.discovery.gguf_header against real GGUF files (tests/gguf_files.py) and the gguf package's own
GGUFReader as the reference, and against files cut short or corrupted the ways a disk or a download does."""

import os
import struct
import subprocess
import sys
import time

import pytest

from modelhub.discovery.gguf_header import FILE_TYPES, GGML_TYPES, GgufError, is_gguf, read_facts
from tests.gguf_files import LLAMA3_8B, LOADABLE_TYPES, llama_tensors, vocabulary, write_header_only


def _reference(path):
    """What the gguf package reads: (architecture, name, file_type, [(name, shape, type)], parameters)."""
    import gguf

    reader = gguf.GGUFReader(path)

    def field(key):
        found = reader.get_field(key)
        return None if found is None else found.contents()

    tensors = [(tensor.name, tuple(int(dim) for dim in tensor.shape), tensor.tensor_type.name)
               for tensor in reader.tensors]
    return (field("general.architecture"), field("general.name"), field("general.file_type"), tensors,
            sum(int(tensor.n_elements) for tensor in reader.tensors))


def _mine(facts):
    return facts.architecture, facts.name, facts.file_type, facts.tensors, facts.parameter_count


@pytest.mark.parametrize("label", list(LOADABLE_TYPES))
def test_the_facts_of_a_real_gguf_file_are_the_gguf_packages(gguf_model_files, label):
    path = gguf_model_files.files[label]
    facts = read_facts(path)
    assert _mine(facts) == _reference(path)
    assert facts.architecture == "qwen2" and facts.name == "Tiny Qwen2" and facts.general_type == "model"
    assert facts.quant_label == label
    assert facts.context_length == 256 and facts.version == 3
    assert {"F32", LOADABLE_TYPES[label][1]} == facts.tensor_types
    # the tiny Qwen2's own count: embeddings and head 2 x 1000 x 128, two layers, a final norm
    layer = 128 * 128 * 2 + 64 * 128 * 2 + (128 + 64 + 64) + 128 * 256 * 3 + 128 * 2
    assert facts.parameter_count == 2 * 1000 * 128 + 2 * layer + 128


def test_the_files_transformers_refuses_are_read_too(gguf_model_files):
    command_r = read_facts(gguf_model_files.unsupported_architecture)
    assert (command_r.architecture, command_r.quant_label, command_r.context_length) == ("command-r", "Q8_0", 256)
    q1 = read_facts(gguf_model_files.unsupported_type)
    assert q1.quant_label == "Q1_0" and q1.tensor_types == {"F32", "Q1_0"}
    assert _mine(q1) == _reference(gguf_model_files.unsupported_type)


def test_a_llama_3_8b_header_with_its_whole_vocabulary(tmp_path):
    tokens, merges = vocabulary()
    path = write_header_only(tmp_path / "Meta-Llama-3-8B-Instruct.Q4_K_M.gguf", name="Meta Llama 3 8B Instruct",
                             file_type="MOSTLY_Q4_K_M", tensors=llama_tensors(), tokens=tokens, merges=merges)
    started = time.perf_counter()
    facts = read_facts(path)
    elapsed = time.perf_counter() - started
    assert facts.parameter_count == 8_030_261_248  # Llama 3 8B's
    assert (facts.quant_label, facts.context_length, len(facts.tensors)) == ("Q4_K_M", 8192, 291)
    assert facts.tensors[0] == ("token_embd.weight", (4096, LLAMA3_8B["vocab"]), "Q4_K")
    assert facts.metadata["tokenizer.ggml.bos_token_id"] == 0 and "tokenizer.ggml.tokens" not in facts.metadata
    assert elapsed < 0.5  # walking 408k strings in Python takes ~50 ms here; the gguf package takes seconds


@pytest.mark.parametrize("layout", ["guessed", "misleading strings", "unusual next key"])
def test_a_vocabulary_is_skipped_right_whatever_it_holds(tmp_path, layout):
    """The end of a vocabulary is found by searching for the next key's bytes, and checked; strings that
    hold those bytes, or a next key nobody expects, still give the right facts (the array is walked)."""
    tokens, merges = vocabulary(6000, 9000)
    metadata = {}
    if layout == "misleading strings":  # the bytes the search looks for, inside the vocabulary's last strings
        tokens[-2] = "\0" * 7 + "tokenizer.ggml.eos_token_id"
        merges[-2] = "a \0\0\0\0\0\0\0general.name"
    if layout == "unusual next key":  # neither "tokenizer." nor "general." follows this one
        metadata = {"custom.words": merges, "custom.count": len(merges)}
    path = write_header_only(tmp_path / "model.gguf", tokens=tokens, merges=merges, metadata=metadata)
    facts = read_facts(path)
    assert _mine(facts) == _reference(path)
    assert facts.metadata["general.quantization_version"] == 2


def test_without_a_file_type_the_most_common_weight_type_names_the_quantization(tmp_path):
    tensors = [("token_embd.weight", (256, 1000), "Q6_K"), ("blk.0.attn_q.weight", (256, 2048), "Q4_K"),
               ("blk.0.ffn_up.weight", (256, 512), "Q5_K"), ("blk.0.attn_norm.weight", (256,), "F32"),
               ("blk.0.ffn_norm.weight", (256,), "F32"), ("output_norm.weight", (256,), "F32")]
    for file_type, metadata in [(None, {}), ("GUESSED", {})]:
        facts = read_facts(write_header_only(tmp_path / "model.gguf", file_type=file_type, tensors=tensors,
                                             metadata=metadata))
        assert facts.quant_label == "Q4_K"  # by elements: F32 tensors outnumber it, 1-D ones do not count
        assert facts.file_type == (None if file_type is None else 1024)


def test_versions_and_byte_orders(tmp_path):
    little = write_header_only(tmp_path / "little.gguf", tensors=llama_tensors(LLAMA3_8B | {"layers": 2}))
    big = write_header_only(tmp_path / "big.gguf", tensors=llama_tensors(LLAMA3_8B | {"layers": 2}), big_endian=True)
    assert _mine(read_facts(big)) == _mine(read_facts(little)) == _reference(little)
    with open(little, "r+b") as handle:
        handle.seek(4)
        handle.write(struct.pack("<I", 2))
    assert read_facts(little).version == 2
    for version in (1, 4):
        with open(little, "r+b") as handle:
            handle.seek(4)
            handle.write(struct.pack("<I", version))
        with pytest.raises(GgufError, match=f"GGUF version {version}; versions 2 and 3"):
            read_facts(little)


def test_a_projector_says_what_it_is(tmp_path):
    facts = read_facts(write_header_only(tmp_path / "mmproj-model-f16.gguf", architecture="clip",
                                         general_type="mmproj", file_type="MOSTLY_F16", context_length=None))
    assert (facts.architecture, facts.general_type, facts.context_length) == ("clip", "mmproj", None)


def test_files_that_are_not_gguf(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "empty.gguf").write_bytes(b"")
    (tmp_path / "short.gguf").write_bytes(b"GGUF\x03\x00")
    for name, message in [("config.json", "not a GGUF file"), ("empty.gguf", "not a GGUF file"),
                          ("short.gguf", "truncated"), ("missing.gguf", "cannot be read")]:
        with pytest.raises(GgufError, match=message):
            read_facts(tmp_path / name)
        assert not is_gguf(tmp_path / name) or name == "short.gguf"
    with pytest.raises(GgufError, match="cannot be read"):
        read_facts(tmp_path)  # a directory
    assert is_gguf(write_header_only(tmp_path / "real.gguf"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file(tmp_path):
    path = write_header_only(tmp_path / "locked.gguf")
    path.chmod(0)
    with pytest.raises(GgufError, match="cannot be read: Permission denied"):
        read_facts(path)


def test_a_file_cut_anywhere_in_its_header_or_data_is_truncated(tmp_path):
    tokens, merges = vocabulary(5000, 5000)
    whole = write_header_only(tmp_path / "whole.gguf", tokens=tokens, merges=merges).read_bytes()
    header_end = len(whole.rstrip(b"\0"))
    for cut in [24, 40, 200, header_end // 3, header_end // 2, header_end - 30, header_end + 64, len(whole) - 1]:
        path = tmp_path / f"cut-{cut}.gguf"
        path.write_bytes(whole[:cut])
        with pytest.raises(GgufError, match="truncated"):
            read_facts(path)


def _patched(tmp_path, offset: int, value: int, name: str = "model.gguf"):
    path = write_header_only(tmp_path / name)
    data = bytearray(path.read_bytes())
    data[offset:offset + 8] = struct.pack("<Q", value)
    path.write_bytes(bytes(data))
    return path


def test_absurd_counts_and_lengths_fail_at_once(tmp_path):
    """A corrupt count must not make the reader allocate or loop: it is checked against the bytes left."""
    started = time.perf_counter()
    with pytest.raises(GgufError, match=r"claims 1152921504606846976 tensors"):
        read_facts(_patched(tmp_path, 8, 2**60))
    with pytest.raises(GgufError, match=r"claims 1152921504606846976 metadata entries"):
        read_facts(_patched(tmp_path, 16, 2**60))
    key_length = 24  # the first key's length: "general.architecture"
    with pytest.raises(GgufError, match="runs past the end"):
        read_facts(_patched(tmp_path, key_length, 2**62))
    path = write_header_only(tmp_path / "array.gguf", tokens=["a", "b"])
    data = path.read_bytes()
    count_at = data.index(b"tokenizer.ggml.tokens") + len("tokenizer.ggml.tokens") + 8
    path.write_bytes(data[:count_at] + struct.pack("<Q", 2**60) + data[count_at + 8:])
    with pytest.raises(GgufError, match="values in 'tokenizer.ggml.tokens'"):
        read_facts(path)
    assert time.perf_counter() - started < 1


def test_a_tensor_with_too_many_dimensions_is_corrupt(tmp_path):
    path = write_header_only(tmp_path / "model.gguf")
    data = path.read_bytes()
    name_end = data.index(b"token_embd.weight") + len(b"token_embd.weight")
    path.write_bytes(data[:name_end] + struct.pack("<I", 9) + data[name_end + 4:])
    with pytest.raises(GgufError, match="9 dimensions"):
        read_facts(path)


def test_the_type_tables_are_the_gguf_packages():
    import gguf

    assert GGML_TYPES == {int(qtype): (qtype.name, *gguf.GGML_QUANT_SIZES[qtype]) for qtype in gguf.GGMLQuantizationType}
    assert FILE_TYPES == {int(ftype): ftype.name.removeprefix("MOSTLY_").removeprefix("ALL_")
                          for ftype in gguf.LlamaFileType if ftype.name != "GUESSED"}


def test_reading_a_header_imports_nothing_heavy():
    code = ("import sys; from modelhub.discovery import gguf_header; "
            "print(sorted({'numpy', 'gguf', 'torch', 'transformers'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
