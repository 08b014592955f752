"""GGUF files wherever discovery already looked: hub-cache snapshots, secondary roots, custom paths; their
names, facts from the header, and a rescan that does not open unchanged files again."""

import os
import shutil

import pytest

from modelhub.discovery import gguf_copies
from modelhub.discovery.identity import KnownFile, KnownFiles
from modelhub.discovery.scanner import inspect_custom, scan
from modelhub.discovery.types import Location
from tests.discovery.trees import add_hub_repo, add_plain, read_files, tiny_parameter_count, write_gguf


def by_label(report) -> dict:
    return {(found.hf_path, found.label): found for found in report.found}


@pytest.mark.parametrize("file_name, model", [
    ("llama-2-7b.Q4_K_M.gguf", "llama-2-7b"),
    ("Qwen2-7B-Instruct-IQ4_XS.gguf", "Qwen2-7B-Instruct"),
    ("phi-3-mini-4k-instruct-f16.gguf", "phi-3-mini-4k-instruct"),
    ("Llama-3.2-1B-Instruct-UD-Q4_K_XL.gguf", "Llama-3.2-1B-Instruct"),
    ("gemma-2-9b-it-bf16-00001-of-00002.gguf", "gemma-2-9b-it"),
    ("mistral-7b-v0.1.Q8_0.gguf", "mistral-7b-v0.1"),
    ("tinyllama.gguf", "tinyllama"),
    ("Q4_K_M.gguf", "Q4_K_M"),  # nothing left without it: the name stays
])
def test_a_loose_files_model_is_its_name_without_the_quantization(file_name, model):
    assert gguf_copies.model_name(file_name) == model


def test_grouping_a_folders_files():
    names = ["b.Q8_0.gguf", "a-00002-of-00003.gguf", "a-00001-of-00003.gguf", "mmproj-f16.gguf", "README.md",
             "c-00002-of-00002.gguf"]
    assert gguf_copies.group(names) == [
        ("a-00001-of-00003.gguf", ["a-00002-of-00003.gguf"], ["a-00003-of-00003.gguf"]),
        ("b.Q8_0.gguf", [], []),
        ("c-00002-of-00002.gguf", [], ["c-00001-of-00002.gguf"]),
    ]


def test_a_gguf_repo_in_the_hub_cache(tmp_path):
    """A GGUF repo (no config.json) is one model; each quantization in it, even in a subfolder, a copy."""
    files = {"README.md": b"# Tiny\n"}
    for quant in ("Q4_K_M", "Q8_0"):
        files[f"tiny.{quant}.gguf"] = write_gguf(tmp_path / f"{quant}.gguf", quant).read_bytes()
    files["F16/tiny-F16-00001-of-00002.gguf"] = write_gguf(tmp_path / "p1.gguf", "F16", name="part 1").read_bytes()
    files["F16/tiny-F16-00002-of-00002.gguf"] = write_gguf(tmp_path / "p2.gguf", "F16", name="part 2").read_bytes()
    snapshot = add_hub_repo(tmp_path / "hub", "org/Tiny-GGUF", files)
    report = scan([Location("primary", tmp_path / "hub", "huggingface")])
    assert report.problems == []
    found = by_label(report)
    assert sorted(found) == [("org/Tiny-GGUF", "F16/tiny-F16-00001-of-00002.gguf"),
                             ("org/Tiny-GGUF", "tiny.Q4_K_M.gguf"), ("org/Tiny-GGUF", "tiny.Q8_0.gguf")]
    q8 = found["org/Tiny-GGUF", "tiny.Q8_0.gguf"]
    assert (q8.path, q8.revision, q8.location, q8.library) == (str(snapshot / "tiny.Q8_0.gguf"), snapshot.name,
                                                               "primary", "huggingface")
    assert (q8.quantization, q8.size_bytes) == ("GGUF Q8_0", len(files["tiny.Q8_0.gguf"]))
    split = found["org/Tiny-GGUF", "F16/tiny-F16-00001-of-00002.gguf"]
    assert split.parameter_count == 2 * tiny_parameter_count() and not split.incomplete


def test_a_hub_repo_with_weights_and_gguf_files_has_both_kinds_of_copies(tmp_path, tiny_models):
    files = {**read_files(tiny_models["llama"]), "tiny.Q8_0.gguf": write_gguf(tmp_path / "q8.gguf", "Q8_0").read_bytes()}
    add_hub_repo(tmp_path / "hub", "org/tiny", files)
    found = by_label(scan([Location("primary", tmp_path / "hub", "huggingface")]))
    folder, gguf = found["org/tiny", None], found["org/tiny", "tiny.Q8_0.gguf"]
    assert (folder.weight_format, gguf.weight_format) == ("safetensors", "gguf")
    assert folder.size_bytes == sum(len(content) for content in read_files(tiny_models["llama"]).values())


def test_a_gguf_blob_gone_from_the_hub_cache_is_a_problem(tmp_path):
    source = write_gguf(tmp_path / "q8.gguf", "Q8_0")
    snapshot = add_hub_repo(tmp_path / "hub", "org/Tiny-GGUF", {"tiny.Q8_0.gguf": source.read_bytes(),
                                                                  "tiny.Q4_K_M.gguf": b"x"})
    (snapshot / "tiny.Q8_0.gguf").resolve().unlink()
    report = scan([Location("primary", tmp_path / "hub", "huggingface")])
    problems = {problem.path: problem.message for problem in report.problems}
    assert problems[str(snapshot / "tiny.Q8_0.gguf")] == "broken symlink (its file is gone)"
    assert [found.label for found in report.found] == []  # the other file is no GGUF: a problem of its own
    assert problems[str(snapshot / "tiny.Q4_K_M.gguf")].startswith("cannot read the GGUF header")


def test_gguf_files_in_a_secondary_root(tmp_path, tiny_models):
    disk = tmp_path / "disk2"
    write_gguf(disk / "TheBloke" / "Tiny-GGUF" / "tiny.Q4_K_M.gguf", "Q4_K_M")  # org/name, GGUF only
    write_gguf(disk / "solo-GGUF" / "solo.Q8_0.gguf", "Q8_0", name="solo")  # name
    write_gguf(disk / "loose-model.Q4_0.gguf", "Q4_0", name="loose")  # at the root: named from the file
    folder = add_plain(disk, "mine/llama", read_files(tiny_models["llama"]))
    write_gguf(folder / "llama.F16.gguf", "F16", name="mine")  # beside config.json and safetensors
    report = scan([Location("secondary", disk)])
    assert report.problems == []
    assert set(by_label(report)) == {
        ("TheBloke/Tiny-GGUF", "TheBloke/Tiny-GGUF/tiny.Q4_K_M.gguf"),
        ("loose-model", "loose-model.Q4_0.gguf"),
        ("mine/llama", None), ("mine/llama", "mine/llama/llama.F16.gguf"),
        ("solo-GGUF", "solo-GGUF/solo.Q8_0.gguf"),
    }
    assert {found.library for found in report.found} == {"folder"}


def test_a_folder_with_config_json_and_gguf_but_no_weights_is_only_its_gguf_copies(tmp_path, tiny_models):
    """A GGUF repo often carries the original config.json: it is no incomplete folder copy."""
    files = read_files(tiny_models["llama"])
    folder = add_plain(tmp_path / "disk2", "org/Tiny-GGUF", {"config.json": files["config.json"]})
    write_gguf(folder / "tiny.Q8_0.gguf", "Q8_0")
    (found,) = scan([Location("secondary", tmp_path / "disk2")]).found
    assert (found.hf_path, found.weight_format, found.incomplete) == ("org/Tiny-GGUF", "gguf", False)


def test_a_custom_path_may_be_a_gguf_file_or_a_folder_of_them(tmp_path):
    file = write_gguf(tmp_path / "models" / "tiny.Q4_K_M.gguf", "Q4_K_M")
    (single,) = inspect_custom(file)
    assert (single.path, single.location, single.library, single.library_root) == (str(file), "custom", "custom", None)
    assert (single.quantization, single.label) == ("GGUF Q4_K_M", "tiny.Q4_K_M.gguf")
    write_gguf(tmp_path / "models" / "tiny.Q8_0.gguf", "Q8_0")
    assert [found.label for found in inspect_custom(tmp_path / "models")] == ["tiny.Q4_K_M.gguf", "tiny.Q8_0.gguf"]
    (tmp_path / "junk.gguf").write_bytes(b"not gguf")
    with pytest.raises(ValueError, match="cannot read the GGUF header"):
        inspect_custom(tmp_path / "junk.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        inspect_custom(tmp_path / "empty")


def test_an_unchanged_file_is_not_opened_again(tmp_path):
    """The registry's facts for this version of the file are used: the header is not read. Proved with a
    file whose header is replaced by garbage while its size and times stay as they were."""
    root = tmp_path / "lms"
    path = write_gguf(root / "me" / "Tiny-GGUF" / "tiny.Q4_K_M.gguf", "Q4_K_M")
    (first,) = scan([Location("secondary", root, "lmstudio")]).found
    known = KnownFiles()
    known.add(first.file_key, first.size_bytes, KnownFile("llama", "llama", "GGUF Q4_K_M", 123, 4096, None))
    info = path.stat()
    with open(path, "r+b") as file:
        file.write(b"XXXX")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    (again,) = scan([Location("secondary", root, "lmstudio")], known=known).found
    assert (again.file_key, again.parameter_count, again.context_length) == (first.file_key, 123, 4096)
    # a changed file (another mtime) is read again: now its header is garbage
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
    report = scan([Location("secondary", root, "lmstudio")], known=known)
    assert report.found == [] and report.problems[0].path == str(path)


def test_a_copy_moved_elsewhere_keeps_nothing_stale(tmp_path):
    """A file replaced by another one (new inode) is a new version: read again."""
    root = tmp_path / "lms"
    path = write_gguf(root / "me" / "Tiny-GGUF" / "tiny.Q4_K_M.gguf", "Q4_K_M")
    (first,) = scan([Location("secondary", root, "lmstudio")]).found
    replacement = write_gguf(tmp_path / "other.gguf", "Q8_0")
    shutil.move(replacement, path)
    known = KnownFiles()
    known.add(first.file_key, first.size_bytes, KnownFile("llama", "llama", "GGUF Q4_K_M", 1, 1, None))
    (again,) = scan([Location("secondary", root, "lmstudio")], known=known).found
    assert again.quantization == "GGUF Q8_0" and again.file_key != first.file_key
