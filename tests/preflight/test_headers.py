"""Safetensors headers read without the weights, cached by file identity; the shard index."""

import os
import shutil

import pytest
from safetensors import safe_open

from modelhub.preflight import checkpoint, headers


def test_the_header_names_every_tensor_with_its_dtype_and_shape(tiny_models):
    path = tiny_models["llama"] / "model.safetensors"
    parsed = {tensor.name: tensor for tensor in headers.tensors(path)}
    with safe_open(path, framework="pt") as real:
        assert set(parsed) == set(real.keys())
        for name in real.keys():
            assert list(parsed[name].shape) == list(real.get_slice(name).get_shape())
            assert parsed[name].dtype == "float32"
    assert sum(t.numel for t in parsed.values()) * 4 <= os.path.getsize(path)  # the data follow the header


def test_a_sharded_checkpoint_is_read_through_its_index(sharded_llama, tiny_models):
    files = headers.weight_files(str(sharded_llama))
    assert len(files) > 1 and all(name.endswith(".safetensors") for name in files)
    sharded = checkpoint.read(str(sharded_llama), "x/sharded")
    whole = checkpoint.read(str(tiny_models["llama"]), "x/llama")
    assert sharded.shards == len(files)
    assert sharded.parameters == whole.parameters
    assert {t.name for t in sharded.tensors} == {t.name for t in whole.tensors}


def test_headers_are_cached_until_the_file_changes(tiny_models, tmp_path):
    directory = tmp_path / "llama"
    shutil.copytree(tiny_models["gpt2"], directory)
    path = str(directory / "model.safetensors")
    first = headers.tensors(path)
    assert headers.tensors(path) is first  # same identity: not read again
    shutil.copyfile(tiny_models["llama"] / "model.safetensors", path)  # a new download replaces it
    os.utime(path, ns=(1, 1))
    assert {t.name for t in headers.tensors(path)} != {t.name for t in first}


def test_a_damaged_header_or_a_missing_shard_is_said_plainly(tiny_models, sharded_llama, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_models["llama"], broken)
    (broken / "model.safetensors").write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(checkpoint.NoCheckpoint, match="damaged"):
        checkpoint.read(str(broken), "x/broken")
    partial = tmp_path / "partial"
    shutil.copytree(sharded_llama, partial)
    shard = sorted(partial.glob("*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(checkpoint.NoCheckpoint, match=f"missing: {shard.name}"):
        checkpoint.read(str(partial), "x/partial")


def test_no_local_files_is_a_reason_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(checkpoint.NoCheckpoint, match="not in the hub cache"):
        checkpoint.read(None, "org/absent")


def test_the_hub_cache_snapshot_is_found_like_the_worker_finds_it(tiny_models, tmp_path, monkeypatch):
    snapshot = tmp_path / "hub" / "models--org--llama" / "snapshots" / "abc123"
    shutil.copytree(tiny_models["llama"], snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    found = checkpoint.read(None, "org/llama")
    assert found.source == "hub cache" and found.directory == str(snapshot)
