"""The scanner on real trees: a hub cache laid out as huggingface_hub leaves it, plain model folders, and
a damaged root. The trees are built once per module from the session's tiny models."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import scan_cache_dir

from modelhub.discovery.scanner import inspect_directory, primary_location, scan, secondary_locations
from modelhub.discovery.types import Location
from tests.discovery.trees import (add_hub_repo, add_plain, blob_of, copy_plain, folder_size, read_files,
                                   repo_folder, revision_hash)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
QUANTIZATIONS = {
    "gptq": ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "GPTQ"),
    "awq": ({"quant_method": "awq", "bits": 4, "version": "gemm"}, "AWQ"),
    "bnb4": ({"quant_method": "bitsandbytes", "_load_in_4bit": True, "load_in_4bit": True}, "bitsandbytes 4-bit"),
    "bnb8": ({"quant_method": "bitsandbytes", "_load_in_8bit": True, "load_in_8bit": True}, "bitsandbytes 8-bit"),
    "fp8": ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "FP8"),
}


def with_config(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    config = json.loads(files["config.json"])
    return {**files, "config.json": json.dumps({**config, **changes}).encode()}


def only(files: dict[str, bytes], *names: str) -> dict[str, bytes]:
    return {name: files[name] for name in names}


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return {kind: read_files(directory) for kind, directory in tiny_models.items()}


@pytest.fixture(scope="module")
def trees(tmp_path_factory, tiny_models, tiny):
    """``hub``: a healthy hub cache; ``disk2``: plain folders plus a copied hub repo; ``damaged``: a root
    with something wrong in almost every folder, and one good model."""
    base = tmp_path_factory.mktemp("discovery")
    t = SimpleNamespace(hub=base / "hub", disk2=base / "disk2", damaged=base / "damaged", tiny_models=tiny_models)
    _build_hub(t.hub, tiny)
    _build_disk2(t.disk2, tiny_models, tiny)
    _build_damaged(t.damaged, tiny_models, tiny)
    return t


def _build_hub(hub: Path, tiny):
    add_hub_repo(hub, "tiny/llama", tiny["llama"])
    # refs/main points to the older of two revisions
    add_hub_repo(hub, "tiny/phi", tiny["phi"], revision=revision_hash("phi-old"))
    add_hub_repo(hub, "tiny/phi", with_config(tiny["phi"], note="newer"), revision=revision_hash("phi-new"), ref=None)
    # no refs at all: the newest revision (by its blobs' times, as huggingface_hub judges) is reported
    add_hub_repo(hub, "tiny/gpt2", tiny["gpt2"], revision=revision_hash("gpt2-old"), ref=None)
    newer = add_hub_repo(hub, "tiny/gpt2", with_config(tiny["gpt2"], note="newer"), revision=revision_hash("gpt2-new"),
                         ref=None)
    later = blob_of(newer, "config.json").stat().st_mtime + 1000
    os.utime(blob_of(newer, "config.json"), (later, later))
    add_hub_repo(hub, "tiny/data", {"data.csv": b"a,b\n1,2\n"}, repo_type="dataset")


def _build_disk2(disk2: Path, tiny_models, tiny):
    copy_plain(disk2, "tiny/llama-copy", tiny_models["llama"])
    copy_plain(disk2, "gpt2-local", tiny_models["gpt2"])
    for name, (config, _) in QUANTIZATIONS.items():
        add_plain(disk2, f"quant/{name}", with_config(tiny["phi"], quantization_config=config))
    add_plain(disk2, "quant/legacy-gptq", {**tiny["phi"], "quantize_config.json": b'{"bits": 4}'})
    config = only(tiny["phi"], "config.json", "tokenizer.json")
    add_plain(disk2, "formats/pickle", {**config, "pytorch_model.bin": b"pickled weights"})
    add_plain(disk2, "formats/both", {**config, "pytorch_model.bin": b"pickled", "model.safetensors": b"safe"})
    add_plain(disk2, "formats/none", config)
    index = json.dumps({"metadata": {}, "weight_map": {"a.weight": SHARDS[0], "b.weight": SHARDS[1]}}).encode()
    add_plain(disk2, "sharded/whole", {**config, "model.safetensors.index.json": index, SHARDS[0]: b"1",
                                       SHARDS[1]: b"2"})
    add_plain(disk2, "sharded/partial", {**config, "model.safetensors.index.json": index, SHARDS[0]: b"1"})
    add_hub_repo(disk2, "copied/phi", tiny["phi"])
    # not models, or not where the scanner looks
    add_plain(disk2, ".trash/old-model", tiny["gpt2"])
    add_plain(disk2, "deep/a/b", tiny["gpt2"])
    add_plain(disk2, "datasets--some--data/inside", tiny["gpt2"])
    add_plain(disk2, "empty-org", {})
    (disk2 / "notes.txt").write_text("not a model")


def _build_damaged(damaged: Path, tiny_models, tiny):
    copy_plain(damaged, "good/model", tiny_models["gpt2"])
    snapshot = add_hub_repo(damaged, "broken/blob", tiny["llama"])
    blob_of(snapshot, "model.safetensors").unlink()
    snapshot = add_hub_repo(damaged, "broken/config", tiny["llama"])
    blob_of(snapshot, "config.json").unlink()
    (damaged / repo_folder("broken/no-snapshots") / "refs").mkdir(parents=True)
    (damaged / repo_folder("broken/no-snapshots") / "refs" / "main").write_text(revision_hash("gone"))
    add_hub_repo(damaged, "broken/ref", tiny["gpt2"], ref=None)
    (damaged / repo_folder("broken/ref") / "refs").mkdir()
    (damaged / repo_folder("broken/ref") / "refs" / "main").write_text(revision_hash("missing commit"))
    add_plain(damaged, "bad/json", {**tiny["gpt2"], "config.json": b'{"model_type": "gpt2",'})
    add_plain(damaged, "bad/list", {**tiny["gpt2"], "config.json": b"[1, 2]"})
    os.symlink(damaged / "nowhere", damaged / "dangling")
    os.symlink("loop", damaged / "loop")  # a symlink to itself: fails for root too (ELOOP)


def by_path(report) -> dict:
    return {found.hf_path: found for found in report.found}


def problems(report) -> dict:
    return {problem.path: problem.message for problem in report.problems}


# The hub cache


def test_hub_cache_is_seen_as_scan_cache_dir_sees_it(trees):
    report = scan([Location("primary", trees.hub)])

    expected = {}
    for repo in scan_cache_dir(trees.hub).repos:
        if repo.repo_type == "model":
            main = [r for r in repo.revisions if "main" in r.refs]
            revision = main[0] if main else max(repo.revisions, key=lambda r: r.last_modified)
            expected[repo.repo_id] = (revision.commit_hash, revision.size_on_disk, revision.snapshot_path)
    seen = {f.hf_path: (f.revision, f.size_bytes, Path(f.path).resolve()) for f in report.found}
    assert seen == expected
    assert sorted(seen) == ["tiny/gpt2", "tiny/llama", "tiny/phi"]  # the dataset repo is not a model
    assert report.problems == []


def test_hub_revision_is_refs_main_else_the_newest(trees):
    found = by_path(scan([Location("primary", trees.hub)]))
    assert found["tiny/phi"].revision == revision_hash("phi-old")
    assert found["tiny/gpt2"].revision == revision_hash("gpt2-new")
    assert found["tiny/phi"].path == str(trees.hub / "models--tiny--phi" / "snapshots" / revision_hash("phi-old"))


def test_hub_model_is_described(trees, tiny_models):
    llama = by_path(scan([Location("primary", trees.hub)]))["tiny/llama"]
    assert (llama.location, llama.architecture, llama.model_type) == ("primary", "LlamaForCausalLM", "llama")
    assert (llama.weight_format, llama.quantization, llama.incomplete) == ("safetensors", None, False)
    assert llama.size_bytes == folder_size(tiny_models["llama"])


def test_primary_location_is_huggingface_hubs_cache(monkeypatch, trees):
    monkeypatch.setenv("HF_HUB_CACHE", str(trees.hub))
    assert primary_location() == Location("primary", trees.hub, "huggingface")
    assert {f.hf_path for f in scan([primary_location()]).found} == {"tiny/gpt2", "tiny/llama", "tiny/phi"}


@pytest.mark.parametrize("variables, expected", [
    ({"HF_HOME": "/data/hf"}, "/data/hf/hub"),
    ({"HF_HOME": "/data/hf", "HF_HUB_CACHE": "/models/cache"}, "/models/cache"),
    ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/huggingface/hub"),
])
def test_primary_location_follows_the_environment(monkeypatch, variables, expected):
    """huggingface_hub reads these when it is imported: check it in a fresh process, and that the
    fallback without huggingface_hub agrees."""
    names = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in names}
    code = "from modelhub.discovery.scanner import primary_location; print(primary_location().root)"
    result = subprocess.run([sys.executable, "-c", code], env={**env, **variables}, cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == expected

    for name in names:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    assert primary_location() == Location("primary", Path(expected), "huggingface")


# Plain folders


def test_plain_folders_org_name_and_name(trees, tiny_models):
    found = by_path(scan([Location("secondary", trees.disk2)]))
    llama, gpt2 = found["tiny/llama-copy"], found["gpt2-local"]
    assert (llama.location, llama.path, llama.revision) == ("secondary", str(trees.disk2 / "tiny" / "llama-copy"), None)
    assert (llama.architecture, llama.model_type, llama.weight_format) == ("LlamaForCausalLM", "llama", "safetensors")
    assert llama.size_bytes == folder_size(tiny_models["llama"])
    assert (gpt2.architecture, gpt2.model_type, gpt2.incomplete) == ("GPT2LMHeadModel", "gpt2", False)
    assert gpt2.size_bytes == folder_size(tiny_models["gpt2"])


def test_only_two_levels_and_no_hidden_or_hub_folders_in_plain_mode(trees):
    found = by_path(scan([Location("secondary", trees.disk2)]))
    assert not any(path.startswith(("deep", ".trash", "datasets", "old-model", "b")) for path in found)
    assert "inside" not in found and "empty-org" not in found


def test_hub_repos_in_a_secondary_root(trees):
    phi = by_path(scan([Location("secondary", trees.disk2)]))["copied/phi"]
    assert (phi.location, phi.architecture) == ("secondary", "PhiForCausalLM")
    assert phi.revision == revision_hash("model:copied/phi")


@pytest.mark.parametrize("name", [*QUANTIZATIONS, "legacy-gptq"])
def test_quantization_from_config(trees, name):
    expected = QUANTIZATIONS[name][1] if name in QUANTIZATIONS else "GPTQ"
    assert by_path(scan([Location("secondary", trees.disk2)]))[f"quant/{name}"].quantization == expected


def test_weight_formats(trees):
    found = by_path(scan([Location("secondary", trees.disk2)]))
    assert found["formats/pickle"].weight_format == "pickle"
    assert found["formats/both"].weight_format == "both"
    assert found["sharded/whole"].weight_format == "safetensors" and not found["sharded/whole"].incomplete
    none = found["formats/none"]
    assert (none.weight_format, none.incomplete, none.incomplete_reason) == (None, True, "no weight files")


def test_missing_shard_makes_a_copy_incomplete(trees):
    partial = by_path(scan([Location("secondary", trees.disk2)]))["sharded/partial"]
    assert partial.incomplete and partial.incomplete_reason == f"missing shards: {SHARDS[1]}"
    assert partial.weight_format == "safetensors"


# Damage


def test_damage_is_reported_and_the_scan_goes_on(trees):
    damaged = trees.damaged
    report = scan([Location("secondary", damaged)])
    found, reported = by_path(report), problems(report)

    assert found["good/model"].incomplete is False
    blob = found["broken/blob"]  # its weights' blob was deleted: an incomplete copy, not a problem
    assert blob.incomplete and "broken symlinks: model.safetensors" in blob.incomplete_reason
    assert str(damaged / repo_folder("broken/blob")) not in reported
    assert "not valid JSON" in reported[str(damaged / "bad" / "json")]
    assert "not a JSON object" in reported[str(damaged / "bad" / "list")]
    assert "broken symlink" in reported[str(damaged / "dangling")]
    assert "symbolic links" in reported[str(damaged / "loop")]
    config_snapshot = damaged / repo_folder("broken/config") / "snapshots" / revision_hash("model:broken/config")
    assert "config.json is a broken symlink" in reported[str(config_snapshot)]
    assert "Snapshots dir doesn't exist" in reported[str(damaged / repo_folder("broken/no-snapshots"))]
    # refs/main names a commit that is not there: huggingface_hub's complaint, and the newest revision
    assert "missing commit hashes" in reported[str(damaged / repo_folder("broken/ref"))]
    assert found["broken/ref"].revision == revision_hash("model:broken/ref")
    assert set(found) == {"good/model", "broken/blob", "broken/ref"}


def test_missing_blob_in_the_primary_cache(tmp_path, tiny):
    """huggingface_hub drops such a repo; the scanner reads it itself and reports an incomplete copy."""
    files = {**tiny["llama"], "config-copy.json": tiny["llama"]["config.json"]}  # two files, one blob
    snapshot = add_hub_repo(tmp_path, "tiny/llama", files)
    add_hub_repo(tmp_path, "tiny/phi", tiny["phi"])
    blob_of(snapshot, "tokenizer.json").unlink()
    report = scan([Location("primary", tmp_path)])
    llama = by_path(report)["tiny/llama"]
    assert (llama.incomplete, llama.incomplete_reason) == (True, "broken symlinks: tokenizer.json")
    assert llama.weight_format == "safetensors"
    blobs = (tmp_path / "models--tiny--llama" / "blobs").iterdir()
    assert llama.size_bytes == sum(blob.stat().st_size for blob in blobs)  # each blob once
    assert "tiny/phi" in by_path(report) and report.problems == []


def _unreadable_tree(root: Path, tiny_models, tiny) -> list[Path]:
    copy_plain(root, "good", tiny_models["gpt2"])
    copy_plain(root, "locked/model", tiny_models["gpt2"])
    copy_plain(root, "locked-org/model", tiny_models["gpt2"])
    add_hub_repo(root, "fine/repo", tiny["phi"])
    add_hub_repo(root, "locked/repo", tiny["phi"])
    locked = [root / "locked" / "model", root / "locked-org", root / repo_folder("locked/repo")]
    for path in locked:
        path.chmod(0)
    return locked


def _scan_as_subprocess(root: Path, command_prefix: list[str]) -> tuple[set, dict]:
    code = (
        "import json, sys; from pathlib import Path; from modelhub.discovery.scanner import scan;"
        "from modelhub.discovery.types import Location; r = scan([Location('secondary', Path(sys.argv[1]))]);"
        "print(json.dumps([[f.hf_path for f in r.found], {p.path: p.message for p in r.problems}]))"
    )
    result = subprocess.run([*command_prefix, sys.executable, "-c", code, str(root)], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    found, reported = json.loads(result.stdout)
    return set(found), reported


def test_unreadable_folders_are_problems(tmp_path, tiny_models, tiny):
    """chmod 000 on a model folder, an org folder and a hub repo. Root ignores permissions, so as root the
    scan runs in a process whose capabilities to do so (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) are
    dropped with setpriv."""
    locked = _unreadable_tree(tmp_path, tiny_models, tiny)
    try:
        if os.geteuid() != 0:
            report = scan([Location("secondary", tmp_path)])
            found, reported = set(by_path(report)), problems(report)
        elif shutil.which("setpriv"):
            drop = "-dac_override,-dac_read_search"
            found, reported = _scan_as_subprocess(tmp_path, ["setpriv", "--bounding-set", drop, "--inh-caps", drop])
        else:
            pytest.skip("running as root without setpriv: permissions cannot be made to fail")
    finally:
        for path in locked:
            path.chmod(0o755)
    assert found == {"good", "fine/repo"}
    for path in locked:
        assert "Permission denied" in reported[str(path)], reported


# Progress, locations, without huggingface_hub


def test_progress_counts_every_candidate_folder(trees):
    calls = []
    report = scan([Location("secondary", trees.disk2), Location("secondary", trees.damaged)],
                  lambda done, total: calls.append((done, total)))
    total = calls[0][1]
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == list(range(total + 1))
    assert {t for _, t in calls} == {total}
    damaged_candidates = 7  # 4 hub repos + 3 plain model folders (2 of them not JSON)
    assert total == len(by_path(scan([Location("secondary", trees.disk2)]))) + damaged_candidates
    assert len(report.found) < total


def test_secondary_locations_from_the_environment(monkeypatch, trees, tmp_path):
    missing = tmp_path / "unplugged-disk"
    roots = [trees.disk2, trees.damaged, missing]
    monkeypatch.setenv("MODELHUB_SECONDARY_CACHE", os.pathsep.join([*map(str, roots), ""]))
    locations = secondary_locations()
    assert locations == [Location("secondary", root) for root in roots]

    report = scan(locations)
    found = by_path(report)
    assert found["tiny/llama-copy"].location == found["good/model"].location == "secondary"
    assert problems(report)[str(missing)].startswith("folder does not exist")


def test_a_root_listed_twice_is_scanned_once(trees):
    report = scan([Location("primary", trees.hub), Location("secondary", trees.hub / ".." / "hub")])
    assert len(report.roots) == 1 and len(report.found) == 3


def test_without_huggingface_hub(monkeypatch, trees):
    with_hub = {f.hf_path: (f.revision, f.size_bytes) for f in scan([Location("primary", trees.hub)]).found}
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    report = scan([Location("primary", trees.hub), Location("secondary", trees.disk2)])
    reported = problems(report)
    assert "pip install 'modelhub[ml]'" in reported[str(trees.hub)]
    assert "pip install 'modelhub[ml]'" in reported[str(trees.disk2)]  # it holds a hub repo too
    # the cache is still read (modelhub's own reading), so a sync does not think its models are gone
    found = by_path(report)
    assert {name: (found[name].revision, found[name].size_bytes) for name in with_hub} == with_hub
    assert "tiny/llama-copy" in found and "copied/phi" in found


# Single folders


def test_inspect_directory(trees):
    found = inspect_directory(trees.disk2 / "tiny" / "llama-copy")
    assert (found.hf_path, found.location, found.architecture, found.weight_format) == (
        "llama-copy", "custom", "LlamaForCausalLM", "safetensors")
    snapshot = trees.hub / "models--tiny--llama" / "snapshots" / revision_hash("model:tiny/llama")
    cached = inspect_directory(snapshot, location="primary")
    assert (cached.hf_path, cached.revision, cached.location) == ("tiny/llama", snapshot.name, "primary")
    assert cached.size_bytes == by_path(scan([Location("primary", trees.hub)]))["tiny/llama"].size_bytes


@pytest.mark.parametrize("relative, message", [
    ("bad/json", "config.json is not valid JSON"),
    ("bad", "no config.json"),
    ("not-there", "is not a folder"),
])
def test_inspect_directory_refuses(trees, relative, message):
    with pytest.raises(ValueError, match=message):
        inspect_directory(trees.damaged / relative)
