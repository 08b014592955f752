"""A GGUF header damaged anywhere (bytes overwritten, flipped, cut, repeated) is read or refused: read_facts
returns facts or raises GgufError, never another exception, never hangs and never allocates what the
damage claims; and a scan of a library holding such files reports each as a problem and goes on."""

import struct
import time

import pytest

from hypothesis import HealthCheck, given, settings, strategies as st

from modelhub.discovery.gguf_header import GgufError, read_facts
from tests.gguf_files import vocabulary, write_header_only

FUZZ = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
TOKENS, MERGES = vocabulary(5000, 5000)  # enough to take the reader's fast path over the vocabulary


def _original(directory):
    path = directory / "original.gguf"
    if not path.exists():
        write_header_only(path, tokens=TOKENS, merges=MERGES)
    return path.read_bytes()


damage = st.one_of(
    st.tuples(st.just("overwrite"), st.integers(0, 2**20), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("flip"), st.integers(0, 2**20), st.integers(0, 7)),
    st.tuples(st.just("cut"), st.integers(0, 2**20), st.just(0)),
    st.tuples(st.just("repeat"), st.integers(0, 2**20), st.integers(1, 64)),
)


def _damaged(data: bytes, how) -> bytes:
    kind, at, arg = how
    if not data:
        return data
    at %= len(data.rstrip(b"\0")) or len(data)  # damage the header, where the reader looks (the tensor data is a hole)
    if kind == "overwrite":
        return data[:at] + arg + data[at + len(arg):]
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ (1 << arg)]) + data[at + 1:]
    if kind == "cut":
        return data[:at]
    return data[:at] + data[at:at + arg] * 2 + data[at + arg:]


@settings(max_examples=300, **FUZZ)
@given(hows=st.lists(damage, min_size=1, max_size=3))
def test_a_damaged_header_is_read_or_refused_in_words(tmp_path_factory, hows):
    directory = _fuzz_dir(tmp_path_factory)
    data = _original(directory)
    for how in hows:
        data = _damaged(data, how)
    path = directory / "damaged.gguf"
    path.write_bytes(data)
    started = time.perf_counter()
    try:
        facts = read_facts(path)
    except GgufError as error:
        assert str(error)  # said in words
    else:
        assert facts.parameter_count >= 0 and all(len(shape) <= 8 for _, shape, _ in facts.tensors)
    assert time.perf_counter() - started < 2


_DIRS = {}


def _fuzz_dir(factory):
    if "dir" not in _DIRS:
        _DIRS["dir"] = factory.mktemp("gguf-fuzz")
    return _DIRS["dir"]


@pytest.mark.parametrize("length", [2**40, 2**62, 2**64 - 1])
def test_a_string_claiming_more_bytes_than_any_file_is_refused(tmp_path, length):
    """Found by a 5,000-case run of the damage above: a vocabulary string's length past what an offset can
    hold made the walk raise OverflowError instead of GgufError."""
    path = write_header_only(tmp_path / "model.gguf", tokens=["a", "b", "c"])
    data = path.read_bytes()
    first = data.index(b"tokenizer.ggml.tokens") + len("tokenizer.ggml.tokens") + 4 + 12  # type, (type, count)
    path.write_bytes(data[:first] + struct.pack("<Q", length) + data[first + 8:])
    with pytest.raises(GgufError, match="truncated or corrupt"):
        read_facts(path)
